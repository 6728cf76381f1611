"""Messages made ready to store: validated, copied, and encoded once, before any write.

Everything is checked before the first write, so bad input changes nothing anywhere.
These functions are pure (no database, no loop), so the manager can run them on a
worker thread when the content holds large images.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chatdesk.domain import (
    MESSAGE_STATUSES,
    Content,
    Message,
    validate_role,
    validate_tool_calls,
)
from chatdesk.storage.content_codec import EncodedContent, encode_content


def checked_status(status: str) -> str:
    """``status`` if it is a message status; ValueError otherwise."""
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    return status


def prepare_message(
    role: str, content: Content, status: str, error: str | None, **fields: Any
) -> tuple[Message, EncodedContent]:
    """A validated message (as Message.create makes) and its stored form.

    Each image is decoded once, where Message.create and then encode_content would
    decode it twice.
    """
    validate_role(role)
    validate_tool_calls(fields.get("tool_calls"))
    encoded = encode_content(content)  # validates the content
    message = Message(
        role=role, content=copy.deepcopy(content), status=status, error=error, **fields
    )
    return message, encoded


def snapshot(item: Message | dict[str, Any]) -> Message | dict[str, Any]:
    """A private copy of a message (or message dict) that a worker thread can read safely.

    Taken on the caller's side; a dict must have ``role`` and ``content``.
    """
    if isinstance(item, Message):
        return replace(item, content=copy.deepcopy(item.content))
    if not isinstance(item, dict) or "role" not in item or "content" not in item:
        raise ValueError("each message must be a Message or a dict with 'role' and 'content'")
    copied = {"role": item["role"], "content": copy.deepcopy(item["content"])}
    for name in ("tool_calls", "tool_call_id"):
        if item.get(name) is not None:
            copied[name] = copy.deepcopy(item[name])
    return copied


def content_of(item: Message | dict[str, Any]) -> object:
    """The content of a message or message dict."""
    return item.content if isinstance(item, Message) else item["content"]


def prepare_history(
    items: Sequence[Message | dict[str, Any]],
) -> tuple[list[Message], list[EncodedContent]]:
    """A whole new history, validated and encoded: Message objects keep their ids and
    fields, dicts become new complete messages."""
    prepared = [
        prepare_message(
            item.role,
            item.content,
            checked_status(item.status),
            item.error,
            id=item.id,
            created_at=item.created_at,
            tool_calls=item.tool_calls,
            tool_call_id=item.tool_call_id,
            compaction_id=item.compaction_id,
            compacted_count=item.compacted_count,
        )
        if isinstance(item, Message)
        else prepare_message(
            item["role"],
            item["content"],
            "complete",
            None,
            tool_calls=item.get("tool_calls"),
            tool_call_id=item.get("tool_call_id"),
        )
        for item in items
    ]
    return [m for m, _ in prepared], [e for _, e in prepared]
