"""Keeping chats: the Trash, pins, the Archive, and branches.

Nothing the user made is destroyed by accident: a deleted chat goes to the Trash first
and is purged only after ``TRASH_RETENTION``; a branch copies the history up to one
message into a new chat, leaving the parent untouched. The SQL is in
``storage/keeping``; this part decides what changes, in memory and on disk together.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chatdesk.domain import Message, Session, SessionSummary, utcnow
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.events import SESSION_CREATED, SESSION_UPDATED
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import OFFLOAD_CHARS, inline_image_chars, off_loop_if, run_whole
from chatdesk.storage.content_codec import encode_content

if TYPE_CHECKING:
    from chatdesk.sessions.manager import SessionManager
    from chatdesk.storage import keeping, session_rows
else:
    keeping = lazy_module("chatdesk.storage.keeping")
    session_rows = lazy_module("chatdesk.storage.session_rows")

# How long a chat stays in the Trash before it is deleted for good.
TRASH_RETENTION = timedelta(days=30)


class ChatKeeping:
    """Trashes, restores, pins, archives and branches chats; purges the old Trash."""

    def __init__(self, manager: SessionManager, state: ManagerState) -> None:
        """Work on the manager's shared ``state``; delete for good through ``manager``."""
        self._manager = manager
        self._state = state

    async def trash_session(self, session_id: str) -> Session:
        """Move a chat to the Trash: out of the list and of search, purged after 30 days."""
        return await self._set_columns(session_id, trashed_at=utcnow())

    async def restore_session(self, session_id: str) -> Session:
        """Take a chat out of the Trash, back where it was."""
        return await self._set_columns(session_id, trashed_at=None)

    async def set_pinned(self, session_id: str, pinned: bool) -> Session:
        """Pin a chat to the top of the list, or unpin it."""
        return await self._set_columns(session_id, pinned=bool(pinned))

    async def set_archived(self, session_id: str, archived: bool) -> Session:
        """Move a chat to the Archive (out of the main list), or back."""
        return await self._set_columns(session_id, archived_at=utcnow() if archived else None)

    async def purge_trash(self, older_than: timedelta = TRASH_RETENTION) -> int:
        """Delete for good the chats that have been in the Trash longer than ``older_than``."""
        cutoff = utcnow() - older_than
        async with self._state.db.read() as conn:
            doomed = await keeping.trashed_before(conn, cutoff)
        purged = 0
        for session_id in doomed:
            purged += await self._manager.delete_session(session_id)
        return purged

    async def branch_session(
        self, session_id: str, message_id: str, *, title: str | None = None
    ) -> Session:
        """A new chat holding the history of ``session_id`` up to and including ``message_id``.

        The messages are copies with new ids; their images are stored once, by hash, and
        shared with the parent. The branch remembers the chat and message it came from.
        """
        state = self._state
        parent = await state.require(session_id)
        async with state.lock:
            state.check_live(parent)
            cut = next((i for i, m in enumerate(parent.history) if m.id == message_id), None)
            if cut is None:
                raise LookupError(f"session {session_id!r} has no message {message_id!r}")
            copies = [
                # A compaction's summary stays as text: the originals it stands for are
                # archived with the parent, and undoing it belongs to the parent.
                Message(
                    role=m.role,
                    content=copy.deepcopy(m.content),
                    created_at=m.created_at,
                    status=m.status,
                    error=m.error,
                    tool_calls=copy.deepcopy(m.tool_calls),
                    tool_call_id=m.tool_call_id,
                )
                for m in parent.history[: cut + 1]
            ]
            branch = Session(
                owner=parent.owner,
                title=title or parent.title,
                system_prompt=parent.system_prompt,
                provider=parent.provider,
                model=parent.model,
                history=copies,
                parent_session_id=parent.id,
                parent_message_id=message_id,
            )
            branch.updated_at = branch.created_at
            encoded = await off_loop_if(
                sum(inline_image_chars(m.content) for m in copies) > OFFLOAD_CHARS,
                lambda: [encode_content(m.content) for m in copies],
            )

            async def unit() -> None:
                async with state.db.transaction() as conn:
                    await keeping.insert_whole_session(conn, branch, encoded, import_key=None)
                state.sessions[branch.id] = branch
                state.events.emit(SESSION_CREATED, branch.id)

            await run_whole(unit())
        return branch

    async def branches_of(self, session_id: str) -> list[SessionSummary]:
        """The chats branched from ``session_id`` (not those in the Trash)."""
        async with self._state.db.read() as conn:
            return await session_rows.list_summaries(conn, None, parent_session_id=session_id)

    async def _set_columns(self, session_id: str, **values: Any) -> Session:
        state = self._state
        session = await state.require(session_id)

        async def unit() -> None:
            async with state.db.transaction() as conn:
                await keeping.set_session_columns(conn, session_id, **values)
            for name, value in values.items():
                setattr(session, name, value)
            state.events.emit(SESSION_UPDATED, session_id)

        async with state.lock:
            state.check_live(session)
            await run_whole(unit())
        return session
