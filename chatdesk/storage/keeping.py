"""SQL for keeping chats: trash, pin, archive, branches and imported chats."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.storage import tables

# SQLite limits the number of bound parameters in one statement.
_IN_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


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


async def existing(conn: AsyncConnection, column: Any, values: Iterable[str]) -> set[str]:
    """Which of ``values`` already occur in ``column`` (a sessions or messages column)."""
    wanted = sorted(set(values))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update((await conn.execute(select(column).where(column.in_(chunk)))).scalars())
    return found
