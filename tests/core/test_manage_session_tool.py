"""The manage_session tool, streamed by the real test server and run through the manager."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatdesk.chat import MAX_TOOL_ROUNDS, ChatEngine
from chatdesk.providers.base import ProviderError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from chatdesk.tools import DEFAULT_KEEP_COUNT, ToolArgumentError, parse_manage_session
from tests.core.conftest import drain, query
from tests.openai_test_server import OpenAITestServer


async def _three_message_chat(manager: SessionManager) -> str:
    session = await manager.create_session("Three")
    await manager.add_message(session.id, "user", "first question")
    await manager.add_message(session.id, "assistant", "first answer")
    return session.id  # the third message is the one sent


def _call(arguments: dict[str, object] | str) -> list[dict[str, str]]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return [{"name": "manage_session", "arguments": text}]


async def test_truncate_without_keep_count_keeps_ten_and_the_stored_count_is_clamped(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_url: str
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call({"action": "truncate"})]
    openai_server.reply = "Done: nothing needed deleting."

    answer = "".join(await drain(engine.send(session_id, "tidy up please")))

    assert answer == "Done: nothing needed deleting."
    history = (await manager.require_session(session_id)).history
    assert [m.role for m in history] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    call = history[3].tool_calls
    assert call is not None and call[0]["function"]["name"] == "manage_session"
    result = json.loads(str(history[4].content))
    # Ten asked for, four real rows when it ran: the count says four.
    assert result == {"ok": True, "kept_messages": 4}
    assert history[4].tool_call_id == call[0]["id"]
    # The model was told the result in OpenAI's format, then answered.
    follow_up = openai_server.requests[-1]["messages"]
    assert follow_up[-2]["tool_calls"][0]["id"] == call[0]["id"]
    assert follow_up[-1] == {
        "role": "tool",
        "content": history[4].content,
        "tool_call_id": call[0]["id"],
    }
    assert openai_server.requests[0]["tools"][0]["function"]["name"] == "manage_session"

    # Everything persists and reloads.
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        again = (await reopened.require_session(session_id)).history
        assert again == history
        assert (await reopened.list_sessions())[0].message_count == 6
    finally:
        await reopened.close()


async def test_truncate_with_a_small_keep_count_ends_the_turn_it_removed(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer, db_path: Path
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call({"action": "truncate", "keep_count": 1})]

    answer = "".join(await drain(engine.send(session_id, "keep only my first message")))

    assert answer == ""
    assert [m.content for m in (await manager.require_session(session_id)).history] == [
        "first question"
    ]
    assert query(db_path, "SELECT message_count FROM sessions") == [(1,)]
    assert len(openai_server.requests) == 1  # no answer to a call that is gone


async def test_rename_sets_the_title_and_the_answer_streams(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call({"action": "rename", "title": "Trip to Lisbon"})]
    openai_server.reply = "Renamed it for you."

    deltas = await drain(engine.send(session_id, "call this chat Trip to Lisbon"))

    assert len(deltas) > 1 and "".join(deltas) == "Renamed it for you."
    session = await manager.require_session(session_id)
    assert session.title == "Trip to Lisbon"
    assert json.loads(str(session.history[-2].content)) == {"ok": True, "title": "Trip to Lisbon"}


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"action": "truncate", "keep_count": "ten"}, "keep_count"),
        ({"action": "truncate", "keep_count": -1}, "keep_count"),
        ({"action": "rename"}, "title"),
        ({"action": "explode"}, "'action' must be one of"),
        ({"action": "info", "colour": "red"}, "does not take colour"),
        ('{"action": "rename", "title": ', "not valid JSON"),
    ],
)
async def test_bad_arguments_get_a_result_saying_why_and_change_nothing(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    arguments: dict[str, object] | str,
    says: str,
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call(arguments)]
    openai_server.reply = "Sorry, let me fix that."

    answer = "".join(await drain(engine.send(session_id, "do something")))

    assert answer == "Sorry, let me fix that."
    session = await manager.require_session(session_id)
    assert session.title == "Three"
    assert [m.role for m in session.history] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    result = json.loads(str(session.history[4].content))
    assert says in result["error"] and "nothing was changed" in result["error"]


async def test_info_reports_count_tokens_and_window(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call({"action": "info"})]
    await drain(engine.send(session_id, "how full is this chat?"))
    result = json.loads(str((await manager.require_session(session_id)).history[4].content))
    assert result["messages"] == 4 and result["context_window"] == 8192
    assert 0 < result["tokens_used"] < 100


async def test_a_model_calling_tools_forever_is_stopped_after_four_rounds(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session_id = await _three_message_chat(manager)
    openai_server.tool_call_script = [_call({"action": "info"}) for _ in range(10)]
    openai_server.reply = "Enough tools."

    answer = "".join(await drain(engine.send(session_id, "loop")))

    assert answer == "Enough tools."
    bodies = openai_server.requests
    assert len(bodies) == MAX_TOOL_ROUNDS + 1
    assert all("tools" in b for b in bodies[:-1]) and "tools" not in bodies[-1]


async def test_compact_through_the_tool_keeps_the_originals(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session_id = await _three_message_chat(manager)
    originals = list((await manager.require_session(session_id)).history)
    openai_server.tool_call_script = [_call({"action": "compact"})]
    openai_server.reply = "Compacted."

    await drain(engine.send(session_id, "make room"))

    session = await manager.require_session(session_id)
    assert session.history[0].is_summary
    assert await manager.compacted_messages(session_id) == originals
    result = json.loads(str(session.history[3].content))
    assert result["ok"] is True and result["summarised_messages"] == 2


async def test_a_server_refusing_tools_is_asked_again_without_them(
    engine: ChatEngine, manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    session = await manager.create_session()
    openai_server.reject_tools = True
    assert "".join(await drain(engine.send(session.id, "hi"))) == openai_server.reply
    assert "tools" in openai_server.requests[0] and "tools" not in openai_server.requests[1]
    await drain(engine.send(session.id, "again"))
    assert "tools" not in openai_server.requests[2]  # remembered


def test_parse_defaults_keep_count_to_ten() -> None:
    assert parse_manage_session('{"action": "truncate"}').keep_count == DEFAULT_KEEP_COUNT
    with pytest.raises(ToolArgumentError, match="whole number"):
        parse_manage_session('{"action": "truncate", "keep_count": true}')


async def test_tool_calls_a_model_makes_unasked_are_not_stored(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(
        manager, provider, auto_title=False, tools_enabled=lambda provider, model: False
    )
    session_id = await _three_message_chat(manager)
    openai_server.tool_calls_unasked = True
    openai_server.tool_call_script = [_call({"action": "truncate", "keep_count": 0})]

    # Calls and nothing else: nothing is stored, and it is an empty reply the user retries.
    with pytest.raises(ProviderError, match="empty reply"):
        await drain(engine.send(session_id, "hi"))

    assert "tools" not in openai_server.requests[-1]
    history = (await manager.require_session(session_id)).history
    assert [m.content for m in history] == ["first question", "first answer", "hi"]
    assert all(m.tool_calls is None for m in history)
