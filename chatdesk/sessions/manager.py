"""The SessionManager: the single owner of sessions, their histories and their persistence.

One instance per process (created by the app's composition root and handed to the chat
engine, the window, the scheduler and the HTTP API); every writer goes through it. In
memory, each session's ``history`` is the authoritative list of messages; every change
is written to SQLite before the call returns, and only then applied in memory, so a
failed write changes nothing anywhere (see ``writes`` for why cancelling a caller cannot
split the two).

This module is the core: opening, creating, listing, loading and deleting sessions,
and the one flat API every caller uses. Each other idea is a part of its own, a small
class over the one shared ``ManagerState`` (database, sessions in memory, writer lock,
listeners) to which the manager delegates: ``messages`` (add, stream, replace),
``versions`` (turn versions), ``compaction``, ``keeping`` (trash, pin, archive,
branches), ``importing``, ``tasks`` (task sessions) and ``owners`` (the API's access
rules). Composition rather than mixins: each part shows which shared state it uses, and
a part needing a core operation (create or delete a session) calls the manager's public
method, so no part reaches into another; nothing outside this package knows the parts.

The SQL lives in ``chatdesk.storage``; this package holds only what the manager alone
decides: one writer at a time, memory in step with disk, events, and what work leaves
the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdesk.domain import (
    DEFAULT_TITLE,
    CompactedMessage,
    Content,
    ImportedChat,
    Message,
    Session,
    SessionSummary,
    VersionRef,
    utcnow,
)
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.compaction import Compactions
from chatdesk.sessions.events import (
    SESSION_CREATED,
    SESSION_DELETED,
    SESSION_UPDATED,
    SessionListener,
)
from chatdesk.sessions.importing import ChatImport
from chatdesk.sessions.keeping import TRASH_RETENTION, ChatKeeping
from chatdesk.sessions.messages import SessionMessages
from chatdesk.sessions.opening import SessionDatabase
from chatdesk.sessions.owners import OwnedSessions
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.tasks import TaskSessions
from chatdesk.sessions.versions import TurnVersions
from chatdesk.sessions.writes import run_whole

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from chatdesk.storage import image_rows, session_rows
    from chatdesk.storage import search as search_storage
    from chatdesk.storage.search import SearchHit
else:
    # SQLAlchemy (which these import) loads when the database is first opened, not when
    # this module is imported: the window paints before it (bench/bench_startup.py).
    image_rows = lazy_module("chatdesk.storage.image_rows")
    session_rows = lazy_module("chatdesk.storage.session_rows")
    search_storage = lazy_module("chatdesk.storage.search")


class SessionManager:
    """Owns every session and its history, over one SQLite database."""

    def __init__(self, database: SessionDatabase) -> None:
        """Use :meth:`open` (or :meth:`deferred`); this only wires the parts together."""
        self._db = database
        self._state = ManagerState(database)
        self._messages = SessionMessages(self._state)
        self._versions = TurnVersions(self._state)
        self._compactions = Compactions(self._state)
        self._keeping = ChatKeeping(self, self._state)
        self._imports = ChatImport(self._state)
        self._tasks = TaskSessions(self, self._state)
        self._owners = OwnedSessions(self, self._state)

    # -- life cycle ---------------------------------------------------------------------

    @classmethod
    async def open(cls, database_url: str, *, busy_timeout_ms: int | None = None) -> SessionManager:
        """Open the database at ``database_url``, creating or migrating it as needed.

        Replies that were still streaming when the app last stopped are marked
        ``interrupted``: their text up to the last flush is kept. A write waits up to
        ``busy_timeout_ms`` (default: database.DEFAULT_BUSY_TIMEOUT_MS) for another
        program's lock before failing with StorageError.
        """
        manager = cls.deferred(database_url, busy_timeout_ms=busy_timeout_ms)
        await manager.finish_opening()
        return manager

    @classmethod
    def deferred(cls, database_url: str, *, busy_timeout_ms: int | None = None) -> SessionManager:
        """A manager whose database opens on :meth:`finish_opening` or its first use.

        Start-up builds and paints the window over it before SQLAlchemy is even imported.
        """
        return cls(SessionDatabase.deferred(database_url, busy_timeout_ms=busy_timeout_ms))

    async def finish_opening(self) -> None:
        """Open (create, migrate) a deferred manager's database; StorageError if it cannot."""
        await self._db.ready()

    async def close(self) -> None:
        """Release the database; the manager cannot be used afterwards."""
        async with self._state.lock:
            self._state.sessions.clear()
            self._state.task_sessions.clear()
            await self._db.close()

    @property
    def database_path(self) -> Path | None:
        """The database file, or None for an in-memory database."""
        return self._db.path

    @property
    def engine(self) -> AsyncEngine:
        """The database engine, for stores of other tables (API tokens, scheduled tasks),
        once open."""
        return self._db.engine

    def add_listener(self, listener: SessionListener) -> None:
        """Call ``listener`` after every change (the window uses this to stay current)."""
        self._state.events.add(listener)

    def remove_listener(self, listener: SessionListener) -> None:
        """Stop calling ``listener``."""
        self._state.events.remove(listener)

    # -- sessions -----------------------------------------------------------------------

    async def create_session(
        self,
        title: str | None = None,
        *,
        owner: str = "local",
        kind: str = "chat",
        system_prompt: str | None = None,
        task_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> Session:
        """Create a session and persist it before returning it."""
        state = self._state
        session = Session(
            owner=owner,
            title=title or DEFAULT_TITLE,
            kind=kind,
            task_id=task_id,
            system_prompt=system_prompt,
            provider=provider,
            model=model,
        )
        session.updated_at = session.created_at

        async def unit() -> None:
            async with state.db.transaction() as conn:
                await session_rows.insert_session(conn, session)
            state.sessions[session.id] = session
            if kind == "task" and task_id is not None:
                state.task_sessions[task_id] = session.id
            state.events.emit(SESSION_CREATED, session.id)

        async with state.lock:
            await run_whole(unit())
        return session

    @property
    def sessions_in_memory(self) -> int:
        """How many sessions are held in memory now (for figures and tests)."""
        return len(self._state.sessions)

    async def get_session(self, session_id: str) -> Session | None:
        """The session with ``session_id``: from memory, else loaded from the database once."""
        return await self._state.get(session_id)

    async def require_session(self, session_id: str) -> Session:
        """Like :meth:`get_session`, but raise SessionNotFoundError when there is none."""
        return await self._state.require(session_id)

    async def read_session(self, session_id: str) -> Session | None:
        """The session as stored, without keeping it in memory (for exports of many chats).

        A session already in memory is returned from there (it is the newest state).
        """
        state = self._state
        session = state.sessions.get(session_id)
        if session is not None:
            return session
        async with state.lock:
            return state.sessions.get(session_id) or await state.load(session_id)

    async def list_sessions(
        self,
        *,
        owner: str | None = None,
        include_trashed: bool = False,
        archived: bool | None = None,
        trashed_only: bool = False,
    ) -> list[SessionSummary]:
        """Sessions (of ``owner`` if given), pinned first, then most recent activity; no messages.

        Chats in the Trash are left out unless ``include_trashed`` (or ``trashed_only``);
        ``archived`` True/False lists only archived/unarchived chats, None both.
        """
        async with self._db.read() as conn:
            return await session_rows.list_summaries(
                conn,
                owner,
                include_trashed=include_trashed,
                archived=archived,
                trashed_only=trashed_only,
            )

    async def update_session(self, session_id: str, **changes: Any) -> Session:
        """Change a session's title, system_prompt, provider, model, temperature, max_tokens
        or draft, and persist it."""
        allowed = {
            "title",
            "system_prompt",
            "provider",
            "model",
            "temperature",
            "max_tokens",
            "draft",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a session")
        _check_generation_settings(changes)
        if "title" in changes and not (changes["title"] or "").strip():
            raise ValueError("a session title cannot be empty")
        state = self._state
        session = await state.require(session_id)

        async def unit() -> None:
            async with state.db.transaction() as conn:
                await session_rows.update_fields(conn, session_id, changes)
            for name, value in changes.items():
                setattr(session, name, value)
            state.events.emit(SESSION_UPDATED, session_id)

        async with state.lock:
            state.check_live(session)
            await run_whole(unit())
        return session

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session, its messages and images no other message uses.

        True when it existed in the database or in memory (a session whose row was
        removed behind our back is still dropped from memory). When the delete fails
        (StorageError), the session stays, on disk and in memory.
        """
        state = self._state

        async def unit() -> bool:
            async with state.db.transaction() as conn:
                deleted = await session_rows.delete_session(conn, session_id)
                await image_rows.delete_orphan_images(conn)
            # Only now that the delete is committed does the session leave memory.
            cached = state.sessions.pop(session_id)
            if cached is not None and cached.task_id is not None:
                state.task_sessions.pop(cached.task_id, None)
            existed = cached is not None or deleted
            if existed:
                state.events.emit(SESSION_DELETED, session_id)
            return existed

        async with state.lock:
            return await run_whole(unit())

    async def cleanup_empty_sessions(
        self, min_age: timedelta = timedelta(hours=1), *, keep: Collection[str] = ()
    ) -> int:
        """Delete chat sessions with no messages created more than ``min_age`` ago.

        Task sessions are kept: an empty one is waiting for its task's first run. So are
        the sessions in ``keep`` (the chat open in the window). Returns how many sessions
        were deleted.
        """
        state = self._state
        cutoff = utcnow() - min_age

        async def unit() -> int:
            async with state.db.transaction() as conn:
                ids = await session_rows.empty_chats_created_before(conn, cutoff)
                doomed = [i for i in ids if i not in keep and not state.has_messages_in_memory(i)]
                await session_rows.delete_sessions(conn, doomed)
            for session_id in doomed:
                state.sessions.pop(session_id)
            for session_id in doomed:
                state.events.emit(SESSION_DELETED, session_id)
            return len(doomed)

        async with state.lock:
            return await run_whole(unit())

    # -- messages (SessionMessages) ----------------------------------------------------

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: Content,
        *,
        status: str = "complete",
        error: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
    ) -> Message:
        """Validate, persist, then append a message to the session's history exactly once.

        ``tool_calls`` (an assistant asking for tools) and ``tool_call_id`` (a role "tool"
        result) carry the OpenAI tool-calling fields.
        """
        return await self._messages.add_message(
            session_id,
            role,
            content,
            status=status,
            error=error,
            tool_calls=tool_calls,
            tool_call_id=tool_call_id,
        )

    async def update_message(
        self,
        session_id: str,
        message_id: str,
        *,
        content: Content | None = None,
        status: str | None = None,
        error: str | None = None,
        persist: bool = True,
        tool_calls: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        """Change a message's content, status or error (a streaming reply grows this way).

        With ``persist=False`` only the in-memory copy changes; the chat engine uses that
        for every token and persists at most every half second.
        """
        return await self._messages.update_message(
            session_id,
            message_id,
            content=content,
            status=status,
            error=error,
            persist=persist,
            tool_calls=tool_calls,
            meta=meta,
        )

    async def replace_messages(
        self, session_id: str, messages: Iterable[Message | dict[str, Any]]
    ) -> list[Message]:
        """Replace the whole history in one transaction, in memory and on disk.

        Accepts Message objects (kept as they are) or ``{"role", "content"}`` dicts.
        Everything is validated first; on any error nothing changes.
        """
        return await self._messages.replace_messages(session_id, messages)

    async def truncate_messages(self, session_id: str, keep_count: int) -> int:
        """Keep the first ``keep_count`` messages, delete the rest; return the count kept.

        The stored message_count never exceeds the rows that really exist.
        """
        return await self._messages.truncate_messages(session_id, keep_count)

    async def get_context_messages(self, session_id: str) -> list[dict[str, Any]]:
        """What a model is sent: ``{"role", "content"}`` dicts, the system prompt first."""
        session = await self.require_session(session_id)
        return session.context_messages()

    # -- search -------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        owner: str | None = None,
        limit: int = 50,
        session_id: str | None = None,
        titles_only: bool = False,
    ) -> list[SearchHit]:
        """The messages and titles best matching ``query`` (bm25), chats in the Trash left out.

        Any text a person types is safe: every word is matched literally (the last one
        also as a prefix); FTS syntax in it has no effect.
        """
        async with self._db.read() as conn:
            return await search_storage.search(
                conn,
                query,
                owner=owner,
                limit=limit,
                session_id=session_id,
                titles_only=titles_only,
            )

    async def matching_message_ids(self, session_id: str, query: str) -> set[str]:
        """The ids of the messages of ``session_id`` whose text matches ``query``."""
        async with self._db.read() as conn:
            return await search_storage.matching_message_ids(conn, session_id, query)

    # -- the parts: each call is the part's own method of the same name -----------------

    async def keep_as_version(self, session_id: str, position: int) -> VersionRef | None:
        """Move the turn at ``position`` into a stored version (:class:`TurnVersions`)."""
        return await self._versions.keep_as_version(session_id, position)

    async def select_version(self, session_id: str, position: int, number: int) -> None:
        """Show version ``number`` (1-based) of the turn at ``position``."""
        await self._versions.select_version(session_id, position, number)

    async def restore_version(self, session_id: str, position: int, version_id: str) -> None:
        """Show stored version ``version_id`` of the turn at ``position``."""
        await self._versions.restore_version(session_id, position, version_id)

    async def compact_messages(
        self, session_id: str, message_ids: Sequence[str], summary: Content
    ) -> Message:
        """Replace consecutive messages by a summary, archiving them (:class:`Compactions`)."""
        return await self._compactions.compact_messages(session_id, message_ids, summary)

    async def compacted_messages(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """The original messages compaction replaced, oldest first."""
        return await self._compactions.compacted_messages(session_id, compaction_id)

    async def compaction_archive(self, session_id: str) -> list[CompactedMessage]:
        """Every archived message behind the history's summaries, with its compaction."""
        return await self._compactions.compaction_archive(session_id)

    async def undo_compaction(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """Put back the messages a compaction replaced (the newest one by default)."""
        return await self._compactions.undo_compaction(session_id, compaction_id)

    async def trash_session(self, session_id: str) -> Session:
        """Move a chat to the Trash (:class:`ChatKeeping`)."""
        return await self._keeping.trash_session(session_id)

    async def restore_session(self, session_id: str) -> Session:
        """Take a chat out of the Trash."""
        return await self._keeping.restore_session(session_id)

    async def set_pinned(self, session_id: str, pinned: bool) -> Session:
        """Pin a chat to the top of the list, or unpin it."""
        return await self._keeping.set_pinned(session_id, pinned)

    async def set_archived(self, session_id: str, archived: bool) -> Session:
        """Move a chat to the Archive, or back."""
        return await self._keeping.set_archived(session_id, archived)

    async def purge_trash(self, older_than: timedelta = TRASH_RETENTION) -> int:
        """Delete for good the chats in the Trash longer than ``older_than``."""
        return await self._keeping.purge_trash(older_than)

    async def branch_session(
        self, session_id: str, message_id: str, *, title: str | None = None
    ) -> Session:
        """A new chat holding the history of ``session_id`` up to ``message_id``."""
        return await self._keeping.branch_session(session_id, message_id, title=title)

    async def branches_of(self, session_id: str) -> list[SessionSummary]:
        """The chats branched from ``session_id`` (not those in the Trash)."""
        return await self._keeping.branches_of(session_id)

    async def import_chats(
        self,
        chats: Sequence[ImportedChat],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Store imported chats as new sessions, never over old ones (:class:`ChatImport`)."""
        return await self._imports.import_chats(chats, progress=progress)

    async def ensure_task_session(self, task_id: str, *, title: str | None = None) -> Session:
        """The one session of scheduled task ``task_id`` (:class:`TaskSessions`)."""
        return await self._tasks.ensure_task_session(task_id, title=title)

    async def find_task_session(self, task_id: str) -> str | None:
        """The id of task ``task_id``'s session, or None if it has none yet."""
        return await self._tasks.find_task_session(task_id)

    async def release_task_session(self, task_id: str) -> str | None:
        """Make the session of task ``task_id`` a normal chat; its id, or None."""
        return await self._tasks.release_task_session(task_id)

    async def list_owned_sessions(self, owner: str) -> list[SessionSummary]:
        """The sessions of ``owner``, memory-only ones included (:class:`OwnedSessions`)."""
        return await self._owners.list_owned_sessions(owner)

    async def get_owned_session(self, session_id: str, owner: str) -> Session | None:
        """The session ``session_id`` if ``owner`` owns it, else None."""
        return await self._owners.get_owned_session(session_id, owner)


def _check_generation_settings(changes: dict[str, Any]) -> None:
    """Refuse a temperature or reply length no model accepts (None means the default)."""
    temperature = changes.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise ValueError("the temperature must be between 0 and 2")
    max_tokens = changes.get("max_tokens")
    if max_tokens is not None and not (
        isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1
    ):
        raise ValueError("the longest reply must be at least 1 token")
