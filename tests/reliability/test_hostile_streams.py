"""Malformed servers behind the real provider: every reply ends in a final state with its
text kept, and the message says what the server did."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatdesk.chat import ChatEngine
from chatdesk.providers import (
    ProviderError,
    ProviderTimeoutError,
    ServerError,
    StreamInterruptedError,
)
from chatdesk.providers.base import ReplyStream, StreamEnd, valid_text
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from tests.core.conftest import stored_messages
from tests.openai_test_server import OpenAITestServer, sse_chunk

DONE = b"data: [DONE]\n\n"


def text(part: str) -> bytes:
    return sse_chunk({"content": part})


def stop() -> bytes:
    return sse_chunk({}, "stop")


async def run_turn(
    engine: ChatEngine, manager: SessionManager
) -> tuple[str, list[str], BaseException | None]:
    """Send one message; the session id, the deltas seen and the error that ended it."""
    session = await manager.create_session("Hostile")
    seen: list[str] = []
    error: BaseException | None = None
    try:
        async for delta in engine.send(session.id, "Hello?"):
            seen.append(delta)
    except ProviderError as exc:
        error = exc
    assert not engine.is_streaming(session.id)
    return session.id, seen, error


def final_reply(db_path: Path, session_id: str) -> tuple[str, str, str | None]:
    """(content, status, error) of the stored reply; it must exist and not be streaming."""
    rows = [row for row in stored_messages(db_path, session_id) if row[0] == "assistant"]
    assert len(rows) == 1, rows
    _, content, status, error = rows[0]
    assert status != "streaming"
    return content, status, error


@pytest.mark.parametrize(
    ("value", "words"), [(42, "a number"), (["a", "b"], "a list"), ({"x": 1}, "an object")]
)
async def test_delta_content_that_is_not_text_ends_the_reply_saying_so(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
    value: object,
    words: str,
) -> None:
    openai_server.script = [text("Kept "), sse_chunk({"content": value}), stop(), DONE]
    session_id, seen, error = await run_turn(engine, manager)

    assert seen == ["Kept "]
    assert isinstance(error, ServerError)
    assert words in str(error) and "not text" in str(error)
    assert final_reply(db_path, session_id) == ("Kept ", "error", str(error))


async def test_an_emoji_split_between_two_chunks_arrives_whole(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    # json.dumps writes each lone half as a \\ud83d-style escape, as such servers do.
    openai_server.script = [text("Hi "), text("\ud83d"), text("\ude00"), text(" there"), stop()]
    session_id, seen, error = await run_turn(engine, manager)

    assert error is None
    assert "".join(seen) == "Hi 😀 there"
    assert final_reply(db_path, session_id) == ("Hi 😀 there", "complete", None)


async def test_a_lone_surrogate_becomes_a_replacement_character_and_the_reply_completes(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.script = [text("Hi "), text("\udc00 x \ud83d"), text(" there"), stop(), DONE]
    session_id, _, error = await run_turn(engine, manager)

    assert error is None
    assert final_reply(db_path, session_id) == ("Hi \ufffd x \ufffd there", "complete", None)


async def test_keep_alive_comments_alone_end_in_a_timeout_with_the_text_kept(
    manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.script = [text("Started "), *[b": keep-alive\n\n", 0.1] * 300]
    provider = OpenAICompatibleProvider(
        openai_server.base_url, None, "test-model", inactivity_timeout=0.5
    )
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=False)
    try:
        began = time.monotonic()
        session_id, seen, error = await run_turn(engine, manager)
        waited = time.monotonic() - began
    finally:
        await engine.close()
        await provider.close()

    assert seen == ["Started "]
    assert isinstance(error, ProviderTimeoutError)
    assert "stopped sending the reply for 0.5 s" in str(error)
    assert waited < 10  # the script would keep the stream open for 30 s
    assert final_reply(db_path, session_id) == ("Started ", "error", str(error))


@pytest.mark.parametrize("with_done", [False, True])
async def test_a_stream_that_ends_without_a_finish_reason_is_interrupted_not_complete(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
    with_done: bool,
) -> None:
    openai_server.script = [text("Half "), text("a reply"), *([DONE] if with_done else [])]
    session_id, seen, error = await run_turn(engine, manager)

    assert "".join(seen) == "Half a reply"
    assert isinstance(error, StreamInterruptedError)
    assert "without saying it was finished" in str(error)
    assert final_reply(db_path, session_id) == ("Half a reply", "error", str(error))


async def test_a_web_page_instead_of_a_stream_is_named(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    openai_server.script_content_type = "text/html"
    openai_server.script = [b"<html><body><h1>Welcome to nginx!</h1></body></html>"]
    session_id, seen, error = await run_turn(engine, manager)

    assert seen == []
    assert isinstance(error, ServerError)
    assert "web page (text/html)" in str(error)
    # No reply was started, so none is stored; the user's message stays.
    assert [row[0] for row in stored_messages(db_path, session_id)] == ["user"]


async def test_plain_json_that_is_not_a_completion_is_quoted(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    openai_server.script_content_type = "application/json"
    openai_server.script = [json.dumps({"status": "maintenance"}).encode()]
    _, seen, error = await run_turn(engine, manager)

    assert seen == []
    assert isinstance(error, ServerError)
    assert "answered with JSON instead of a reply stream" in str(error)
    assert "maintenance" in str(error)


async def test_a_whole_completion_sent_instead_of_a_stream_is_the_reply(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    completion = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once"}}],
    }
    openai_server.script_content_type = "application/json"
    openai_server.script = [json.dumps(completion).encode()]
    session_id, seen, error = await run_turn(engine, manager)

    assert error is None and seen == ["All at once"]
    assert final_reply(db_path, session_id) == ("All at once", "complete", None)


def test_valid_text_joins_pairs_and_replaces_lone_halves() -> None:
    assert valid_text("a\ud83d\ude00b") == "a😀b"
    assert valid_text("\ude00\ud83d") == "\ufffd\ufffd"
    assert valid_text("plain") == "plain"


def utf16_units(text: str) -> list[str]:
    """``text`` as a server's JSON escapes can deliver it: one str per UTF-16 code unit, so
    a character outside the BMP is two lone surrogate halves."""
    data = text.encode("utf-16-le")
    return [data[i : i + 2].decode("utf-16-le", "surrogatepass") for i in range(0, len(data), 2)]


@settings(max_examples=300, deadline=None)
@given(text=st.text(min_size=1), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_text_cut_anywhere_between_deltas_arrives_whole(text: str, cuts: list[int]) -> None:
    units = utf16_units(text)
    points = sorted({0, len(units), *(c % (len(units) + 1) for c in cuts)})
    deltas = ["".join(units[a:b]) for a, b in itertools.pairwise(points)]

    async def events() -> AsyncIterator[str | StreamEnd]:
        for delta in deltas:
            yield delta
        yield StreamEnd("stop")

    async def received() -> str:
        return "".join([d async for d in ReplyStream(events())])

    assert asyncio.run(received()) == text
