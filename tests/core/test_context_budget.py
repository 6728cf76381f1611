"""The budget and the compaction plan, on plain sessions (no model, no database)."""

from __future__ import annotations

from chatdesk.context import (
    IMAGE_TOKENS,
    TokenCounter,
    build_context,
    measure,
    plan_compaction,
    reply_reserve,
)
from chatdesk.domain import Message, Session
from tests.core.conftest import png_data_url


def _session(pairs: int, words: int = 20, system: str | None = "Be brief.") -> Session:
    session = Session(system_prompt=system)
    for i in range(pairs):
        session.history.append(Message("user", f"question {i} " + "lorem " * words))
        session.history.append(Message("assistant", f"answer {i} " + "ipsum " * words))
    return session


def test_the_budget_counts_system_messages_images_and_the_reserve() -> None:
    session = _session(2)
    image = [{"type": "image_url", "image_url": {"url": png_data_url()}}]
    session.history.append(Message("user", image))
    budget = measure(session, TokenCounter(), 8192, reply_reserve(8192))
    assert budget.system > 0 and budget.messages > 100 and budget.summary == 0
    assert budget.image_count == 1 and budget.images == IMAGE_TOKENS
    assert budget.reserve == 1024 and budget.fits
    assert budget.used == budget.system + budget.messages + budget.images


def test_counts_follow_a_changed_message_and_the_usage_servers_report() -> None:
    counter = TokenCounter()
    session = _session(1)
    before = measure(session, counter, 8192, 1024).messages
    session.history[0].content = "short"
    assert measure(session, counter, 8192, 1024).messages < before
    for _ in range(20):
        counter.observe(measure(session, counter, 8192, 1024).used, 120)
    # The estimate converges on what the server says.
    assert abs(measure(session, counter, 8192, 1024).used - 120) <= 3


def test_a_plan_keeps_the_latest_exchange_and_never_splits_a_tool_call() -> None:
    session = _session(10)
    calls = [{"id": "c1", "type": "function", "function": {"name": "manage_session"}}]
    session.history.append(Message("user", "how full?"))
    session.history.append(Message("assistant", "", tool_calls=calls))
    session.history.append(Message("tool", "{}", tool_call_id="c1"))
    counter = TokenCounter()
    budget = measure(session, counter, 512, reply_reserve(512))
    assert not budget.fits
    folded = plan_compaction(session, counter, budget)
    kept = session.history[len(folded) :]
    assert folded == session.history[: len(folded)]
    assert kept[0].role != "tool"
    assert [m.role for m in kept[-3:]] == ["user", "assistant", "tool"]
    assert measure(session, counter, 512, budget.reserve, kept).used <= budget.limit


def test_nothing_to_plan_for_a_single_message_or_a_lone_summary() -> None:
    counter = TokenCounter()
    alone = _session(0)
    alone.history.append(Message("user", "lorem " * 2000))
    budget = measure(alone, counter, 512, 128)
    assert plan_compaction(alone, counter, budget, harder=True) == []


def test_the_summary_is_folded_into_the_system_message() -> None:
    session = _session(1, system="Be brief.")
    summary = Message("system", "They said hello.", compaction_id="x", compacted_count=4)
    session.history.insert(0, summary)
    context = build_context(session)
    assert context[0] == {
        "role": "system",
        "content": "Be brief.\n\nSummary of the earlier conversation:\nThey said hello.",
    }
    assert [m["role"] for m in context[1:]] == ["user", "assistant"]


def test_without_tools_calls_and_results_are_sent_as_text() -> None:
    session = Session()
    calls = [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "manage_session", "arguments": '{"action": "info"}'},
        }
    ]
    session.history += [
        Message("user", "how full?"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", '{"messages": 2}', tool_call_id="c1"),
    ]
    context = build_context(session, tools=False)
    assert context[1] == {
        "role": "assistant",
        "content": '[Tool call] manage_session(action="info")',
    }
    assert context[2] == {"role": "user", "content": '[Tool result] {"messages": 2}'}
