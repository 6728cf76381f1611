"""The manager's database: opened at once or on first use, and its transactions.

Start-up builds and paints the window before SQLAlchemy is even imported
(bench/bench_startup.py), so a manager may be made "deferred": the database opens on
``finish_opening`` or on the first call that needs it, whichever comes first, and every
caller waits for that one opening. Opening refuses a folder another ChatDesk process
holds, then marks replies that were still streaming when the app last stopped as
``interrupted``.

Every transaction and read goes through here, so a driver error always reaches the
caller as a StorageError in words.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from chatdesk.instance import refuse_if_in_use
from chatdesk.lazy_import import lazy_module
from chatdesk.storage.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from chatdesk.storage import database, message_rows
else:
    # SQLAlchemy (which these import) loads when the database is first opened.
    database = lazy_module("chatdesk.storage.database")
    message_rows = lazy_module("chatdesk.storage.message_rows")


class SessionDatabase:
    """One database engine for the SessionManager, open or waiting to be opened."""

    def __init__(self, engine: AsyncEngine | None, path: Path | None) -> None:
        """Wrap an engine already opened and migrated (or None, for :meth:`deferred`)."""
        self._engine = engine
        self._path = path
        # For a deferred database: how to open it, and the opening under way.
        self._open_options: tuple[str, int | None] | None = None
        self._opening: asyncio.Future[AsyncEngine] | None = None

    @classmethod
    def deferred(cls, database_url: str, *, busy_timeout_ms: int | None) -> SessionDatabase:
        """A database that opens on :meth:`ready`: create, migrate, clean up after a crash."""
        handle = cls(None, None)
        handle._open_options = (database_url, busy_timeout_ms)
        return handle

    @property
    def path(self) -> Path | None:
        """The database file, or None for an in-memory database (or one not open yet)."""
        return self._path

    @property
    def engine(self) -> AsyncEngine:
        """The engine, once open; StorageError before."""
        if self._engine is None:
            raise StorageError("The database is not open yet.")
        return self._engine

    async def ready(self) -> AsyncEngine:
        """The engine, opening the database first if that has not happened yet."""
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
        except dbapi_error() as exc:
            await engine.dispose()
            self._opening = None
            raise database.storage_error(self._path, exc) from exc
        self._engine = engine
        return engine

    async def close(self) -> None:
        """Release the engine (waiting for an opening under way first)."""
        if self._opening is not None and self._engine is None:
            with contextlib.suppress(Exception):
                await self._opening
        if self._engine is not None:
            await self._engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends without error."""
        engine = await self.ready()
        try:
            async with engine.begin() as conn:
                yield conn
        except dbapi_error() as exc:
            raise database.storage_error(self._path, exc) from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading."""
        engine = await self.ready()
        try:
            async with engine.connect() as conn:
                yield conn
        except dbapi_error() as exc:
            raise database.storage_error(self._path, exc) from exc


def dbapi_error() -> type[DBAPIError]:
    """SQLAlchemy's DBAPIError (imported here: by now the database is open)."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError
