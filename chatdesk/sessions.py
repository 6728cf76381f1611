"""The SessionManager: the single owner of sessions, their histories and their persistence.

One instance per process (created by the app's composition root and handed to the chat
engine, the window, and later the scheduler and HTTP API). In memory, each session's
``history`` is the authoritative list of messages; every change is written to SQLite
before the call returns, and only then applied in memory, so a failed write changes
nothing anywhere.

A write and its in-memory counterpart run as one unit that cancelling the caller cannot
split: once the write has started, it runs to its end (committed and applied, or rolled
back and not applied) and only then does the caller see its CancelledError. Content
with large inline images is validated and encoded on a worker thread, so it does not
stall the event loop.

The SQL lives in ``chatdesk.storage`` (``session_rows``, ``message_rows``, ``image_rows``:
plain functions over a connection); this module holds only what the manager alone
decides: one writer at a time, memory in step with disk, events, and what work leaves
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chatdesk.domain import (
    DEFAULT_TITLE,
    MESSAGE_STATUSES,
    Content,
    ImportedChat,
    Message,
    Session,
    SessionSummary,
    VersionRef,
    new_id,
    utcnow,
    validate_content,
    validate_role,
    validate_tool_calls,
)
from chatdesk.instance import refuse_if_in_use
from chatdesk.lazy_import import lazy_module
from chatdesk.storage.content_codec import EncodedContent, encode_content, image_refs
from chatdesk.storage.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from chatdesk.storage import compaction as compaction_store
    from chatdesk.storage import (
        database,
        image_rows,
        keeping,
        message_rows,
        session_rows,
        version_rows,
    )
    from chatdesk.storage import search as search_storage
    from chatdesk.storage.search import SearchHit
else:
    # SQLAlchemy (which these import) loads when the database is first opened, not when
    # this module is imported: the window paints before it (bench/bench_startup.py).
    database = lazy_module("chatdesk.storage.database")
    image_rows = lazy_module("chatdesk.storage.image_rows")
    message_rows = lazy_module("chatdesk.storage.message_rows")
    session_rows = lazy_module("chatdesk.storage.session_rows")
    version_rows = lazy_module("chatdesk.storage.version_rows")
    compaction_store = lazy_module("chatdesk.storage.compaction")
    keeping = lazy_module("chatdesk.storage.keeping")
    search_storage = lazy_module("chatdesk.storage.search")

log = logging.getLogger(__name__)

# Content whose inline images add up to more than this many characters of data URL (or,
# when a session is opened, this many bytes of stored image) is validated and encoded on
# a worker thread; below it the work takes about a millisecond and stays on the loop.
_OFFLOAD_CHARS = 256 * 1024
_OFFLOAD_BYTES = _OFFLOAD_CHARS * 3 // 4

_T = TypeVar("_T")

# How long a chat stays in the Trash before it is deleted for good.
TRASH_RETENTION = timedelta(days=30)
# Imported chats written per transaction: large imports commit in steps, not all at once.
_IMPORT_BATCH = 100


class SessionBusyError(RuntimeError):
    """A reply is still streaming in that session, so its messages cannot be removed yet."""


class SessionChangedError(StorageError):
    """The stored messages are not the ones this process knows: another process changed
    them. Nothing was removed; the message says what to do."""


class SessionNotFoundError(LookupError):
    """No session has the id that was asked for."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session with id {session_id!r}")
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something changed: ``kind`` is one of the ``*_EVENT`` names below."""

    kind: str
    session_id: str
    message_id: str | None = None


SESSION_CREATED = "session_created"
SESSION_UPDATED = "session_updated"
SESSION_DELETED = "session_deleted"
MESSAGE_ADDED = "message_added"
MESSAGE_UPDATED = "message_updated"
HISTORY_REPLACED = "history_replaced"

SessionListener = Callable[[SessionEvent], None]


class SessionManager:
    """Owns every session and its history, over one SQLite database."""

    def __init__(self, engine: AsyncEngine | None, path: Path | None) -> None:
        """Use :meth:`open` (or :meth:`deferred`); this only wires a migrated engine."""
        self._engine = engine
        self._path = path
        # For a deferred manager: how to open the database, and the opening under way.
        self._open_options: tuple[str, int | None] | None = None
        self._opening: asyncio.Future[AsyncEngine] | None = None
        self._sessions: dict[str, Session] = {}
        self._task_sessions: dict[str, str] = {}
        # One writer path: SQLite has a single writer anyway, and holding this while both
        # the database and the in-memory copy change keeps the two in step.
        self._lock = asyncio.Lock()
        self._task_lock = asyncio.Lock()
        self._listeners: list[SessionListener] = []

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
        manager = cls(None, None)
        manager._open_options = (database_url, busy_timeout_ms)
        return manager

    async def finish_opening(self) -> None:
        """Open (create, migrate) a deferred manager's database; StorageError if it cannot."""
        await self._ready()

    async def _ready(self) -> AsyncEngine:
        if self._engine is not None:
            return self._engine
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_now())
        return await asyncio.shield(self._opening)

    async def _open_now(self) -> AsyncEngine:
        assert self._open_options is not None, "a manager without a database to open"
        url, timeout = self._open_options
        if timeout is None:
            timeout = database.DEFAULT_BUSY_TIMEOUT_MS
        path = database.database_path(url)
        if path is not None:
            # Another process holding the folder keeps its own copy of every chat in
            # memory; writing beside it would mix the two (and flip its replies to
            # interrupted just below).
            await asyncio.to_thread(refuse_if_in_use, path.parent)
        try:
            engine = await database.open_database(url, busy_timeout_ms=timeout)
        except BaseException:
            self._opening = None  # a later use tries again and reports its own error
            raise
        self._path = database.database_path(url)
        try:
            async with engine.begin() as conn:
                await message_rows.interrupt_streaming(conn)
        except _dbapi_error() as exc:
            await engine.dispose()
            self._opening = None
            raise database.storage_error(self._path, exc) from exc
        self._engine = engine
        return engine

    async def close(self) -> None:
        """Release the database; the manager cannot be used afterwards."""
        async with self._lock:
            self._sessions.clear()
            self._task_sessions.clear()
            if self._opening is not None and self._engine is None:
                with contextlib.suppress(Exception):
                    await self._opening
            if self._engine is not None:
                await self._engine.dispose()

    @property
    def database_path(self) -> Path | None:
        """The database file, or None for an in-memory database."""
        return self._path

    # -- events -------------------------------------------------------------------------

    def add_listener(self, listener: SessionListener) -> None:
        """Call ``listener`` after every change (the window uses this to stay current)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: SessionListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, kind: str, session_id: str, message_id: str | None = None) -> None:
        event = SessionEvent(kind, session_id, message_id)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not undo a committed change
                log.exception("session listener failed on %s", event)

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
            async with self._transaction() as conn:
                await session_rows.insert_session(conn, session)
            self._sessions[session.id] = session
            if kind == "task" and task_id is not None:
                self._task_sessions[task_id] = session.id
            self._emit(SESSION_CREATED, session.id)

        async with self._lock:
            await _run_whole(unit())
        return session

    async def get_session(self, session_id: str) -> Session | None:
        """The session with ``session_id``: from memory, else loaded from the database once."""
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        async with self._lock:
            # Another caller may have loaded it while we waited.
            session = self._sessions.get(session_id)
            if session is None:
                session = await self._load_session(session_id)
                if session is not None:
                    self._sessions[session_id] = session
            return session

    async def require_session(self, session_id: str) -> Session:
        """Like :meth:`get_session`, but raise SessionNotFoundError when there is none."""
        session = await self.get_session(session_id)
        if session is None:
            raise SessionNotFoundError(session_id)
        return session

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
        async with self._read() as conn:
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
        session = await self.require_session(session_id)

        async def unit() -> None:
            async with self._transaction() as conn:
                await session_rows.update_fields(conn, session_id, changes)
            for name, value in changes.items():
                setattr(session, name, value)
            self._emit(SESSION_UPDATED, session_id)

        async with self._lock:
            self._check_live(session)
            await _run_whole(unit())
        return session

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session, its messages and images no other message uses.

        True when it existed in the database or in memory (a session whose row was
        removed behind our back is still dropped from memory). When the delete fails
        (StorageError), the session stays, on disk and in memory.
        """

        async def unit() -> bool:
            async with self._transaction() as conn:
                deleted = await session_rows.delete_session(conn, session_id)
                await image_rows.delete_orphan_images(conn)
            # Only now that the delete is committed does the session leave memory.
            cached = self._sessions.pop(session_id, None)
            if cached is not None and cached.task_id is not None:
                self._task_sessions.pop(cached.task_id, None)
            existed = cached is not None or deleted
            if existed:
                self._emit(SESSION_DELETED, session_id)
            return existed

        async with self._lock:
            return await _run_whole(unit())

    async def ensure_task_session(self, task_id: str, *, title: str | None = None) -> Session:
        """The one session of scheduled task ``task_id``: cached, else stored, else created."""
        async with self._task_lock:
            session_id = self._task_sessions.get(task_id)
            if session_id is None:
                async with self._read() as conn:
                    session_id = await session_rows.find_task_session(conn, task_id)
            if session_id is not None:
                session = await self.get_session(session_id)
                if session is not None:
                    self._task_sessions[task_id] = session.id
                    return session
            return await self.create_session(
                title or f"Task {task_id}", kind="task", task_id=task_id
            )

    async def cleanup_empty_sessions(
        self, min_age: timedelta = timedelta(hours=1), *, keep: Collection[str] = ()
    ) -> int:
        """Delete chat sessions with no messages created more than ``min_age`` ago.

        Task sessions are kept: an empty one is waiting for its task's first run. So are
        the sessions in ``keep`` (the chat open in the window). Returns how many sessions
        were deleted.
        """
        cutoff = utcnow() - min_age

        async def unit() -> int:
            async with self._transaction() as conn:
                ids = await session_rows.empty_chats_created_before(conn, cutoff)
                doomed = [i for i in ids if i not in keep and not self._has_messages_in_memory(i)]
                await session_rows.delete_sessions(conn, doomed)
            for session_id in doomed:
                self._sessions.pop(session_id, None)
            for session_id in doomed:
                self._emit(SESSION_DELETED, session_id)
            return len(doomed)

        async with self._lock:
            return await _run_whole(unit())

    # -- messages -----------------------------------------------------------------------

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
        _checked_status(status)
        validate_tool_calls(tool_calls)
        prepare = functools.partial(
            _prepare_message, tool_calls=copy.deepcopy(tool_calls), tool_call_id=tool_call_id
        )
        heavy = _inline_image_chars(content) > _OFFLOAD_CHARS
        if heavy:
            # The worker thread reads a private copy (cheap: the strings are shared).
            content = copy.deepcopy(content)
        prepared = None if heavy else prepare(role, content, status, error)
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            if prepared is None:
                # Under the lock, so adds to a session keep the order they were made in.
                prepared = await asyncio.to_thread(prepare, role, content, status, error)
            message, encoded = prepared

            async def unit() -> None:
                updated_at = max(session.updated_at, message.created_at)
                async with self._transaction() as conn:
                    await message_rows.append_message(conn, session_id, message, encoded)
                    await image_rows.store_images(conn, message.id, encoded.images)
                    await session_rows.set_message_count(
                        conn, session_id, len(session.history) + 1, updated_at
                    )
                session.add_message(message)
                self._emit(MESSAGE_ADDED, session_id, message.id)

            await _run_whole(unit())
        return message

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
        if status is not None:
            _checked_status(status)
        validate_tool_calls(tool_calls)
        light = content is None or _inline_image_chars(content) <= _OFFLOAD_CHARS
        encoded: EncodedContent | None = None
        if content is not None and light:
            if persist:
                encoded = encode_content(content)  # validates it too
            else:
                validate_content(content)
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            message = _find_message(session, message_id)
            changed = replace(
                message,
                content=message.content if content is None else content,
                status=status or message.status,
                error=error if error is not None else message.error,
                tool_calls=(
                    message.tool_calls if tool_calls is None else copy.deepcopy(tool_calls)
                ),
                meta=meta if meta is not None else message.meta,
            )
            # Large images are validated (and encoded) on a thread, under the lock so that
            # changes to a message keep the order they were made in.
            if persist and encoded is None:
                # New content with large images, or none given: then what memory holds is
                # stored, as earlier changes may not have been persisted.
                encoded = await _off_loop_if(
                    _inline_image_chars(changed.content) > _OFFLOAD_CHARS,
                    encode_content,
                    changed.content,
                )
            elif not light:
                await asyncio.to_thread(validate_content, changed.content)

            def apply() -> None:
                message.content, message.status, message.error, message.meta = (
                    changed.content,
                    changed.status,
                    changed.error,
                    changed.meta,
                )
                message.tool_calls = changed.tool_calls
                self._emit(MESSAGE_UPDATED, session_id, message_id)

            if not persist:
                apply()
                return message

            stored = encoded
            assert stored is not None

            async def unit() -> None:
                async with self._transaction() as conn:
                    await image_rows.unlink_images(conn, message_id)
                    await image_rows.store_images(conn, message_id, stored.images)
                    await message_rows.update_message(
                        conn,
                        message_id,
                        stored,
                        changed.status,
                        changed.error,
                        tool_calls=changed.tool_calls,
                        meta=changed.meta,
                    )
                apply()

            await _run_whole(unit())
        return message

    async def get_context_messages(self, session_id: str) -> list[dict[str, Any]]:
        """What a model is sent: ``{"role", "content"}`` dicts, the system prompt first."""
        session = await self.require_session(session_id)
        return session.context_messages()

    async def replace_messages(
        self, session_id: str, messages: Iterable[Message | dict[str, Any]]
    ) -> list[Message]:
        """Replace the whole history in one transaction, in memory and on disk.

        Accepts Message objects (kept as they are) or ``{"role", "content"}`` dicts.
        Everything is validated first; on any error nothing changes.
        """
        items = [_snapshot(m) for m in messages]
        heavy = sum(_inline_image_chars(_content_of(m)) for m in items) > _OFFLOAD_CHARS
        prepared = None if heavy else _prepare_history(items)
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            kept_ids = {m.id for m in items if isinstance(m, Message)}
            _refuse_if_streaming(session, [m for m in session.history if m.id not in kept_ids])
            if prepared is None:
                prepared = await asyncio.to_thread(_prepare_history, items)
            new_history, encoded = prepared

            async def unit() -> None:
                updated_at = utcnow()
                async with self._transaction() as conn:
                    await self._check_known_rows(conn, session)
                    await message_rows.replace_messages(conn, session_id, new_history, encoded)
                    for m, e in zip(new_history, encoded, strict=True):
                        await image_rows.store_images(conn, m.id, e.images)
                    await image_rows.delete_orphan_images(conn)
                    await session_rows.set_message_count(
                        conn, session_id, len(new_history), updated_at
                    )
                # Same list object: anyone holding a reference to .history sees the change.
                session.history[:] = new_history
                session.updated_at = updated_at
                self._emit(HISTORY_REPLACED, session_id)

            await _run_whole(unit())
        return new_history

    async def truncate_messages(self, session_id: str, keep_count: int) -> int:
        """Keep the first ``keep_count`` messages, delete the rest; return the count kept.

        The stored message_count never exceeds the rows that really exist.
        """
        if keep_count < 0:
            raise ValueError("keep_count cannot be negative")
        session = await self.require_session(session_id)

        async def unit() -> int:
            async with self._transaction() as conn:
                await self._check_known_rows(conn, session)
                # By id: only rows this process knows are removed.
                dropped = [m.id for m in session.history[keep_count:]]
                await message_rows.delete_messages(conn, dropped)
                rows = await message_rows.count_messages(conn, session_id)
                kept = min(keep_count, rows)
                await image_rows.delete_orphan_images(conn)
                await session_rows.set_message_count(conn, session_id, kept)
            del session.history[keep_count:]
            self._emit(HISTORY_REPLACED, session_id)
            return kept

        async with self._lock:
            self._check_live(session)
            _refuse_if_streaming(session, session.history[keep_count:])
            return await _run_whole(unit())

    # -- turn versions ------------------------------------------------------------------

    async def keep_as_version(self, session_id: str, position: int) -> VersionRef | None:
        """Move ``history[position:]`` into a stored version of that turn (nothing is lost).

        Regenerate and Edit call this before writing the new version; returns the stored
        version (None when the tail was empty).
        """
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            if not 0 <= position <= len(session.history):
                raise ValueError("no turn starts at that position")
            tail = session.history[position:]
            if not tail:
                return None
            after = session.history[position - 1].id if position else ""

            async def unit() -> VersionRef:
                async with self._transaction() as conn:
                    await self._check_known_rows(conn, session)
                    ref = await version_rows.store_tail(
                        conn, session_id, after, [m.id for m in tail]
                    )
                    await session_rows.set_message_count(conn, session_id, position)
                del session.history[position:]
                session.versions.setdefault(after, []).append(ref)
                session.versions[after].sort(key=lambda r: (r.first_created_at, r.id))
                self._emit(HISTORY_REPLACED, session_id)
                return ref

            return await _run_whole(unit())

    async def select_version(self, session_id: str, position: int, number: int) -> None:
        """Show version ``number`` (1-based, in the order made) of the turn at ``position``.

        The version shown until now is stored in its place, so switching never loses one;
        what follows the turn is part of its version, and the model sees what is shown.
        """
        session = await self.require_session(session_id)
        shown, total = session.version_of(position)
        if not 1 <= number <= total:
            raise ValueError(f"the turn has {total} versions, not {number}")
        if number == shown:
            return
        stored = session.stored_versions(position)
        # The stored versions in order, with the shown one's slot left out.
        target = stored[number - 1 if number < shown else number - 2]
        await self.restore_version(session_id, position, target.id)

    async def restore_version(self, session_id: str, position: int, version_id: str) -> None:
        """Show stored version ``version_id`` of the turn at ``position``, storing the shown one."""
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            if not 0 <= position <= len(session.history):
                raise ValueError("no turn starts at that position")
            after = session.history[position - 1].id if position else ""
            refs = session.versions.get(after, [])
            if not any(r.id == version_id for r in refs):
                raise ValueError("that version does not belong to this turn")
            tail = session.history[position:]

            async def unit() -> None:
                async with self._transaction() as conn:
                    await self._check_known_rows(conn, session)
                    kept = None
                    if tail:
                        kept = await version_rows.store_tail(
                            conn, session_id, after, [m.id for m in tail]
                        )
                    restored = await version_rows.restore_version(conn, session_id, version_id)
                    await session_rows.set_message_count(
                        conn, session_id, position + len(restored.messages)
                    )
                session.history[position:] = restored.messages
                updated = [r for r in refs if r.id != version_id]
                if kept is not None:
                    updated.append(kept)
                session.versions[after] = sorted(updated, key=lambda r: (r.first_created_at, r.id))
                self._emit(HISTORY_REPLACED, session_id)

            await _run_whole(unit())

    # -- internals ----------------------------------------------------------------------

    async def _check_known_rows(self, conn: AsyncConnection, session: Session) -> None:
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

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        engine = await self._ready()
        try:
            async with engine.begin() as conn:
                yield conn
        except _dbapi_error() as exc:
            raise database.storage_error(self._path, exc) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        engine = await self._ready()
        try:
            async with engine.connect() as conn:
                yield conn
        except _dbapi_error() as exc:
            raise database.storage_error(self._path, exc) from exc

    def _check_live(self, session: Session) -> None:
        # The session may have been deleted while this call waited for the lock.
        if self._sessions.get(session.id) is not session:
            raise SessionNotFoundError(session.id)

    def _has_messages_in_memory(self, session_id: str) -> bool:
        session = self._sessions.get(session_id)
        return session is not None and bool(session.history)

    async def _load_session(self, session_id: str) -> Session | None:
        async with self._read() as conn:
            row = await session_rows.read_session(conn, session_id)
            if row is None:
                return None
            rows = await message_rows.read_messages(conn, session_id)
            wanted = {h for r in rows if r.content_type == "blocks" for h in image_refs(r.content)}
            image_bytes = await image_rows.load_images(conn, wanted)
            stored_versions = await version_rows.load_version_refs(conn, session_id)
        heavy = sum(len(data) for data in image_bytes.values()) > _OFFLOAD_BYTES
        history = await _off_loop_if(
            heavy, message_rows.build_history, session_id, rows, image_bytes
        )
        session = session_rows.session_from_row(row, history)
        session.versions = stored_versions
        if session.kind == "task" and session.task_id is not None:
            self._task_sessions[session.task_id] = session.id
        return session

    # -- owners (the HTTP API's access rules) -------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The database engine, for stores of other tables (API tokens, scheduled tasks),
        once open."""
        if self._engine is None:
            raise StorageError("The database is not open yet.")
        return self._engine

    async def list_owned_sessions(self, owner: str) -> list[SessionSummary]:
        """The sessions of ``owner``, most recent first, including memory-only ones.

        A memory-only session is one whose row was removed behind the manager's back
        while it is still held in memory: it is listed (and can be deleted) until it
        leaves memory. Where a row exists, its owner decides, not the in-memory copy.
        """
        listed = await self.list_sessions(owner=owner)
        candidates = [s for s in self._sessions.values() if s.owner == owner]
        if not candidates:
            return listed
        async with self._read() as conn:
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
        async with self._read() as conn:
            stored = await session_rows.stored_owner(conn, session_id)
        if stored is not None:
            if stored != owner:
                return None
            return await self.get_session(session_id)
        session = self._sessions.get(session_id)
        if session is not None and session.owner == owner:
            return session
        return None

    # -- compaction ---------------------------------------------------------------------

    async def compact_messages(
        self, session_id: str, message_ids: Sequence[str], summary: Content
    ) -> Message:
        """Replace the consecutive messages ``message_ids`` by one summary message.

        In one transaction the replaced messages move to the archive (nothing is deleted:
        :meth:`compacted_messages` returns them, :meth:`undo_compaction` puts them back)
        and the summary, a role "system" message marked with a new compaction id, takes
        their place. Returns the summary.
        """
        ids = list(message_ids)
        if not ids:
            raise ValueError("there are no messages to compact")
        if len(set(ids)) != len(ids):
            raise ValueError("a message cannot be compacted twice")
        message, encoded = _prepare_message(
            "system", summary, "complete", None, compaction_id=new_id(), compacted_count=0
        )
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            start = next((i for i, m in enumerate(session.history) if m.id == ids[0]), None)
            if start is None or [m.id for m in session.history[start : start + len(ids)]] != ids:
                raise ValueError("only consecutive messages of this chat can be compacted")
            # How many originals it stands for: a summary compacted again counts its own.
            message.compacted_count = sum(
                max(m.compacted_count, 1) if m.is_summary else 1
                for m in session.history[start : start + len(ids)]
            )
            assert message.compaction_id is not None
            compaction_id = message.compaction_id

            async def unit() -> None:
                updated_at = utcnow()
                count = len(session.history) - len(ids) + 1
                async with self._transaction() as conn:
                    position = await compaction_store.archive_messages(
                        conn, session_id, ids, compaction_id
                    )
                    if position is None:
                        raise ValueError("the messages to compact are not stored")
                    await message_rows.insert_message(conn, session_id, message, position, encoded)
                    await image_rows.store_images(conn, message.id, encoded.images)
                    await session_rows.set_message_count(conn, session_id, count, updated_at)
                session.history[start : start + len(ids)] = [message]
                session.updated_at = updated_at
                self._emit(HISTORY_REPLACED, session_id)

            await _run_whole(unit())
        return message

    async def compacted_messages(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """The original messages compaction replaced, oldest first.

        With ``compaction_id``, those behind that summary; without, those behind every
        summary in the history. A summary that was itself compacted again is replaced by
        the originals it stands for, so only messages the chat really had come back.
        """
        session = await self.require_session(session_id)
        if compaction_id is None:
            wanted = [m.compaction_id for m in session.history if m.compaction_id is not None]
        else:
            wanted = [compaction_id]
        async with self._lock, self._read() as conn:
            rows: list[Any] = []
            # Depth first, so the originals come out in the order the chat had them.
            for cid in wanted:
                stack = list(reversed(await compaction_store.archived_rows(conn, cid)))
                while stack:
                    row = stack.pop()
                    if row.compaction_id is not None:
                        inner = await compaction_store.archived_rows(conn, row.compaction_id)
                        stack.extend(reversed(inner))
                    else:
                        rows.append(row)
            refs = await compaction_store.archived_image_refs(conn, [r.id for r in rows])
            image_bytes = await image_rows.load_images(conn, refs)
        return message_rows.build_history(session_id, rows, image_bytes)

    async def undo_compaction(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """Put back the messages a compaction replaced, where its summary stands.

        Without ``compaction_id`` the newest summary in the history is undone. The summary
        (edited or not) goes; the originals return exactly as they were. Returns them.
        """
        session = await self.require_session(session_id)
        async with self._lock:
            self._check_live(session)
            summaries = [
                (i, m)
                for i, m in enumerate(session.history)
                if m.compaction_id is not None
                and (compaction_id is None or m.compaction_id == compaction_id)
            ]
            if not summaries:
                raise ValueError("this chat has no compaction to undo")
            index, summary = summaries[-1]
            assert summary.compaction_id is not None
            cid = summary.compaction_id
            async with self._read() as conn:
                rows = await compaction_store.archived_rows(conn, cid)
                refs = await compaction_store.archived_image_refs(conn, [r.id for r in rows])
                image_bytes = await image_rows.load_images(conn, refs)
            restored = message_rows.build_history(session_id, rows, image_bytes)

            async def unit() -> None:
                updated_at = utcnow()
                count = len(session.history) - 1 + len(restored)
                async with self._transaction() as conn:
                    await compaction_store.restore_messages(conn, session_id, cid, summary.id)
                    await image_rows.delete_orphan_images(conn)
                    await session_rows.set_message_count(conn, session_id, count, updated_at)
                session.history[index : index + 1] = restored
                session.updated_at = updated_at
                self._emit(HISTORY_REPLACED, session_id)

            await _run_whole(unit())
        return restored

    # -- scheduled tasks ----------------------------------------------------------------

    async def find_task_session(self, task_id: str) -> str | None:
        """The id of scheduled task ``task_id``'s session, or None if it has none yet."""
        session_id = self._task_sessions.get(task_id)
        if session_id is not None:
            return session_id
        async with self._read() as conn:
            return await session_rows.find_task_session(conn, task_id)

    async def release_task_session(self, task_id: str) -> str | None:
        """Make the session of task ``task_id`` a normal chat (its task is being deleted).

        Returns the session's id, or None when the task had no session.
        """
        async with self._task_lock:
            session_id = await self.find_task_session(task_id)
            if session_id is None:
                return None

            async def unit() -> None:
                async with self._transaction() as conn:
                    await session_rows.update_fields(
                        conn, session_id, {"kind": "chat", "task_id": None}
                    )
                self._task_sessions.pop(task_id, None)
                cached = self._sessions.get(session_id)
                if cached is not None:
                    cached.kind, cached.task_id = "chat", None
                self._emit(SESSION_UPDATED, session_id)

            async with self._lock:
                await _run_whole(unit())
            return session_id

    # -- find and keep: search, trash, pin, archive, branches, import ------------------

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
        async with self._read() as conn:
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
        async with self._read() as conn:
            return await search_storage.matching_message_ids(conn, session_id, query)

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
        async with self._read() as conn:
            doomed = await keeping.trashed_before(conn, cutoff)
        purged = 0
        for session_id in doomed:
            purged += await self.delete_session(session_id)
        return purged

    async def branch_session(
        self, session_id: str, message_id: str, *, title: str | None = None
    ) -> Session:
        """A new chat holding the history of ``session_id`` up to and including ``message_id``.

        The messages are copies with new ids; their images are stored once, by hash, and
        shared with the parent. The branch remembers the chat and message it came from.
        """
        parent = await self.require_session(session_id)
        async with self._lock:
            self._check_live(parent)
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
            encoded = await _off_loop_if(
                sum(_inline_image_chars(m.content) for m in copies) > _OFFLOAD_CHARS,
                lambda: [encode_content(m.content) for m in copies],
            )

            async def unit() -> None:
                async with self._transaction() as conn:
                    await keeping.insert_whole_session(conn, branch, encoded, import_key=None)
                self._sessions[branch.id] = branch
                self._emit(SESSION_CREATED, branch.id)

            await _run_whole(unit())
        return branch

    async def branches_of(self, session_id: str) -> list[SessionSummary]:
        """The chats branched from ``session_id`` (not those in the Trash)."""
        async with self._read() as conn:
            return await session_rows.list_summaries(conn, None, parent_session_id=session_id)

    async def import_chats(
        self,
        chats: Sequence[ImportedChat],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Store chats read from an export file as new sessions; return the ids added.

        A chat whose import key or session id is already stored is skipped (never
        changed), so importing the same file twice adds nothing. Everything is
        validated before the first write: invalid content raises ValueError and writes
        nothing. ``progress(done, total)`` is called as chats are written.
        """
        total = len(chats)
        for chat in chats:
            for message in chat.session.history:
                validate_role(message.role)
                _checked_status(message.status)
        encoded = await asyncio.to_thread(
            lambda: [[encode_content(m.content) for m in c.session.history] for c in chats]
        )
        async with self._read() as conn:
            known_keys, known_ids, known_messages = await keeping.already_stored(
                conn,
                import_keys=[c.import_key for c in chats],
                session_ids=[c.session.id for c in chats],
                message_ids=[msg.id for c in chats for msg in c.session.history],
            )
        fresh: list[tuple[ImportedChat, list[EncodedContent]]] = []
        seen_keys: set[str] = set()
        for chat, stored in zip(chats, encoded, strict=True):
            key, sid = chat.import_key, chat.session.id
            if key in known_keys or key in seen_keys or sid in known_ids or sid in self._sessions:
                continue
            seen_keys.add(key)
            for message in chat.session.history:
                # A message id already used elsewhere gets a new one: ids are global.
                if message.id in known_messages:
                    message.id = new_id()
                known_messages.add(message.id)
            fresh.append((chat, stored))
        skipped = total - len(fresh)
        added: list[str] = []
        if progress is not None:
            progress(skipped, total)
        for start in range(0, len(fresh), _IMPORT_BATCH):
            batch = fresh[start : start + _IMPORT_BATCH]

            async def unit(batch: list[tuple[ImportedChat, list[EncodedContent]]]) -> None:
                async with self._transaction() as conn:
                    for chat, stored in batch:
                        await keeping.insert_whole_session(
                            conn, chat.session, stored, import_key=chat.import_key
                        )
                for chat, _ in batch:
                    added.append(chat.session.id)
                    self._emit(SESSION_CREATED, chat.session.id)

            async with self._lock:
                await _run_whole(unit(batch))
            if progress is not None:
                progress(skipped + start + len(batch), total)
        return added

    async def read_session(self, session_id: str) -> Session | None:
        """The session as stored, without keeping it in memory (for exports of many chats).

        A session already in memory is returned from there (it is the newest state).
        """
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        async with self._lock:
            return self._sessions.get(session_id) or await self._load_session(session_id)

    async def _set_columns(self, session_id: str, **values: Any) -> Session:
        session = await self.require_session(session_id)

        async def unit() -> None:
            async with self._transaction() as conn:
                await keeping.set_session_columns(conn, session_id, **values)
            for name, value in values.items():
                setattr(session, name, value)
            self._emit(SESSION_UPDATED, session_id)

        async with self._lock:
            self._check_live(session)
            await _run_whole(unit())
        return session


def _refuse_if_streaming(session: Session, removed: Iterable[Message]) -> None:
    """SessionBusyError if a reply still being written would be removed."""
    if any(m.status == "streaming" for m in removed):
        raise SessionBusyError(
            f"A reply is still being written in “{session.title}”. Stop it (or wait for it "
            "to finish) before removing or replacing its messages."
        )


def _dbapi_error() -> type[DBAPIError]:
    """SQLAlchemy's DBAPIError (imported here: by now the database is open)."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError


async def _run_whole(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` (a write and its in-memory counterpart) so that nothing can split it.

    Cancelling the caller does not stop ``work``: the caller waits for it to finish and
    only then raises CancelledError, so the database and memory always end up in step.
    (The transaction may commit in the driver's thread at any moment; without this, a
    cancellation arriving then would skip the in-memory half.)
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.debug("a write whose caller was cancelled failed", exc_info=task.exception())
        raise asyncio.CancelledError
    return task.result()


async def _off_loop_if(heavy: bool, func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)``, on a worker thread when ``heavy`` (CPU work that would stall the loop)."""
    if heavy:
        return await asyncio.to_thread(func, *args)
    return func(*args)


def _inline_image_chars(content: object) -> int:
    """How many characters of data URL the image blocks of ``content`` hold (never raises)."""
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        image = block.get("image_url") if isinstance(block, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if isinstance(url, str) and url.startswith("data:"):
            total += len(url)
    return total


def _checked_status(status: str) -> str:
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    return status


def _prepare_message(
    role: str, content: Content, status: str, error: str | None, **fields: Any
) -> tuple[Message, EncodedContent]:
    """A validated message (as Message.create makes) and its stored form.

    Each image is decoded once, where Message.create and then encode_content would
    decode it twice.
    """
    validate_role(role)
    validate_tool_calls(fields.get("tool_calls"))
    encoded = encode_content(content)  # validates the content
    message = Message(
        role=role, content=copy.deepcopy(content), status=status, error=error, **fields
    )
    return message, encoded


def _snapshot(item: Message | dict[str, Any]) -> Message | dict[str, Any]:
    # A private copy taken on the caller's side, so a worker thread can read it safely.
    if isinstance(item, Message):
        return replace(item, content=copy.deepcopy(item.content))
    if not isinstance(item, dict) or "role" not in item or "content" not in item:
        raise ValueError("each message must be a Message or a dict with 'role' and 'content'")
    snapshot = {"role": item["role"], "content": copy.deepcopy(item["content"])}
    for name in ("tool_calls", "tool_call_id"):
        if item.get(name) is not None:
            snapshot[name] = copy.deepcopy(item[name])
    return snapshot


def _content_of(item: Message | dict[str, Any]) -> object:
    return item.content if isinstance(item, Message) else item["content"]


def _prepare_history(
    items: Sequence[Message | dict[str, Any]],
) -> tuple[list[Message], list[EncodedContent]]:
    prepared = [
        _prepare_message(
            item.role,
            item.content,
            _checked_status(item.status),
            item.error,
            id=item.id,
            created_at=item.created_at,
            tool_calls=item.tool_calls,
            tool_call_id=item.tool_call_id,
            compaction_id=item.compaction_id,
            compacted_count=item.compacted_count,
        )
        if isinstance(item, Message)
        else _prepare_message(
            item["role"],
            item["content"],
            "complete",
            None,
            tool_calls=item.get("tool_calls"),
            tool_call_id=item.get("tool_call_id"),
        )
        for item in items
    ]
    return [m for m, _ in prepared], [e for _, e in prepared]


def _find_message(session: Session, message_id: str) -> Message:
    # The message being changed is nearly always the newest one.
    for message in reversed(session.history):
        if message.id == message_id:
            return message
    raise LookupError(f"session {session.id!r} has no message {message_id!r}")


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
