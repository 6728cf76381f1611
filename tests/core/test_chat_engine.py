"""ChatEngine turns against the real OpenAI-compatible test server and a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatdesk.chat import TITLE_MAX_TOKENS, TITLE_PROMPT, ChatEngine
from chatdesk.domain import DEFAULT_TITLE, content_text
from chatdesk.providers import ServerError, StreamInterruptedError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences
from tests.core.conftest import LONG_REPLY, drain, png_data_url, stored_messages
from tests.openai_test_server import OpenAITestServer


async def test_send_streams_the_reply_and_stores_both_messages(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_url: str,
    db_path: Path,
) -> None:
    session = await manager.create_session("Greeting")
    deltas = await drain(engine.send(session.id, "Hello there"))

    assert len(deltas) > 1
    assert "".join(deltas) == openai_server.reply
    assert not engine.is_streaming(session.id)
    history = (await manager.require_session(session.id)).history
    assert [(m.role, m.content, m.status) for m in history] == [
        ("user", "Hello there", "complete"),
        ("assistant", openai_server.reply, "complete"),
    ]
    assert openai_server.requests[-1]["messages"] == [{"role": "user", "content": "Hello there"}]
    assert stored_messages(db_path, session.id) == [
        ("user", "Hello there", "complete", None),
        ("assistant", openai_server.reply, "complete", None),
    ]

    reopened = await SessionManager.open(db_url)
    try:
        again = await reopened.require_session(session.id)
        assert [(m.role, m.content, m.status) for m in again.history] == [
            (m.role, m.content, m.status) for m in history
        ]
    finally:
        await reopened.close()


async def test_a_message_with_an_image_reaches_the_server_whole(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session = await manager.create_session("Picture")
    content = [
        {"type": "text", "text": "What colour is this?"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    await drain(engine.send(session.id, content))
    assert openai_server.requests[-1]["messages"] == [{"role": "user", "content": content}]


async def test_the_reply_is_on_disk_as_streaming_while_it_streams(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.05
    session = await manager.create_session("Slow")
    received: list[str] = []
    seen_mid_stream: list[tuple[str, str, str, str | None]] = []
    async for delta in engine.send(session.id, "Count for me"):
        received.append(delta)
        if len(received) == 10:
            await asyncio.sleep(0.35)  # several flush intervals
            seen_mid_stream = stored_messages(db_path, session.id)

    assert [row[0] for row in seen_mid_stream] == ["user", "assistant"]
    _, content, status, _ = seen_mid_stream[1]
    assert status == "streaming"
    assert content == "".join(received[:10])
    assert stored_messages(db_path, session.id)[1] == ("assistant", LONG_REPLY, "complete", None)


async def test_cancel_keeps_the_partial_reply_as_cancelled(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.05
    session = await manager.create_session("Stop me")
    received: list[str] = []
    async for delta in engine.send(session.id, "Talk slowly"):
        received.append(delta)
        if len(received) == 3:
            assert engine.cancel(session.id)

    text = "".join(received)
    assert len(received) >= 3
    assert LONG_REPLY.startswith(text) and text != LONG_REPLY
    assert not engine.is_streaming(session.id)
    assert not engine.cancel(session.id)
    reply = (await manager.require_session(session.id)).history[-1]
    assert (reply.role, reply.content, reply.status) == ("assistant", text, "cancelled")
    assert stored_messages(db_path, session.id)[-1] == ("assistant", text, "cancelled", None)
    # The server sees the client go instead of streaming the rest into the void.
    for _ in range(100):
        if openai_server.client_disconnects:
            break
        await asyncio.sleep(0.05)
    assert openai_server.client_disconnects == 1
    assert openai_server.completed_streams == 0


async def test_a_connection_lost_mid_reply_keeps_the_partial_reply_as_error(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.hang_up_after = 2
    session = await manager.create_session("Flaky")
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as raised:
        async for delta in engine.send(session.id, "Go on"):
            received.append(delta)

    assert received == ["word0 ", "word1 "]
    assert not engine.is_streaming(session.id)
    reply = (await manager.require_session(session.id)).history[-1]
    assert (reply.role, reply.content, reply.status) == ("assistant", "word0 word1 ", "error")
    assert reply.error == str(raised.value)
    assert "lost mid-reply" in reply.error
    assert stored_messages(db_path, session.id)[-1] == (
        "assistant",
        "word0 word1 ",
        "error",
        str(raised.value),
    )


async def test_a_server_error_before_any_token_keeps_only_the_user_message(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.status = 500
    session = await manager.create_session("Broken server")
    with pytest.raises(ServerError) as raised:
        await drain(engine.send(session.id, "Anyone there?"))

    assert raised.value.status == 500
    assert not engine.is_streaming(session.id)
    # No token arrived, so the engine stores no (empty) assistant reply at all.
    history = (await manager.require_session(session.id)).history
    assert [(m.role, m.content, m.status) for m in history] == [
        ("user", "Anyone there?", "complete")
    ]
    assert stored_messages(db_path, session.id) == [("user", "Anyone there?", "complete", None)]

    # Once the server is back, regenerate answers the waiting question.
    openai_server.status = 200
    assert "".join(await drain(engine.regenerate(session.id))) == openai_server.reply
    assert [m.role for m in (await manager.require_session(session.id)).history] == [
        "user",
        "assistant",
    ]


async def test_regenerate_replaces_the_last_reply(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Again")
    openai_server.reply = "First answer."
    await drain(engine.send(session.id, "Question"))
    openai_server.reply = "A better answer."

    assert "".join(await drain(engine.regenerate(session.id))) == "A better answer."

    history = (await manager.require_session(session.id)).history
    assert [(m.role, content_text(m.content), m.status) for m in history] == [
        ("user", "Question", "complete"),
        ("assistant", "A better answer.", "complete"),
    ]
    # The old reply is not part of what the model was asked.
    assert openai_server.requests[-1]["messages"] == [{"role": "user", "content": "Question"}]
    assert [row[1] for row in stored_messages(db_path, session.id)] == [
        "Question",
        "A better answer.",
    ]


async def test_edit_and_resend_drops_what_followed_and_sends_the_new_text(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Edits")
    openai_server.reply = "Answer one."
    await drain(engine.send(session.id, "Question one"))
    openai_server.reply = "Answer two."
    await drain(engine.send(session.id, "Question two"))
    first_question = (await manager.require_session(session.id)).history[0]

    openai_server.reply = "Answer to the edit."
    deltas = await drain(engine.edit_and_resend(session.id, first_question.id, "Question 1b"))

    assert "".join(deltas) == "Answer to the edit."
    history = (await manager.require_session(session.id)).history
    assert [(m.role, m.content) for m in history] == [
        ("user", "Question 1b"),
        ("assistant", "Answer to the edit."),
    ]
    assert openai_server.requests[-1]["messages"] == [{"role": "user", "content": "Question 1b"}]
    assert [row[1] for row in stored_messages(db_path, session.id)] == [
        "Question 1b",
        "Answer to the edit.",
    ]


async def test_auto_title_comes_from_the_model(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    assert session.title == DEFAULT_TITLE
    openai_server.reply = "Paris is lovely in spring."
    received: list[str] = []
    async for delta in engine.send(session.id, "Where should I travel in April?"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            # The title is asked for once the reply is done: script its answer now.
            openai_server.reply = 'Title: "Spring trip to Paris."'

    # The title is made in the background once the turn has ended.
    assert not engine.is_streaming(session.id)
    await engine.wait_for_titles()
    assert (await manager.require_session(session.id)).title == "Spring trip to Paris"
    title_request = openai_server.requests[-1]
    assert len(openai_server.requests) == 2
    assert title_request["max_tokens"] == TITLE_MAX_TOKENS
    assert [m["role"] for m in title_request["messages"]] == ["user", "assistant", "user"]
    assert title_request["messages"][-1]["content"] == TITLE_PROMPT
    summaries = await manager.list_sessions()
    assert [s.title for s in summaries] == ["Spring trip to Paris"]


async def test_auto_title_skips_a_preamble_that_small_models_add(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    openai_server.reply = "Apples, pears and plums."
    received: list[str] = []
    async for delta in engine.send(session.id, "Name three fruits"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            openai_server.reply = (
                "Here's a possible title for the conversation:\n\n**Three fruits**"
            )

    await engine.wait_for_titles()
    assert (await manager.require_session(session.id)).title == "Three fruits"


async def test_auto_title_falls_back_to_the_first_words_when_the_model_fails(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    received: list[str] = []
    async for delta in engine.send(session.id, "Please explain how tides work on planet Earth"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            openai_server.status = 500

    await engine.wait_for_titles()
    assert len(openai_server.requests) == 2
    assert (await manager.require_session(session.id)).title == "Please explain how tides work on…"
    # The reply itself is unaffected.
    assert (await manager.require_session(session.id)).history[-1].status == "complete"


async def test_a_session_with_a_title_keeps_it(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session("Named by me")
    await drain(engine.send(session.id, "Hi"))
    await engine.wait_for_titles()
    assert len(openai_server.requests) == 1
    assert (await manager.require_session(session.id)).title == "Named by me"


async def test_each_session_is_answered_by_its_own_model(
    manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    preferences = Preferences(default_provider=openai_server.base_url, default_model="test-model")
    registry = ProviderRegistry(preferences)
    engine = ChatEngine(
        manager,
        registry.provider(*registry.default_choice()),
        resolve_provider=registry.resolve,
        flush_interval=0.1,
        auto_title=False,
    )
    try:
        default_session = await manager.create_session("Default model")
        chosen = await manager.create_session("Chosen model")
        await manager.update_session(
            chosen.id, provider=openai_server.base_url, model="other-model"
        )

        await drain(engine.send(chosen.id, "Which model are you?"))
        assert openai_server.last_model == "other-model"
        await drain(engine.send(default_session.id, "And you?"))
        assert openai_server.last_model == "test-model"
    finally:
        await registry.close()


async def test_the_system_prompt_is_sent_first(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session = await manager.create_session("Terse", system_prompt="Answer in one word.")
    await drain(engine.send(session.id, "How are you?"))
    assert openai_server.requests[-1]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "How are you?"},
    ]
    # The system prompt is not stored as a message.
    assert [m.role for m in (await manager.require_session(session.id)).history] == [
        "user",
        "assistant",
    ]
