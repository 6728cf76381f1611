"""SQL for keeping chats: trash, pin, archive, branches and imported chats."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import CompactedMessage, Session
from chatdesk.storage import image_rows, message_rows, session_rows, tables
from chatdesk.storage.content_codec import EncodedContent
from chatdesk.storage.database import in_chunks


async def set_session_columns(conn: AsyncConnection, session_id: str, **values: Any) -> bool:
    """Set columns of one session; True when the session exists."""
    result = await conn.execute(
        update(tables.sessions).where(tables.sessions.c.id == session_id).values(**values)
    )
    return result.rowcount > 0


async def trashed_before(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    """The ids of the sessions moved to the Trash before ``cutoff``."""
    s = tables.sessions.c
    rows = await conn.execute(select(s.id).where(s.trashed_at.is_not(None), s.trashed_at < cutoff))
    return list(rows.scalars())


async def already_stored(
    conn: AsyncConnection,
    *,
    import_keys: Iterable[str],
    session_ids: Iterable[str],
    message_ids: Iterable[str],
    compaction_ids: Iterable[str] = (),
) -> tuple[set[str], set[str], set[str], set[str]]:
    """Which of these import keys, session ids, message ids and compaction ids are taken.

    A message id counts as taken in the compaction archive too (undo moves it back), and
    a compaction id wherever a summary or an archived message uses it.
    """
    s, m, cm = tables.sessions.c, tables.messages.c, tables.compacted_messages.c
    message_ids, compaction_ids = list(message_ids), list(compaction_ids)
    return (
        await existing(conn, s.import_key, import_keys),
        await existing(conn, s.id, session_ids),
        await existing(conn, m.id, message_ids) | await existing(conn, cm.id, message_ids),
        await existing(conn, m.compaction_id, compaction_ids)
        | await existing(conn, cm.archived_by, compaction_ids)
        | await existing(conn, cm.compaction_id, compaction_ids),
    )


async def existing(conn: AsyncConnection, column: Any, values: Iterable[str]) -> set[str]:
    """Which of ``values`` already occur in ``column`` (a sessions or messages column)."""
    wanted = sorted(set(values))
    found: set[str] = set()
    for chunk in in_chunks(wanted):
        found.update((await conn.execute(select(column).where(column.in_(chunk)))).scalars())
    return found


async def insert_whole_session(
    conn: AsyncConnection,
    session: Session,
    encoded: Sequence[EncodedContent],
    *,
    import_key: str | None,
    compacted: Sequence[tuple[CompactedMessage, EncodedContent]] = (),
) -> None:
    """Insert a whole session (row, messages in order, their images) in ``conn``.

    ``compacted`` is the compaction archive behind its summaries, stored with it.
    """
    await conn.execute(
        insert(tables.sessions).values(**session_rows.session_row(session), import_key=import_key)
    )
    if session.history:
        await conn.execute(
            insert(tables.messages),
            [
                message_rows.message_row(m, session.id, i, e)
                for i, (m, e) in enumerate(zip(session.history, encoded, strict=True))
            ],
        )
    for m, e in zip(session.history, encoded, strict=True):
        await image_rows.store_images(conn, m.id, e.images)
    if compacted:
        await conn.execute(
            insert(tables.compacted_messages),
            [_archived_row(entry, session.id, e) for entry, e in compacted],
        )
    for entry, e in compacted:
        await image_rows.store_images(
            conn, entry.message.id, e.images, links=tables.compacted_message_images
        )


def _archived_row(entry: CompactedMessage, session_id: str, encoded: EncodedContent) -> Any:
    row = message_rows.message_row(entry.message, session_id, None, encoded)
    # The archive keeps no reply facts (compaction does not move them either).
    del row["meta"]
    return {**row, "archived_by": entry.compacted_by, "ordinal": entry.position}
