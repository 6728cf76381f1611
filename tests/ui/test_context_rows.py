"""Summary and tool rows read in words."""

from __future__ import annotations

import json

from chatdesk.domain import Message
from chatdesk.ui.context_rows import MAX_EXPANDED_MESSAGES, describe_call, display_blocks


def _call(arguments: dict[str, object]) -> dict[str, object]:
    return {
        "id": "c1",
        "type": "function",
        "function": {"name": "manage_session", "arguments": json.dumps(arguments)},
    }


def _text(message: Message, originals: list[Message] | None = None) -> str:
    return str(display_blocks(message, originals)[0]["text"])


def test_each_action_and_result_reads_as_a_sentence() -> None:
    assert describe_call(_call({"action": "info"})) == "Checking how full this chat is"
    assert describe_call(_call({"action": "compact"})) == "Summarising earlier messages"
    assert describe_call(_call({"action": "truncate"})) == "Keeping the first 10 messages"
    results = {
        '{"ok": true, "kept_messages": 4}': "Kept 4 messages",
        '{"ok": true, "summarised_messages": 6, "tokens_used": 9}': "Summarised 6 messages",
        '{"ok": true, "title": "Trip"}': "Renamed the chat to “Trip”",
        '{"title": "T", "messages": 3, "tokens_used": 1200, "context_window": 8192}': (
            "3 messages, 1,200 of 8,192 tokens used"
        ),
        '{"error": "bad; nothing was changed"}': "Failed: bad; nothing was changed",
        "not json": "not json",
    }
    for content, words in results.items():
        assert words in _text(Message("tool", content, tool_call_id="c1"))


def test_a_summary_row_collapsed_and_expanded() -> None:
    summary = Message("system", "They met.", compaction_id="x", compacted_count=42)
    assert _text(summary).startswith("**▸ 42 earlier messages, summarised**")
    originals = [Message("user", "hi"), Message("assistant", "hello")]
    expanded = _text(summary, originals)
    assert expanded.startswith("**▾ 42") and "**You:** hi" in expanded
    assert "**Assistant:** hello" in expanded
    many = [Message("user", f"m{i}") for i in range(MAX_EXPANDED_MESSAGES + 5)]
    assert "… and 5 more" in _text(summary, many)


def test_a_reply_with_text_and_a_call_shows_both() -> None:
    message = Message("assistant", "Let me check.", tool_calls=[_call({"action": "info"})])
    assert _text(message) == "Let me check.\n\n*Tool · Checking how full this chat is*"
