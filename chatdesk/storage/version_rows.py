"""SQL over ``turn_versions``: moving a history tail into a stored version and back.

A turn's versions are the tails of the history that followed one message. The tail being
shown lives in ``messages`` like any other; the others are rows of ``turn_versions``
holding their messages' rows as JSON (content cells as stored, images by reference), so
restoring one gives back exactly the messages that were replaced, ids included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import Message, VersionRef, new_id
from chatdesk.storage import image_rows, message_rows, tables
from chatdesk.storage.content_codec import image_refs

_MESSAGE_FIELDS = (
    "id",
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
    "meta",
)


@dataclass(frozen=True, slots=True)
class RestoredVersion:
    """A version moved back into ``messages``: its messages, ready for the history."""

    messages: list[Message]


async def load_version_refs(conn: AsyncConnection, session_id: str) -> dict[str, list[VersionRef]]:
    """Every stored version of ``session_id``'s turns, by the message each turn follows."""
    v = tables.turn_versions.c
    rows = await conn.execute(
        select(v.id, v.after_message_id, v.first_created_at)
        .where(v.session_id == session_id)
        .order_by(v.first_created_at, v.id)
    )
    found: dict[str, list[VersionRef]] = {}
    for row in rows:
        found.setdefault(row.after_message_id, []).append(VersionRef(row.id, row.first_created_at))
    return found


async def store_tail(
    conn: AsyncConnection, session_id: str, after_message_id: str, message_ids: Sequence[str]
) -> VersionRef:
    """Move the messages ``message_ids`` (a history tail) into a new stored version."""
    m = tables.messages.c
    rows = (
        (
            await conn.execute(
                select(*(getattr(m, name) for name in _MESSAGE_FIELDS))
                .where(m.session_id == session_id, m.id.in_(list(message_ids)))
                .order_by(m.position)
            )
        )
        .mappings()
        .all()
    )
    if len(rows) != len(message_ids):
        raise LookupError("the messages to keep as a version are not all stored")
    payload = [
        {
            **{name: row[name] for name in _MESSAGE_FIELDS},
            "created_at": row["created_at"].timestamp(),
        }
        for row in rows
    ]
    ref = VersionRef(new_id(), rows[0]["created_at"])
    await conn.execute(
        insert(tables.turn_versions),
        {
            "id": ref.id,
            "session_id": session_id,
            "after_message_id": after_message_id,
            "first_created_at": ref.first_created_at,
            "messages": json.dumps(payload),
        },
    )
    hashes = {
        h for row in rows if row["content_type"] == "blocks" for h in image_refs(row["content"])
    }
    if hashes:
        await conn.execute(
            insert(tables.turn_version_images),
            [{"version_id": ref.id, "sha256": h} for h in sorted(hashes)],
        )
    await conn.execute(delete(tables.messages).where(m.id.in_(list(message_ids))))
    return ref


async def restore_version(
    conn: AsyncConnection, session_id: str, version_id: str
) -> RestoredVersion:
    """Move stored version ``version_id`` back into ``messages``, after the last message."""
    v, m = tables.turn_versions.c, tables.messages.c
    row = (
        await conn.execute(select(v.messages).where(v.id == version_id, v.session_id == session_id))
    ).first()
    if row is None:
        raise LookupError(f"no stored version {version_id!r} in session {session_id!r}")
    payload: list[dict[str, Any]] = json.loads(row.messages)
    start = (
        await conn.execute(
            select(func.coalesce(func.max(m.position) + 1, 0)).where(m.session_id == session_id)
        )
    ).scalar_one()
    records = [
        {
            "tool_calls": None,
            "tool_call_id": None,
            "compaction_id": None,
            "compacted_count": 0,
            "meta": None,
            **item,
            "session_id": session_id,
            "position": start + offset,
            "created_at": datetime.fromtimestamp(item["created_at"], UTC),
        }
        for offset, item in enumerate(payload)
    ]
    if records:
        await conn.execute(insert(tables.messages), records)
    links = [
        {"message_id": r["id"], "sha256": h}
        for r in records
        if r["content_type"] == "blocks"
        for h in image_refs(r["content"])
    ]
    if links:
        await conn.execute(insert(tables.message_images), links)
    images = await image_rows.load_images(conn, {link["sha256"] for link in links})
    await conn.execute(delete(tables.turn_versions).where(v.id == version_id))
    # Read back as every message is read, so the version comes back exactly as stored.
    stored = await message_rows.read_messages(conn, session_id)
    tail = list(stored[len(stored) - len(records) :]) if records else []
    return RestoredVersion(message_rows.build_history(session_id, tail, images))
