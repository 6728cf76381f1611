"""The engine keeps every chat answerable: budget, compaction, retries, nothing lost.

Against the real OpenAI test server on 127.0.0.1, whose tokens are words.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.context import ContextWindows, model_key
from chatdesk.providers.base import ContextTooLongError, ProviderError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from tests.core.conftest import drain, query
from tests.openai_test_server import OpenAITestServer


async def _long_chat(manager: SessionManager, pairs: int, words: int = 30) -> str:
    session = await manager.create_session("long")
    for i in range(pairs):
        await manager.add_message(session.id, "user", f"question {i} " + "lorem " * words)
        await manager.add_message(session.id, "assistant", f"answer {i} " + "ipsum " * words)
    return session.id


def _sent_words(body: dict[str, object]) -> int:
    messages = body["messages"]
    assert isinstance(messages, list)
    return sum(len(str(m.get("content", "")).split()) for m in messages)


async def _all_ids(manager: SessionManager, session_id: str) -> set[str]:
    session = await manager.require_session(session_id)
    compacted = await manager.compacted_messages(session_id)
    return {m.id for m in session.history} | {m.id for m in compacted}


async def test_a_chat_longer_than_the_window_is_compacted_before_sending(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    session_id = await _long_chat(manager, 20)
    before = {m.id for m in (await manager.require_session(session_id)).history}
    windows = ContextWindows({model_key(provider, openai_server.model): 2000})
    engine = ChatEngine(manager, provider, auto_title=False, context_windows=windows)
    openai_server.context_window = 2000
    openai_server.reply = "A short summary."  # the summary, then the answer

    answer = "".join(await drain(engine.send(session_id, "and now?")))

    assert answer == "A short summary."
    # First the summary requests (one per chunk of the messages folded), then the answer.
    assert len(openai_server.requests) >= 2
    for body in openai_server.requests[:-1]:
        assert body["messages"][0]["content"].startswith("You summarise")
        assert _sent_words(body) < 2000
    final = openai_server.requests[-1]["messages"]
    assert "Summary of the earlier conversation:\nA short summary." in final[0]["content"]
    assert final[-1] == {"role": "user", "content": "and now?"}
    assert _sent_words(openai_server.requests[-1]) < 2000
    assert before <= await _all_ids(manager, session_id)
    session = await manager.require_session(session_id)
    assert session.history[0].is_summary
    budget = await engine.context_budget(session_id)
    assert budget.fits and budget.window == 2000


async def test_a_context_too_long_answer_is_retried_once_after_compacting(
    manager: SessionManager,
    provider: OpenAICompatibleProvider,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    session_id = await _long_chat(manager, 6)
    before = {m.id for m in (await manager.require_session(session_id)).history}
    engine = ChatEngine(manager, provider, auto_title=False)
    openai_server.context_errors = 1
    openai_server.stated_limit = 1024

    answer = "".join(await drain(engine.send(session_id, "still there?")))

    assert answer == openai_server.reply
    # Refused, then the summary request, then the retried answer.
    assert len(openai_server.requests) == 3
    assert openai_server.requests[1]["messages"][0]["content"].startswith("You summarise")
    retried = openai_server.requests[2]["messages"]
    assert retried[0]["role"] == "system" and "Summary of the earlier" in retried[0]["content"]
    assert len(retried) < len(openai_server.requests[0]["messages"])
    # The limit the error stated is remembered for the model.
    assert engine.context_windows.learned(model_key(provider, openai_server.model)) == 1024
    assert before <= await _all_ids(manager, session_id)
    stored = query(db_path, "SELECT count(*) FROM compacted_messages")[0][0]
    assert stored >= 2


async def test_context_too_long_twice_is_reported_in_words_and_nothing_is_lost(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    session_id = await _long_chat(manager, 3)
    before = {m.id for m in (await manager.require_session(session_id)).history}
    engine = ChatEngine(manager, provider, auto_title=False)
    openai_server.context_window = 1000

    # The message alone is longer than the window: summarising the rest cannot help.
    with pytest.raises(ContextTooLongError, match="Even after summarising"):
        await drain(engine.send(session_id, "hello? " + "lorem " * 3000))

    bodies = openai_server.requests
    assert bodies[0]["stream"] and bodies[-1]["stream"]
    assert bodies[-2]["messages"][0]["content"].startswith("You summarise")
    assert len(bodies) == 3

    assert before <= await _all_ids(manager, session_id)
    assert not engine.is_streaming(session_id)


async def test_an_empty_streamed_200_for_a_too_long_context_is_found_out_and_compacted(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    # llama-cpp-python's server: a too-long streaming request gets an empty 200.
    session_id = await _long_chat(manager, 10, words=40)
    openai_server.context_window = 600
    openai_server.empty_stream_when_too_long = True
    engine = ChatEngine(manager, provider, auto_title=False)

    answer = "".join(await drain(engine.send(session_id, "what did I ask first?")))

    assert answer == openai_server.reply
    bodies = openai_server.requests
    # The empty stream, the same request without streaming (the real 400), the summary,
    # and the answer that fits.
    assert bodies[0]["stream"] is True and bodies[1].get("stream") is False
    assert bodies[1]["max_tokens"] == 1
    assert _sent_words(bodies[-1]) <= 600
    assert engine.context_windows.learned(model_key(provider, openai_server.model)) == 600


async def test_an_empty_reply_to_a_short_chat_is_still_an_empty_reply(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    openai_server.reply = ""
    session = await manager.create_session()
    with pytest.raises(ProviderError, match="empty reply"):
        await drain(engine.send(session.id, "Say something"))
    assert len(openai_server.requests) == 1  # no needless second request


@pytest.mark.parametrize("where", ["models", "llama.cpp", "lmstudio", "ollama"])
async def test_the_window_a_server_reports_is_used(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer, where: str
) -> None:
    openai_server.context_window = 3072
    openai_server.report_window = where
    windows = ContextWindows()
    assert await windows.window(provider, openai_server.model) == 3072
    assert windows.is_known(provider, openai_server.model)


async def test_without_a_report_the_setting_then_the_default_is_used(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    assert await ContextWindows().window(provider, openai_server.model) == 8192
    key = model_key(provider, openai_server.model)
    assert await ContextWindows({key: 4000}).window(provider, openai_server.model) == 4000


async def test_compact_on_demand_returns_the_summary_and_undo_restores_the_chat(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session_id = await _long_chat(manager, 3, words=3)
    originals = list((await manager.require_session(session_id)).history)
    openai_server.reply = "They talked about lorem and ipsum."

    summary = await engine.compact(session_id)

    assert summary.content == "They talked about lorem and ipsum."
    assert summary.compacted_count == 4  # all but the last exchange
    history = (await manager.require_session(session_id)).history
    assert [m.id for m in history] == [summary.id, originals[4].id, originals[5].id]
    assert await manager.compacted_messages(session_id) == originals[:4]
    summary_request = openai_server.requests[-1]["messages"][1]["content"]
    assert "User: question 0" in summary_request and "Assistant: answer 1" in summary_request

    await manager.undo_compaction(session_id)
    assert (await manager.require_session(session_id)).history == originals


async def test_a_short_chat_cannot_be_compacted(
    engine: ChatEngine, manager: SessionManager
) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "hi")
    with pytest.raises(ValueError, match="too short"):
        await engine.compact(session.id)


async def test_usage_reported_by_the_server_corrects_the_estimate(
    engine: ChatEngine,
    manager: SessionManager,
    provider: OpenAICompatibleProvider,
    openai_server: OpenAITestServer,
) -> None:
    session = await manager.create_session()
    # Long words: about three characters of a word each count as an estimated token,
    # while this server counts each word as one.
    await drain(engine.send(session.id, " ".join(["incomprehensibilities"] * 200)))
    counter = await engine.context_windows.counter(provider, openai_server.model)
    assert counter.scale < 0.9
    assert json.loads(json.dumps(openai_server.requests[-1]["stream_options"])) == {
        "include_usage": True
    }


async def test_a_learned_window_is_kept_in_the_dict_the_app_saves(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    learned: dict[str, int] = {}
    saved: list[tuple[str, int]] = []
    windows = ContextWindows(learned=learned, on_learned=lambda k, v: saved.append((k, v)))
    engine = ChatEngine(manager, provider, auto_title=False, context_windows=windows)
    session_id = await _long_chat(manager, 3)
    openai_server.context_errors = 1
    openai_server.stated_limit = 2048

    await drain(engine.send(session_id, "again"))

    key = model_key(provider, openai_server.model)
    assert learned == {key: 2048} and saved == [(key, 2048)]
    assert await windows.window(provider, openai_server.model) == 2048
    # A new run starts from what was kept.
    assert await ContextWindows(learned=dict(learned)).window(provider, openai_server.model) == 2048
    learned.clear()  # Settings set a window of its own
    assert await windows.window(provider, openai_server.model) == 8192


async def test_stop_while_the_summary_is_written_changes_nothing_but_the_question(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    session_id = await _long_chat(manager, 20)
    before = list((await manager.require_session(session_id)).history)
    key = model_key(provider, openai_server.model)
    engine = ChatEngine(
        manager, provider, auto_title=False, context_windows=ContextWindows({key: 2000})
    )
    openai_server.first_byte_delay = 5.0
    turn = asyncio.ensure_future(drain(engine.send(session_id, "and now?")))
    while not openai_server.requests:
        await asyncio.sleep(0.01)
    assert openai_server.requests[0]["messages"][0]["content"].startswith("You summarise")

    assert engine.cancel(session_id)
    assert await asyncio.wait_for(turn, 5) == []

    history = (await manager.require_session(session_id)).history
    assert history[:-1] == before and history[-1].content == "and now?"
    assert await manager.compacted_messages(session_id) == []
    assert not engine.is_streaming(session_id)
