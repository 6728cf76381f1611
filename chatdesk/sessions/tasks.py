"""Task sessions: each scheduled task writes into one session of its own.

The scheduler asks for "the session of task X" on every run; this part finds it (in
memory, else in the database) or creates it, never two for one task even when runs
overlap, and turns it into a normal chat when its task is deleted, so nothing the task
wrote is lost.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chatdesk.domain import Session
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.events import SESSION_UPDATED
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import run_whole

if TYPE_CHECKING:
    from chatdesk.sessions.manager import SessionManager
    from chatdesk.storage import session_rows
else:
    session_rows = lazy_module("chatdesk.storage.session_rows")


class TaskSessions:
    """Finds, creates and releases the sessions of scheduled tasks."""

    def __init__(self, manager: SessionManager, state: ManagerState) -> None:
        """Work on the manager's shared ``state``; create sessions through ``manager``."""
        self._manager = manager
        self._state = state
        # Held while a task's session is looked up and maybe created: two overlapping
        # runs of one task must not create two sessions.
        self._lock = asyncio.Lock()

    async def ensure_task_session(self, task_id: str, *, title: str | None = None) -> Session:
        """The one session of scheduled task ``task_id``: cached, else stored, else created."""
        state = self._state
        async with self._lock:
            session_id = state.task_sessions.get(task_id)
            if session_id is None:
                async with state.db.read() as conn:
                    session_id = await session_rows.find_task_session(conn, task_id)
            if session_id is not None:
                session = await state.get(session_id)
                if session is not None:
                    state.task_sessions[task_id] = session.id
                    return session
            return await self._manager.create_session(
                title or f"Task {task_id}", kind="task", task_id=task_id
            )

    async def find_task_session(self, task_id: str) -> str | None:
        """The id of scheduled task ``task_id``'s session, or None if it has none yet."""
        session_id = self._state.task_sessions.get(task_id)
        if session_id is not None:
            return session_id
        async with self._state.db.read() as conn:
            return await session_rows.find_task_session(conn, task_id)

    async def release_task_session(self, task_id: str) -> str | None:
        """Make the session of task ``task_id`` a normal chat (its task is being deleted).

        Returns the session's id, or None when the task had no session.
        """
        state = self._state
        async with self._lock:
            session_id = await self.find_task_session(task_id)
            if session_id is None:
                return None

            async def unit() -> None:
                async with state.db.transaction() as conn:
                    await session_rows.update_fields(
                        conn, session_id, {"kind": "chat", "task_id": None}
                    )
                state.task_sessions.pop(task_id, None)
                cached = state.sessions.get(session_id)
                if cached is not None:
                    cached.kind, cached.task_id = "chat", None
                state.events.emit(SESSION_UPDATED, session_id)

            async with state.lock:
                await run_whole(unit())
            return session_id
