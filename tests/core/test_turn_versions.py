"""Regenerate and Edit keep what they replace as versions of the turn, stored for good;
the version shown is what the model sees next."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.domain import content_text
from chatdesk.providers.base import ProviderError
from chatdesk.sessions import SessionManager
from tests.core.conftest import drain, png_data_url, query, stored_messages
from tests.openai_test_server import OpenAITestServer


def texts(manager_session: object) -> list[str]:
    return [content_text(m.content) for m in manager_session.history]  # type: ignore[attr-defined]


async def test_regenerate_keeps_the_earlier_reply_as_a_version(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_url: str,
    db_path: Path,
) -> None:
    session = await manager.create_session("Versions")
    openai_server.reply = "First answer."
    await drain(engine.send(session.id, "Question"))
    openai_server.reply = "Second answer."
    await drain(engine.regenerate(session.id))

    assert texts(session) == ["Question", "Second answer."]
    assert session.version_of(1) == (2, 2)
    assert session.version_of(0) == (1, 1)

    await engine.select_version(session.id, 1, 1)
    assert texts(session) == ["Question", "First answer."]
    assert session.version_of(1) == (1, 2)
    assert [row[1] for row in stored_messages(db_path, session.id)] == ["Question", "First answer."]

    # The model sees the version shown: the next question follows the first answer.
    openai_server.reply = "Third."
    await drain(engine.send(session.id, "And then?"))
    assert openai_server.requests[-1]["messages"][:2] == [
        {"role": "user", "content": "Question"},
        {"role": "assistant", "content": "First answer."},
    ]

    # Both versions survive a restart, in the order they were made.
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        again = await reopened.require_session(session.id)
        assert texts(again) == ["Question", "First answer.", "And then?", "Third."]
        assert again.version_of(1) == (1, 2)
        await reopened.select_version(session.id, 1, 2)
        # What followed the first answer belongs to that version and is kept with it.
        assert texts(again) == ["Question", "Second answer."]
        await reopened.select_version(session.id, 1, 1)
        assert texts(again) == ["Question", "First answer.", "And then?", "Third."]
    finally:
        await reopened.close()


async def test_edit_keeps_the_earlier_prompt_and_its_replies(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session = await manager.create_session("Edits")
    openai_server.reply = "Answer one."
    await drain(engine.send(session.id, "Question one"))
    openai_server.reply = "Answer two."
    await drain(engine.send(session.id, "Question two"))
    first = session.history[0]

    openai_server.reply = "Answer to the edit."
    await drain(engine.edit_and_resend(session.id, first.id, "Question 1b"))
    assert texts(session) == ["Question 1b", "Answer to the edit."]
    assert session.version_of(0) == (2, 2)

    await engine.select_version(session.id, 0, 1)
    assert texts(session) == ["Question one", "Answer one.", "Question two", "Answer two."]
    assert openai_server.requests[-1]["messages"] == [{"role": "user", "content": "Question 1b"}]


async def test_a_failed_retry_leaves_the_earlier_partial_reply(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Flaky")
    openai_server.reply = "Half of an answer that"
    openai_server.hang_up_after = 3
    with pytest.raises(ProviderError):
        await drain(engine.send(session.id, "Question"))
    partial = session.history[-1]
    assert partial.status == "error" and content_text(partial.content)

    # The retry fails before its first token: the partial reply is shown, as before.
    openai_server.hang_up_after = None
    openai_server.status = 500
    with pytest.raises(ProviderError):
        await drain(engine.regenerate(session.id))
    assert [m.id for m in session.history] == [session.history[0].id, partial.id]
    assert content_text(session.history[-1].content) == content_text(partial.content)
    assert session.version_of(1) == (1, 1)
    assert [row[1] for row in stored_messages(db_path, session.id)] == [
        "Question",
        content_text(partial.content),
    ]

    # A retry that fails midway keeps both partial replies, as two versions.
    openai_server.status = 200
    openai_server.reply = "Another try that also"
    openai_server.hang_up_after = 2
    with pytest.raises(ProviderError):
        await drain(engine.regenerate(session.id))
    assert session.version_of(1) == (2, 2)
    await engine.select_version(session.id, 1, 1)
    assert session.history[-1].id == partial.id


async def test_images_of_a_stored_version_are_kept(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    session = await manager.create_session("Pictures")
    picture = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": png_data_url(rgb=(1, 2, 3))}},
    ]
    await drain(engine.send(session.id, picture))
    await drain(engine.edit_and_resend(session.id, session.history[0].id, "Never mind."))
    assert query(db_path, "SELECT count(*) FROM images") == [(1,)]
    await engine.select_version(session.id, 0, 1)
    assert session.history[0].content == picture


async def test_a_version_out_of_range_is_refused(
    engine: ChatEngine, manager: SessionManager
) -> None:
    session = await manager.create_session("One")
    await drain(engine.send(session.id, "Only question"))
    with pytest.raises(ValueError, match="1 versions"):
        await manager.select_version(session.id, 1, 2)
