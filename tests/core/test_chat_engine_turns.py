"""ChatEngine turn life cycle: Stop at any moment, storage failures while streaming, empty
replies, titles made after the turn, and claiming a chat before changing it.

Real OpenAI-compatible test server, real SQLite file. Storage failures are real SQLite
errors: a trigger in the database file makes updates of ``messages`` fail while a flag
row says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatdesk.chat import ChatEngine, SessionBusyError
from chatdesk.domain import DEFAULT_TITLE, Session
from chatdesk.providers import ProviderError
from chatdesk.providers.base import Provider
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import MESSAGE_ADDED, MESSAGE_UPDATED, SessionEvent, SessionManager
from chatdesk.storage.database import StorageError
from tests.core.conftest import LONG_REPLY, drain, query, stored_messages
from tests.openai_test_server import DEFAULT_REPLY, OpenAITestServer


@pytest.fixture
async def titling_engine(
    manager: SessionManager, provider: OpenAICompatibleProvider
) -> AsyncIterator[ChatEngine]:
    """An engine that titles new chats."""
    built = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    yield built
    await built.close()


async def eventually(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the loop run until ``condition()`` is truthy; TimeoutError after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def break_message_updates(db_path: Path) -> None:
    """From now on every UPDATE of a stored message fails inside SQLite."""
    query(db_path, "CREATE TABLE IF NOT EXISTS test_failing (active INTEGER NOT NULL)")
    query(db_path, "DELETE FROM test_failing")
    query(db_path, "INSERT INTO test_failing VALUES (1)")
    query(
        db_path,
        "CREATE TRIGGER IF NOT EXISTS test_fail_message_updates BEFORE UPDATE ON messages "
        "WHEN (SELECT active FROM test_failing) "
        "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END",
    )


def repair_message_updates(db_path: Path) -> None:
    query(db_path, "UPDATE test_failing SET active = 0")


def break_session_updates(db_path: Path) -> None:
    """From now on every UPDATE of a stored session (its title, say) fails inside SQLite."""
    query(
        db_path,
        "CREATE TRIGGER test_fail_session_updates BEFORE UPDATE ON sessions "
        "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END",
    )


# -- 1. Stop early in a turn ------------------------------------------------------------------


async def test_stop_while_the_user_message_is_written_keeps_it_and_asks_nothing(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Changed my mind")
    stopped: list[bool] = []

    def stop_when_the_question_is_stored(event: SessionEvent) -> None:
        if event.kind == MESSAGE_ADDED and event.session_id == session.id and not stopped:
            stopped.append(engine.cancel(session.id))

    manager.add_listener(stop_when_the_question_is_stored)
    async with asyncio.timeout(10):
        deltas = await drain(engine.send(session.id, "Never mind"))

    assert stopped == [True]
    assert deltas == []
    assert not engine.is_streaming(session.id)
    # The question stays; there is no reply, not even an empty one; the model was not asked.
    history = (await manager.require_session(session.id)).history
    assert [(m.role, m.content, m.status) for m in history] == [("user", "Never mind", "complete")]
    assert stored_messages(db_path, session.id) == [("user", "Never mind", "complete", None)]
    assert openai_server.requests == []


async def test_a_reader_cancelled_while_the_reply_is_first_stored_leaves_it_cancelled(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.02
    session = await manager.create_session("Cut short")
    reader: list[asyncio.Task[list[str]]] = []
    added: list[str | None] = []

    def cancel_the_reader_when_the_reply_is_stored(event: SessionEvent) -> None:
        if event.kind == MESSAGE_ADDED and event.session_id == session.id:
            added.append(event.message_id)
            if len(added) == 2:  # the question, then the reply's first token
                reader[0].cancel()

    manager.add_listener(cancel_the_reader_when_the_reply_is_stored)
    reader.append(asyncio.create_task(drain(engine.send(session.id, "Tell me everything"))))
    with pytest.raises(asyncio.CancelledError):
        await reader[0]

    rows = stored_messages(db_path, session.id)
    assert [(role, status) for role, _, status, _ in rows] == [
        ("user", "complete"),
        ("assistant", "cancelled"),
    ]
    history = (await manager.require_session(session.id)).history
    assert history[-1].status == "cancelled"


async def test_stop_just_before_the_request_starts_ends_the_turn_instead_of_hanging(
    manager: SessionManager,
    provider: OpenAICompatibleProvider,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    stops: list[asyncio.Handle] = []

    def resolve_and_stop_soon(session: Session) -> tuple[Provider, str | None]:
        # The first time, Stop lands in the next loop step: after the request task is
        # created, before it takes its first step.
        if not stops:
            stops.append(asyncio.get_running_loop().call_soon(engine.cancel, session.id))
        return provider, session.model

    engine = ChatEngine(
        manager,
        provider,
        resolve_provider=resolve_and_stop_soon,
        flush_interval=0.1,
        auto_title=False,
    )
    session = await manager.create_session("Quick stop")
    async with asyncio.timeout(10):
        deltas = await drain(engine.send(session.id, "Hello?"))

    assert deltas == []
    assert not engine.is_streaming(session.id)
    assert stored_messages(db_path, session.id) == [("user", "Hello?", "complete", None)]
    assert openai_server.requests == []
    # The chat is free for the next question.
    assert "".join(await drain(engine.regenerate(session.id))) == openai_server.reply


# -- 2. Storage failures while streaming ------------------------------------------------------


async def test_a_failed_flush_is_logged_and_later_flushes_still_happen(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="chatdesk.chat")
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.02
    session = await manager.create_session("Flaky disk")
    break_message_updates(db_path)
    received: list[str] = []
    async for delta in engine.send(session.id, "Count for me"):
        received.append(delta)
        if len(received) == 3:
            # Reading stops here, so the reply's text stays "".join(received).
            await eventually(
                lambda: any("could not save" in r.getMessage() for r in caplog.records)
            )
            assert stored_messages(db_path, session.id)[1][1] == received[0]
            repair_message_updates(db_path)
            await eventually(
                lambda: stored_messages(db_path, session.id)[1][1] == "".join(received)
            )
            assert stored_messages(db_path, session.id)[1][2] == "streaming"

    assert "".join(received) == LONG_REPLY
    assert stored_messages(db_path, session.id)[1] == ("assistant", LONG_REPLY, "complete", None)


async def test_when_the_last_write_fails_the_reply_still_ends_in_memory(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Full disk")
    break_message_updates(db_path)
    with pytest.raises(StorageError, match="simulated disk failure"):
        await drain(engine.send(session.id, "Hi"))

    assert not engine.is_streaming(session.id)
    reply = (await manager.require_session(session.id)).history[-1]
    # Memory must not claim a complete reply that only memory holds (#12).
    assert (reply.role, reply.content, reply.status) == (
        "assistant",
        openai_server.reply,
        "error",
    )
    stored = stored_messages(db_path, session.id)[-1][1]
    assert f"Only the first {len(stored)} of {len(openai_server.reply)} characters" in reply.error
    # On disk it is still "streaming": the next start marks it interrupted.
    assert stored_messages(db_path, session.id)[-1][2] == "streaming"


# -- 3. Empty replies ---------------------------------------------------------------------------


async def test_an_empty_reply_is_an_error_the_user_can_retry(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = ""
    session = await manager.create_session("Silent model")
    with pytest.raises(ProviderError, match="empty reply"):
        await drain(engine.send(session.id, "Say something"))

    assert len(openai_server.requests) == 1
    assert not engine.is_streaming(session.id)
    assert stored_messages(db_path, session.id) == [("user", "Say something", "complete", None)]

    openai_server.reply = "Something."
    assert "".join(await drain(engine.regenerate(session.id))) == "Something."
    assert [row[:3] for row in stored_messages(db_path, session.id)] == [
        ("user", "Say something", "complete"),
        ("assistant", "Something.", "complete"),
    ]


# -- 4. Titles are made after the turn ----------------------------------------------------------


async def test_the_chat_is_free_while_its_title_is_made(
    titling_engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    engine = titling_engine
    session = await manager.create_session()
    openai_server.reply = "Paris is lovely in spring."
    received: list[str] = []

    async def first_turn() -> None:
        async for delta in engine.send(session.id, "Where should I travel in April?"):
            received.append(delta)
            if "".join(received) == openai_server.reply:
                openai_server.reply = "Spring trip to Paris"
                openai_server.first_byte_delay = 1.0  # the title takes a while

    turn = asyncio.create_task(first_turn())
    try:
        await eventually(lambda: len(openai_server.requests) == 2)  # the title was asked for
        # ... after the turn ended: Stop has nothing to stop and the chat takes a new question.
        assert turn.done()
        await turn
        assert not engine.is_streaming(session.id)
        assert not engine.cancel(session.id)
        assert (await manager.require_session(session.id)).title == DEFAULT_TITLE
        await drain(engine.send(session.id, "And in May?"))
    finally:
        turn.cancel()

    await engine.wait_for_titles()
    updated = await manager.require_session(session.id)
    assert updated.title == "Spring trip to Paris"
    assert [(m.role, m.status) for m in updated.history] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    # The title was asked about the first exchange only.
    title_request = openai_server.requests[1]
    assert [m["role"] for m in title_request["messages"]] == ["user", "assistant", "user"]


async def test_a_chat_deleted_while_its_title_is_made_does_not_fail_the_reply(
    titling_engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    engine = titling_engine
    session = await manager.create_session()
    deletions: list[asyncio.Task[bool]] = []
    reply_status: list[str] = []

    def delete_once_the_reply_is_complete(event: SessionEvent) -> None:
        if event.kind != MESSAGE_UPDATED or deletions:
            return
        # ``session`` is the manager's live copy: it shows the reply's status as it changes.
        if session.history[-1].role == "assistant" and session.history[-1].status == "complete":
            reply_status.append(session.history[-1].status)
            deletions.append(asyncio.create_task(manager.delete_session(session.id)))

    manager.add_listener(delete_once_the_reply_is_complete)
    received: list[str] = []
    async for delta in engine.send(session.id, "Tell me about tides"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            openai_server.first_byte_delay = 0.2  # the title answer comes after the delete

    assert "".join(received) == openai_server.reply
    assert reply_status == ["complete"]
    assert await deletions[0]
    await engine.wait_for_titles()  # the title gives up quietly
    assert await manager.get_session(session.id) is None
    assert query(db_path, "SELECT count(*) FROM sessions") == [(0,)]


async def test_a_title_that_cannot_be_written_is_logged_and_the_reply_stays_complete(
    titling_engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = titling_engine
    session = await manager.create_session()
    received: list[str] = []
    async for delta in engine.send(session.id, "Tell me about tides"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            openai_server.reply = "Tides explained"
            break_session_updates(db_path)

    await engine.wait_for_titles()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"could not title session {session.id}"
    ]
    assert "simulated disk failure" in caplog.text
    assert (await manager.require_session(session.id)).title == DEFAULT_TITLE
    assert [row[2] for row in stored_messages(db_path, session.id)] == ["complete", "complete"]


async def test_close_cancels_a_title_being_made(
    titling_engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    engine = titling_engine
    session = await manager.create_session()
    received: list[str] = []
    async for delta in engine.send(session.id, "Hi"):
        received.append(delta)
        if "".join(received) == openai_server.reply:
            openai_server.first_byte_delay = 30  # a title that would take very long

    await eventually(lambda: len(openai_server.requests) == 2)
    async with asyncio.timeout(5):
        await engine.close()
        await engine.wait_for_titles()
    assert (await manager.require_session(session.id)).title == DEFAULT_TITLE


# -- 5. A turn claims the chat before changing it ---------------------------------------------


async def test_edit_and_resend_claims_the_chat_before_deleting_anything(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Edits")
    openai_server.reply = "Answer one."
    await drain(engine.send(session.id, "Question one"))
    first = (await manager.require_session(session.id)).history[0]

    openai_server.reply = "Answer to the edit."
    edit = asyncio.create_task(drain(engine.edit_and_resend(session.id, first.id, "Question 1b")))
    other = asyncio.create_task(drain(engine.send(session.id, "Meanwhile")))
    results: list[Any] = await asyncio.gather(edit, other, return_exceptions=True)

    # The edit started first, so it owns the chat; the other send is refused untouched.
    assert "".join(results[0]) == "Answer to the edit."
    assert isinstance(results[1], SessionBusyError)
    assert [row[:2] for row in stored_messages(db_path, session.id)] == [
        ("user", "Question 1b"),
        ("assistant", "Answer to the edit."),
    ]


async def test_edit_and_resend_is_refused_without_deleting_while_a_reply_streams(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session = await manager.create_session("Busy")
    await drain(engine.send(session.id, "Question one"))
    first = (await manager.require_session(session.id)).history[0]
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.02
    replies = engine.send(session.id, "Question two")
    await anext(replies)
    with pytest.raises(SessionBusyError):
        await drain(engine.edit_and_resend(session.id, first.id, "Question 1b"))
    with pytest.raises(SessionBusyError):
        await drain(engine.regenerate(session.id))
    await drain(replies)
    assert [row[1] for row in stored_messages(db_path, session.id)] == [
        "Question one",
        DEFAULT_REPLY,
        "Question two",
        LONG_REPLY,
    ]
