"""SQL of compaction: moving messages into the archive, and back.

A compaction replaces a run of messages by one summary message. The replaced rows move,
unchanged (content cells, image references, tool fields), from ``messages`` to
``compacted_messages``; their image links move to ``compacted_message_images`` so the
image bytes stay stored. Undoing a compaction moves them back. Only the SessionManager
calls these, inside its own transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.storage import tables
from chatdesk.storage.database import in_chunks

# The columns ``messages`` and ``compacted_messages`` share, in one order.
_SHARED = (
    "id",
    "session_id",
    "role",
    "content_type",
    "content",
    "status",
    "error",
    "created_at",
    "tool_calls",
    "tool_call_id",
    "compaction_id",
    "compacted_count",
)


async def archive_messages(
    conn: AsyncConnection, session_id: str, message_ids: Sequence[str], archived_by: str
) -> int | None:
    """Move the messages ``message_ids`` (in history order) to the archive of ``archived_by``.

    Returns the smallest position they held (where a summary can take their place), or
    None when none of them is stored.
    """
    m, cm = tables.messages.c, tables.compacted_messages.c
    first: int | None = None
    for chunk in in_chunks(message_ids):
        low = (
            await conn.execute(
                select(func.min(m.position)).where(m.session_id == session_id, m.id.in_(chunk))
            )
        ).scalar()
        if low is not None and (first is None or low < first):
            first = low
        rows = select(
            *(getattr(m, name) for name in _SHARED),
            literal(archived_by).label("archived_by"),
            m.position.label("ordinal"),
        ).where(m.session_id == session_id, m.id.in_(chunk))
        await conn.execute(
            insert(tables.compacted_messages).from_select(
                [*(getattr(cm, name) for name in _SHARED), cm.archived_by, cm.ordinal], rows
            )
        )
        mi, ci = tables.message_images.c, tables.compacted_message_images.c
        await conn.execute(
            insert(tables.compacted_message_images).from_select(
                [ci.message_id, ci.sha256],
                select(mi.message_id, mi.sha256).where(mi.message_id.in_(chunk)),
            )
        )
        # The image links of these rows go with them (ON DELETE CASCADE).
        await conn.execute(
            delete(tables.messages).where(m.session_id == session_id, m.id.in_(chunk))
        )
    return first


async def archived_rows(conn: AsyncConnection, archived_by: str) -> list[Any]:
    """The rows a compaction archived, in the order they had in the history."""
    cm = tables.compacted_messages.c
    return list(
        (
            await conn.execute(
                select(*(getattr(cm, name) for name in _SHARED))
                .where(cm.archived_by == archived_by)
                # The original position first; the id only breaks ties deterministically.
                .order_by(cm.ordinal, cm.id)
            )
        ).all()
    )


async def archived_image_refs(conn: AsyncConnection, message_ids: Sequence[str]) -> set[str]:
    """The image hashes archived messages refer to."""
    ci = tables.compacted_message_images.c
    found: set[str] = set()
    for chunk in in_chunks(message_ids):
        found.update(
            (await conn.execute(select(ci.sha256).where(ci.message_id.in_(chunk)))).scalars()
        )
    return found


async def restore_messages(
    conn: AsyncConnection, session_id: str, archived_by: str, summary_id: str
) -> int:
    """Put the messages ``archived_by`` archived back where summary ``summary_id`` stands.

    The summary row is deleted and later messages move up to make room. Returns how
    many messages came back.
    """
    m, cm = tables.messages.c, tables.compacted_messages.c
    position = (
        await conn.execute(select(m.position).where(m.session_id == session_id, m.id == summary_id))
    ).scalar()
    if position is None:
        raise LookupError(f"session {session_id!r} has no summary {summary_id!r}")
    ids = list(
        (
            await conn.execute(
                select(cm.id).where(cm.archived_by == archived_by).order_by(cm.ordinal, cm.id)
            )
        ).scalars()
    )
    await conn.execute(delete(tables.messages).where(m.id == summary_id))
    shift = len(ids) - 1
    if shift > 0:
        # Two steps through negative positions, so no row ever collides with another on
        # the unique (session, position) index while they move.
        await conn.execute(
            update(tables.messages)
            .where(m.session_id == session_id, m.position > position)
            .values(position=-m.position - 1 - shift)
        )
        await conn.execute(
            update(tables.messages)
            .where(m.session_id == session_id, m.position < 0)
            .values(position=-m.position - 1)
        )
    rank = func.row_number().over(order_by=(cm.ordinal, cm.id)) - 1
    await conn.execute(
        insert(tables.messages).from_select(
            [*(getattr(m, name) for name in _SHARED), m.position],
            select(*(getattr(cm, name) for name in _SHARED), rank + position).where(
                cm.archived_by == archived_by
            ),
        )
    )
    mi, ci = tables.message_images.c, tables.compacted_message_images.c
    for chunk in in_chunks(ids):
        await conn.execute(
            insert(tables.message_images).from_select(
                [mi.message_id, mi.sha256],
                select(ci.message_id, ci.sha256).where(ci.message_id.in_(chunk)),
            )
        )
        await conn.execute(delete(tables.compacted_messages).where(cm.id.in_(chunk)))
    return len(ids)
