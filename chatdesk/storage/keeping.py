"""SQL for keeping chats: trash, pin, archive, branches and imported chats."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import Session
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
) -> tuple[set[str], set[str], set[str]]:
    """Which of these import keys, session ids and message ids are stored already."""
    s, m = tables.sessions.c, tables.messages.c
    return (
        await existing(conn, s.import_key, import_keys),
        await existing(conn, s.id, session_ids),
        await existing(conn, m.id, message_ids),
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
) -> None:
    """Insert a whole session (row, messages in order, their images) in ``conn``."""
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
