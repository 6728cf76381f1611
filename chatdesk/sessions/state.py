"""What the SessionManager and its parts share: the sessions in memory over one database.

The manager is the single owner of sessions; its parts (turn versions, compaction,
keeping, task sessions, owners, imports) are small classes that each hold this one
state rather than copies of it. In memory, each session's ``history`` is the
authoritative list of messages; a session is loaded from the database once, on first
use, and kept.

One writer path: SQLite has a single writer anyway, and holding ``lock`` while both the
database and the in-memory copy change keeps the two in step. Every write checks, under
the lock, that its session is still the live one (it may have been deleted while the
call waited), and a write that removes rows first checks it knows them all.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chatdesk.domain import Session
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.errors import SessionChangedError, SessionNotFoundError
from chatdesk.sessions.events import SessionEvents
from chatdesk.sessions.opening import SessionDatabase
from chatdesk.sessions.writes import OFFLOAD_BYTES, off_loop_if
from chatdesk.storage.content_codec import image_refs

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from chatdesk.storage import image_rows, message_rows, session_rows, version_rows
else:
    # SQLAlchemy (which these import) loads when the database is first opened.
    image_rows = lazy_module("chatdesk.storage.image_rows")
    message_rows = lazy_module("chatdesk.storage.message_rows")
    session_rows = lazy_module("chatdesk.storage.session_rows")
    version_rows = lazy_module("chatdesk.storage.version_rows")


class ManagerState:
    """The database, the sessions held in memory, the writer lock and the listeners."""

    def __init__(self, db: SessionDatabase) -> None:
        """Hold nothing in memory yet; sessions load from ``db`` as they are asked for."""
        self.db = db
        self.events = SessionEvents()
        self.sessions: dict[str, Session] = {}
        # Task id -> its session's id, for the sessions in memory or looked up once.
        self.task_sessions: dict[str, str] = {}
        self.lock = asyncio.Lock()

    async def get(self, session_id: str) -> Session | None:
        """The session with ``session_id``: from memory, else loaded from the database once."""
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        async with self.lock:
            # Another caller may have loaded it while we waited.
            session = self.sessions.get(session_id)
            if session is None:
                session = await self.load(session_id)
                if session is not None:
                    self.sessions[session_id] = session
            return session

    async def require(self, session_id: str) -> Session:
        """Like :meth:`get`, but raise SessionNotFoundError when there is none."""
        session = await self.get(session_id)
        if session is None:
            raise SessionNotFoundError(session_id)
        return session

    async def load(self, session_id: str) -> Session | None:
        """The session as stored (None if there is no row), without keeping it in memory."""
        async with self.db.read() as conn:
            row = await session_rows.read_session(conn, session_id)
            if row is None:
                return None
            rows = await message_rows.read_messages(conn, session_id)
            wanted = {h for r in rows if r.content_type == "blocks" for h in image_refs(r.content)}
            image_bytes = await image_rows.load_images(conn, wanted)
            stored_versions = await version_rows.load_version_refs(conn, session_id)
        heavy = sum(len(data) for data in image_bytes.values()) > OFFLOAD_BYTES
        history = await off_loop_if(
            heavy, message_rows.build_history, session_id, rows, image_bytes
        )
        session = session_rows.session_from_row(row, history)
        session.versions = stored_versions
        if session.kind == "task" and session.task_id is not None:
            self.task_sessions[session.task_id] = session.id
        return session

    def check_live(self, session: Session) -> None:
        """SessionNotFoundError if ``session`` was deleted while the call waited for the lock."""
        if self.sessions.get(session.id) is not session:
            raise SessionNotFoundError(session.id)

    def has_messages_in_memory(self, session_id: str) -> bool:
        """Whether the in-memory copy of the session holds messages (maybe not stored yet)."""
        session = self.sessions.get(session_id)
        return session is not None and bool(session.history)

    async def check_known_rows(self, conn: AsyncConnection, session: Session) -> None:
        """SessionChangedError if a stored message of the session is not in memory.

        Runs in the transaction that then deletes: a process never removes rows it has
        not seen (another process's, or a write it missed). Rows missing from the disk
        (removed by another tool) are no reason to refuse.
        """
        stored = await message_rows.message_ids(conn, session.id)
        known = {m.id for m in session.history}
        if any(message_id not in known for message_id in stored):
            raise SessionChangedError(
                f"The chat “{session.title}” was changed outside this window (by another "
                "ChatDesk process?), so nothing was removed. Restart ChatDesk to see its "
                "current messages."
            )
