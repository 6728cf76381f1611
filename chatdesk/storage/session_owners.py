"""Who owns a stored session, and which sessions still have a row: access checks' SQL."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.storage import tables

# SQLite limits the number of bound parameters in one statement.
_IN_CHUNK = 500


async def stored_owner(conn: AsyncConnection, session_id: str) -> str | None:
    """The owner in the row of ``session_id``, or None when there is no row."""
    s = tables.sessions.c
    return (await conn.execute(select(s.owner).where(s.id == session_id))).scalar()


async def stored_session_ids(conn: AsyncConnection, session_ids: Iterable[str]) -> set[str]:
    """Those of ``session_ids`` that have a row."""
    wanted = sorted(set(session_ids))
    found: set[str] = set()
    s = tables.sessions.c
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found.update((await conn.execute(select(s.id).where(s.id.in_(chunk)))).scalars())
    return found
