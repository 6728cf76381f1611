"""SQL over the ``sessions`` table: one plain async function per statement.

The SessionManager calls these inside its own transactions and decides when memory
changes; nothing here holds state or knows about the in-memory sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import Message, Session, SessionSummary
from chatdesk.storage import tables
from chatdesk.storage.database import in_chunks

_s = tables.sessions.c


def session_row(session: Session) -> dict[str, Any]:
    """The ``sessions`` row of ``session``."""
    return {
        "id": session.id,
        "owner": session.owner,
        "title": session.title,
        "kind": session.kind,
        "task_id": session.task_id,
        "system_prompt": session.system_prompt,
        "provider": session.provider,
        "model": session.model,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "message_count": session.message_count,
        "pinned": int(session.pinned),
        "archived_at": session.archived_at,
        "trashed_at": session.trashed_at,
        "parent_session_id": session.parent_session_id,
        "parent_message_id": session.parent_message_id,
        "temperature": session.temperature,
        "max_tokens": session.max_tokens,
        "draft": session.draft,
    }


def session_from_row(row: RowMapping, history: list[Message]) -> Session:
    """The Session a stored row describes, holding ``history``."""
    return Session(
        id=row["id"],
        owner=row["owner"],
        title=row["title"],
        kind=row["kind"],
        task_id=row["task_id"],
        system_prompt=row["system_prompt"],
        provider=row["provider"],
        model=row["model"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        history=history,
        pinned=bool(row["pinned"]),
        archived_at=row["archived_at"],
        trashed_at=row["trashed_at"],
        parent_session_id=row["parent_session_id"],
        parent_message_id=row["parent_message_id"],
        temperature=row["temperature"],
        max_tokens=row["max_tokens"],
        draft=row["draft"],
    )


async def insert_session(conn: AsyncConnection, session: Session) -> None:
    """Store a new session."""
    await conn.execute(insert(tables.sessions).values(**session_row(session)))


async def read_session(conn: AsyncConnection, session_id: str) -> RowMapping | None:
    """The stored row of session ``session_id``, or None."""
    query = select(tables.sessions).where(_s.id == session_id)
    return (await conn.execute(query)).mappings().first()


async def list_summaries(
    conn: AsyncConnection,
    owner: str | None,
    *,
    include_trashed: bool = False,
    archived: bool | None = None,
    trashed_only: bool = False,
    parent_session_id: str | None = None,
) -> list[SessionSummary]:
    """Sessions (of ``owner`` if given), pinned first, then most recent activity.

    The Trash is left out unless ``include_trashed`` (or ``trashed_only``); ``archived``
    True/False keeps only archived/unarchived chats, None both; ``parent_session_id``
    keeps the branches of that chat.
    """
    s = _s
    query = select(
        s.id,
        s.title,
        s.kind,
        s.owner,
        s.message_count,
        s.created_at,
        s.updated_at,
        s.task_id,
        s.pinned,
        s.archived_at,
        s.trashed_at,
        s.parent_session_id,
    ).order_by(s.pinned.desc(), s.updated_at.desc(), s.id)
    if owner is not None:
        query = query.where(s.owner == owner)
    if trashed_only:
        query = query.where(s.trashed_at.is_not(None))
    elif not include_trashed:
        query = query.where(s.trashed_at.is_(None))
    if archived is not None:
        query = query.where(s.archived_at.is_not(None) if archived else s.archived_at.is_(None))
    if parent_session_id is not None:
        query = query.where(s.parent_session_id == parent_session_id)
    rows = (await conn.execute(query)).all()
    return [SessionSummary(*row[:8], bool(row[8]), *row[9:]) for row in rows]


async def update_fields(conn: AsyncConnection, session_id: str, changes: Mapping[str, Any]) -> None:
    """Set the given columns of session ``session_id``."""
    await conn.execute(update(tables.sessions).where(_s.id == session_id).values(**changes))


async def set_message_count(
    conn: AsyncConnection, session_id: str, count: int, updated_at: datetime | None = None
) -> None:
    """Store how many messages session ``session_id`` has (and its new activity time)."""
    values: dict[str, Any] = {"message_count": count}
    if updated_at is not None:
        values["updated_at"] = updated_at
    await update_fields(conn, session_id, values)


async def delete_session(conn: AsyncConnection, session_id: str) -> bool:
    """Delete session ``session_id`` (its messages go by cascade); True if a row went."""
    result = await conn.execute(delete(tables.sessions).where(_s.id == session_id))
    return result.rowcount > 0


async def delete_sessions(conn: AsyncConnection, session_ids: Sequence[str]) -> None:
    """Delete every session in ``session_ids``."""
    for chunk in in_chunks(session_ids):
        await conn.execute(delete(tables.sessions).where(_s.id.in_(chunk)))


async def find_task_session(conn: AsyncConnection, task_id: str) -> str | None:
    """The id of the stored session of scheduled task ``task_id``, or None."""
    query = select(_s.id).where(_s.kind == "task", _s.task_id == task_id)
    session_id: str | None = (await conn.execute(query)).scalar()
    return session_id


async def empty_chats_created_before(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    """Ids of the desktop user's chat sessions without a stored message, made before ``cutoff``.

    Sessions of other owners (made through the local API) are their clients' to delete.
    """
    m = tables.messages.c
    query = select(_s.id).where(
        _s.kind == "chat",
        _s.owner == "local",
        _s.created_at < cutoff,
        ~exists().where(m.session_id == _s.id),
    )
    return list((await conn.execute(query)).scalars())


async def stored_owner(conn: AsyncConnection, session_id: str) -> str | None:
    """The owner in the row of ``session_id``, or None when there is no row."""
    owner: str | None = (await conn.execute(select(_s.owner).where(_s.id == session_id))).scalar()
    return owner


async def stored_ids(conn: AsyncConnection, session_ids: Sequence[str]) -> set[str]:
    """Those of ``session_ids`` that have a row."""
    found: set[str] = set()
    for chunk in in_chunks(sorted(set(session_ids))):
        found.update((await conn.execute(select(_s.id).where(_s.id.in_(chunk)))).scalars())
    return found
