"""Owners: which sessions an API caller may see (the HTTP API's access rules).

Every session has an owner: ``local`` for the desktop user, a token's name for sessions
made through the API. A caller sees only its own sessions; any other is treated exactly
like one that does not exist. The database row is authoritative where it exists; the
in-memory copy decides only for a session whose row is gone (removed behind the
manager's back while still held in memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatdesk.domain import Session, SessionSummary
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.state import ManagerState

if TYPE_CHECKING:
    from chatdesk.sessions.manager import SessionManager
    from chatdesk.storage import session_rows
else:
    session_rows = lazy_module("chatdesk.storage.session_rows")


class OwnedSessions:
    """Lists and finds sessions on behalf of one owner."""

    def __init__(self, manager: SessionManager, state: ManagerState) -> None:
        """Work on the manager's shared ``state``; list sessions through ``manager``."""
        self._manager = manager
        self._state = state

    async def list_owned_sessions(self, owner: str) -> list[SessionSummary]:
        """The sessions of ``owner``, most recent first, including memory-only ones.

        A memory-only session is one whose row was removed behind the manager's back
        while it is still held in memory: it is listed (and can be deleted) until it
        leaves memory. Where a row exists, its owner decides, not the in-memory copy.
        """
        listed = await self._manager.list_sessions(owner=owner)
        candidates = [s for s in self._state.sessions.values() if s.owner == owner]
        if not candidates:
            return listed
        async with self._state.db.read() as conn:
            stored = await session_rows.stored_ids(conn, [s.id for s in candidates])
        memory_only = [
            SessionSummary(
                s.id,
                s.title,
                s.kind,
                s.owner,
                s.message_count,
                s.created_at,
                s.updated_at,
                s.task_id,
            )
            for s in candidates
            if s.id not in stored
        ]
        if not memory_only:
            return listed
        merged = listed + memory_only
        merged.sort(key=lambda s: (-s.updated_at.timestamp(), s.id))
        return merged

    async def get_owned_session(self, session_id: str, owner: str) -> Session | None:
        """The session ``session_id`` if ``owner`` owns it, else None (as for no session).

        The stored row's owner decides where a row exists; the in-memory copy decides
        only for a session whose row is gone.
        """
        async with self._state.db.read() as conn:
            stored = await session_rows.stored_owner(conn, session_id)
        if stored is not None:
            if stored != owner:
                return None
            return await self._state.get(session_id)
        session = self._state.sessions.get(session_id)
        if session is not None and session.owner == owner:
            return session
        return None
