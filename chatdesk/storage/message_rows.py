"""SQL over the ``messages`` table, and turning its rows back into Messages.

Positions are stored in history order; a session's messages are read back by position.
The SessionManager calls these inside its own transactions and decides when memory
changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import Message, validate_tool_calls
from chatdesk.storage import tables
from chatdesk.storage.content_codec import EncodedContent, decode_content

log = logging.getLogger(__name__)

_m = tables.messages.c

# A message as read_messages returns it: id, role, content_type, content, status, error,
# created_at, tool_calls, tool_call_id, compaction_id, compacted_count, meta (rows rather
# than mappings: attribute access is the cheaper one per row).
StoredMessage: TypeAlias = (
    "Row[str, str, str, str, str, str | None, datetime, str | None, str | None, str | None, int, "
    "str | None]"
)

# Inserts a message one past the last stored position of its session: even if memory and
# disk ever disagreed about how many messages there are, a new message can be stored.
# Built once, so SQLAlchemy's statement cache serves it without rebuilding its key.
_APPEND_MESSAGE = insert(tables.messages).values(
    position=select(func.coalesce(func.max(_m.position) + 1, 0))
    .where(_m.session_id == bindparam("of_session"))
    .scalar_subquery()
)


def message_row(
    message: Message, session_id: str, position: int | None, encoded: EncodedContent
) -> dict[str, Any]:
    """The row of ``message``; without a position when ``position`` is None."""
    row: dict[str, Any] = {
        "id": message.id,
        "session_id": session_id,
        "position": position,
        "role": message.role,
        "content_type": encoded.content_type,
        "content": encoded.cell,
        "status": message.status,
        "error": message.error,
        "created_at": message.created_at,
        "tool_calls": tool_calls_cell(message.tool_calls),
        "tool_call_id": message.tool_call_id,
        "compaction_id": message.compaction_id,
        "compacted_count": message.compacted_count,
        "meta": encode_meta(message.meta),
    }
    if position is None:
        del row["position"]
    return row


async def interrupt_streaming(conn: AsyncConnection) -> None:
    """Mark every reply still ``streaming`` as ``interrupted`` (its writer is gone)."""
    await conn.execute(
        update(tables.messages).where(_m.status == "streaming").values(status="interrupted")
    )


async def append_message(
    conn: AsyncConnection, session_id: str, message: Message, encoded: EncodedContent
) -> None:
    """Store ``message`` after the last stored message of session ``session_id``."""
    row = message_row(message, session_id, None, encoded)
    await conn.execute(_APPEND_MESSAGE, {**row, "of_session": session_id})


async def insert_message(
    conn: AsyncConnection,
    session_id: str,
    message: Message,
    position: int,
    encoded: EncodedContent,
) -> None:
    """Store ``message`` at ``position`` (a free one) of session ``session_id``."""
    await conn.execute(
        insert(tables.messages).values(**message_row(message, session_id, position, encoded))
    )


async def update_message(
    conn: AsyncConnection,
    message_id: str,
    encoded: EncodedContent,
    status: str,
    error: str | None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Store new content, status, error (and tool calls and facts, when given) for message
    ``message_id``."""
    values: dict[str, Any] = {
        "content_type": encoded.content_type,
        "content": encoded.cell,
        "status": status,
        "error": error,
    }
    if tool_calls is not None:
        values["tool_calls"] = tool_calls_cell(tool_calls)
    if meta is not None:
        values["meta"] = encode_meta(meta)
    await conn.execute(update(tables.messages).where(_m.id == message_id).values(**values))


def encode_meta(meta: dict[str, Any] | None) -> str | None:
    """A reply's facts as the JSON stored in ``messages.meta``."""
    return None if meta is None else json.dumps(meta)


def decode_meta(cell: str | None) -> dict[str, Any] | None:
    """The facts stored in ``messages.meta``; None when absent or unreadable."""
    if not cell:
        return None
    try:
        found = json.loads(cell)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


async def replace_messages(
    conn: AsyncConnection,
    session_id: str,
    history: Sequence[Message],
    encoded: Sequence[EncodedContent],
) -> None:
    """Delete every message of session ``session_id`` and store ``history`` in its place."""
    await conn.execute(delete(tables.messages).where(_m.session_id == session_id))
    if history:
        await conn.execute(
            insert(tables.messages),
            [
                message_row(m, session_id, i, e)
                for i, (m, e) in enumerate(zip(history, encoded, strict=True))
            ],
        )


async def message_ids(conn: AsyncConnection, session_id: str) -> list[str]:
    """The ids of a session's stored messages, in history order."""
    rows = await conn.execute(
        select(_m.id).where(_m.session_id == session_id).order_by(_m.position)
    )
    return [row[0] for row in rows]


async def delete_messages(conn: AsyncConnection, ids: Sequence[str]) -> None:
    """Delete the messages with these ids (and nothing else)."""
    # SQLite allows a limited number of bound values in one statement.
    for start in range(0, len(ids), 500):
        await conn.execute(delete(tables.messages).where(_m.id.in_(ids[start : start + 500])))


async def count_messages(conn: AsyncConnection, session_id: str) -> int:
    """How many messages of the session are stored."""
    count: int = (
        await conn.execute(
            select(func.count()).select_from(tables.messages).where(_m.session_id == session_id)
        )
    ).scalar_one()
    return count


async def read_messages(conn: AsyncConnection, session_id: str) -> Sequence[StoredMessage]:
    """The stored messages of session ``session_id``, in history order."""
    query = (
        select(
            _m.id,
            _m.role,
            _m.content_type,
            _m.content,
            _m.status,
            _m.error,
            _m.created_at,
            _m.tool_calls,
            _m.tool_call_id,
            _m.compaction_id,
            _m.compacted_count,
            _m.meta,
        )
        .where(_m.session_id == session_id)
        .order_by(_m.position)
    )
    return (await conn.execute(query)).all()


def build_history(
    session_id: str, rows: Sequence[StoredMessage], image_bytes: dict[str, bytes]
) -> list[Message]:
    """The Messages that rows from :func:`read_messages` describe (CPU work for images).

    A message whose content cannot be read comes back as its raw text, with a warning.
    """
    history = []
    for r in rows:
        content, ok = decode_content(r.content_type, r.content, image_bytes)
        if not ok:
            log.warning("message %s of session %s has unreadable content", r.id, session_id)
        history.append(
            Message(
                role=r.role,
                content=content,
                id=r.id,
                created_at=r.created_at,
                status=r.status,
                error=r.error,
                tool_calls=tool_calls_of(r.tool_calls),
                tool_call_id=r.tool_call_id,
                compaction_id=r.compaction_id,
                compacted_count=r.compacted_count or 0,
                # Rows of the compaction archive have no meta column.
                meta=decode_meta(getattr(r, "meta", None)),
            )
        )
    return history


def tool_calls_cell(tool_calls: list[dict[str, Any]] | None) -> str | None:
    """The stored form of a message's tool calls (JSON), None when it has none."""
    return None if not tool_calls else json.dumps(tool_calls, ensure_ascii=False)


def tool_calls_of(cell: str | None) -> list[dict[str, Any]] | None:
    """The stored tool calls, or None when there are none or the cell does not parse."""
    if not cell:
        return None
    try:
        calls = json.loads(cell)
        validate_tool_calls(calls)
    except (ValueError, RecursionError):
        log.warning("ignoring unreadable stored tool calls")
        return None
    return calls or None
