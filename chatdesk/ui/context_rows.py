"""How compaction summaries and tool calls read in the chat: short, in words, not JSON.

A summary row says how many messages it stands for and shows the summary; expanded, the
original messages follow it as a transcript. A tool call reads as what the model asked
for ("Renamed the chat to “Trip”"), not as the raw arguments and result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chatdesk.context import describe_tool_call
from chatdesk.domain import Message, content_text

# An expanded summary shows at most this many originals in its row (a transcript of
# thousands would make one enormous text block); the rest are counted.
MAX_EXPANDED_MESSAGES = 300
# Plain text, not an emoji: every system font has it.
TOOL_MARK = "Tool ·"


def summary_heading(message: Message) -> str:
    """``42 earlier messages, summarised`` for a summary row."""
    count = message.compacted_count
    noun = "message" if count == 1 else "messages"
    return f"{count} earlier {noun}, summarised"


def display_blocks(
    message: Message, originals: Sequence[Message] | None = None
) -> list[dict[str, Any]]:
    """The content blocks a row shows for ``message``.

    ``originals`` (the messages a summary replaced) are shown after the summary when the
    row is expanded.
    """
    if message.is_summary:
        arrow = "▾" if originals is not None else "▸"
        text = f"**{arrow} {summary_heading(message)}**\n\n{content_text(message.content)}"
        if originals is not None:
            text += "\n\n---\n\n" + transcript(originals)
        return [{"type": "text", "text": text}]
    if message.role == "tool":
        return [{"type": "text", "text": f"*{TOOL_MARK} {tool_result_text(message)}*"}]
    if message.tool_calls:
        calls = "\n\n".join(f"*{TOOL_MARK} {describe_call(call)}*" for call in message.tool_calls)
        said = content_text(message.content).strip()
        return [{"type": "text", "text": f"{said}\n\n{calls}" if said else calls}]
    content = message.content
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def transcript(messages: Sequence[Message]) -> str:
    """The originals of an expanded summary as Markdown: who said what, in order."""
    shown = messages[:MAX_EXPANDED_MESSAGES]
    lines = []
    for message in shown:
        who = {"user": "You", "assistant": "Assistant", "tool": "Tool"}.get(
            message.role, message.role.capitalize()
        )
        text = content_text(message.content).strip()
        if isinstance(message.content, list):
            images = sum(1 for b in message.content if b.get("type") == "image_url")
            text = (text + " " + "*[image]*" * images).strip()
        if message.tool_calls:
            text = (text + " " + "; ".join(describe_call(c) for c in message.tool_calls)).strip()
        lines.append(f"**{who}:** {text}")
    if len(messages) > len(shown):
        lines.append(f"*… and {len(messages) - len(shown)} more*")
    return "\n\n".join(lines)


def describe_call(call: Mapping[str, Any]) -> str:
    """What a tool call asks for, in words (the manage_session actions), else its signature."""
    function = call.get("function") or {}
    if function.get("name") == "manage_session":
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            action = arguments.get("action")
            if action == "info":
                return "Checking how full this chat is"
            if action == "rename" and isinstance(arguments.get("title"), str):
                return f"Renaming the chat to “{arguments['title']}”"
            if action == "compact":
                return "Summarising earlier messages"
            keep = arguments.get("keep_count", 10)
            if action == "truncate" and isinstance(keep, int) and not isinstance(keep, bool):
                return f"Keeping the first {keep} messages"
    return f"Calling {describe_tool_call(call)}"


def tool_result_text(message: Message) -> str:
    """A tool result in words: what happened, or what went wrong."""
    raw = content_text(message.content)
    try:
        result = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(result, dict):
        return raw
    if "error" in result:
        return f"Failed: {result['error']}"
    if "kept_messages" in result:
        return f"Kept {result['kept_messages']} messages"
    if "summarised_messages" in result:
        return f"Summarised {result['summarised_messages']} messages"
    if "title" in result and "messages" not in result:
        return f"Renamed the chat to “{result['title']}”"
    if "messages" in result:
        return (
            f"{result['messages']} messages, {_number(result.get('tokens_used'))} of "
            f"{_number(result.get('context_window'))} tokens used"
        )
    if "note" in result:
        return str(result["note"]).capitalize()
    return raw


def _number(value: object) -> str:
    """``8,192`` for 8192; anything else as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)
