"""Per-chat settings (temperature, longest reply, draft) and each reply's facts (model,
time, speed), stored with the chat."""

from __future__ import annotations

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.sessions import SessionManager
from tests.core.conftest import drain
from tests.openai_test_server import OpenAITestServer


async def test_a_chats_own_settings_are_what_the_model_is_asked_with(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_url: str
) -> None:
    session = await manager.create_session("Careful", system_prompt="Answer in French.")
    await manager.update_session(session.id, temperature=0.2, max_tokens=50)
    await drain(engine.send(session.id, "Hello"))
    request = openai_server.requests[-1]
    assert request["temperature"] == 0.2
    assert request["max_tokens"] == 50
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}

    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        again = await reopened.require_session(session.id)
        assert (again.temperature, again.max_tokens) == (0.2, 50)
    finally:
        await reopened.close()


async def test_settings_no_model_takes_are_refused(manager: SessionManager) -> None:
    session = await manager.create_session()
    with pytest.raises(ValueError, match="temperature"):
        await manager.update_session(session.id, temperature=7)
    with pytest.raises(ValueError, match="at least 1"):
        await manager.update_session(session.id, max_tokens=0)
    assert (session.temperature, session.max_tokens) == (None, None)


async def test_a_reply_keeps_its_model_time_and_speed(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_url: str
) -> None:
    session = await manager.create_session()
    await drain(engine.send(session.id, "Hello"))
    meta = session.history[-1].meta
    assert meta is not None
    assert meta["model"] == openai_server.model
    assert meta["seconds"] >= 0
    assert meta["tokens"] > 0
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        again = await reopened.require_session(session.id)
        assert again.history[-1].meta == meta
        assert again.history[0].meta is None  # the user's own message has none
    finally:
        await reopened.close()


async def test_a_draft_is_kept_with_its_chat(manager: SessionManager, db_url: str) -> None:
    first = await manager.create_session("One")
    second = await manager.create_session("Two")
    await manager.update_session(first.id, draft="half a thought")
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        assert (await reopened.require_session(first.id)).draft == "half a thought"
        assert (await reopened.require_session(second.id)).draft is None
    finally:
        await reopened.close()
