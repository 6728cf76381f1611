"""Opening the SQLite database: engine, pragmas, schema versioning and backups."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from chatdesk.storage.errors import StorageError
from chatdesk.storage.search import create_search_index

__all__ = ["StorageError"]  # named here too, where it always was


class DamagedDatabaseError(StorageError):
    """The database file is damaged (or no SQLite file at all); ``path`` is the file."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ForeignDatabaseError(StorageError):
    """The file is another program's SQLite database; it was left exactly as it was."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# Written into the header of every ChatDesk database ("ChDk"), so that another program's
# SQLite file is never mistaken for ours and altered.
APPLICATION_ID = 0x4368446B
# The columns a ChatDesk file made before APPLICATION_ID existed has at least (version 1).
_V1_COLUMNS = {
    "sessions": {"id", "title", "created_at", "updated_at", "message_count"},
    "messages": {"id", "session_id", "position", "role", "content", "status"},
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


Migration = Callable[[Connection], None]


# The version-1 schema as it was first shipped. tables.py describes the newest schema;
# later versions change this one step by step through the migrations after it.
_SCHEMA_V1 = (
    "CREATE TABLE sessions (id VARCHAR NOT NULL, owner VARCHAR DEFAULT 'local' NOT NULL, "
    "title VARCHAR NOT NULL, kind VARCHAR DEFAULT 'chat' NOT NULL, task_id VARCHAR, "
    "system_prompt TEXT, provider VARCHAR, model VARCHAR, created_at FLOAT NOT NULL, "
    "updated_at FLOAT NOT NULL, message_count INTEGER DEFAULT '0' NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_sessions_updated_at ON sessions (updated_at)",
    "CREATE INDEX ix_sessions_owner_updated_at ON sessions (owner, updated_at)",
    "CREATE UNIQUE INDEX ux_sessions_task_id ON sessions (task_id) "
    "WHERE kind = 'task' AND task_id IS NOT NULL",
    "CREATE TABLE messages (id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, "
    "position INTEGER NOT NULL, role VARCHAR NOT NULL, "
    "content_type VARCHAR DEFAULT 'text' NOT NULL, content TEXT NOT NULL, "
    "status VARCHAR DEFAULT 'complete' NOT NULL, error TEXT, created_at FLOAT NOT NULL, "
    "PRIMARY KEY (id), FOREIGN KEY(session_id) REFERENCES sessions (id) ON DELETE CASCADE)",
    "CREATE UNIQUE INDEX ux_messages_session_position ON messages (session_id, position)",
    "CREATE TABLE images (sha256 VARCHAR NOT NULL, data BLOB NOT NULL, size INTEGER NOT NULL, "
    "PRIMARY KEY (sha256))",
    "CREATE TABLE message_images (message_id VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, "
    "FOREIGN KEY(message_id) REFERENCES messages (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_message_images_message ON message_images (message_id)",
    "CREATE INDEX ix_message_images_sha256 ON message_images (sha256)",
)


def _create_schema_v1(connection: Connection) -> None:
    for statement in _SCHEMA_V1:
        connection.execute(text(statement))


def _add_api_tokens(connection: Connection) -> None:
    """Version 2: the local HTTP API's tokens (hashes only)."""
    connection.execute(
        text(
            "CREATE TABLE api_tokens (name VARCHAR NOT NULL, token_hash VARCHAR NOT NULL, "
            "created_at FLOAT NOT NULL, PRIMARY KEY (name))"
        )
    )
    connection.execute(text("CREATE UNIQUE INDEX ux_api_tokens_hash ON api_tokens (token_hash)"))


_SCHEMA_V2_COMPACTION = (
    "ALTER TABLE messages ADD COLUMN tool_calls TEXT",
    "ALTER TABLE messages ADD COLUMN tool_call_id VARCHAR",
    "ALTER TABLE messages ADD COLUMN compaction_id VARCHAR",
    "ALTER TABLE messages ADD COLUMN compacted_count INTEGER DEFAULT '0' NOT NULL",
    "CREATE TABLE compacted_messages (id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, "
    "archived_by VARCHAR NOT NULL, ordinal INTEGER NOT NULL, role VARCHAR NOT NULL, "
    "content_type VARCHAR DEFAULT 'text' NOT NULL, content TEXT NOT NULL, "
    "status VARCHAR DEFAULT 'complete' NOT NULL, error TEXT, created_at FLOAT NOT NULL, "
    "tool_calls TEXT, tool_call_id VARCHAR, compaction_id VARCHAR, "
    "compacted_count INTEGER DEFAULT '0' NOT NULL, PRIMARY KEY (id), "
    "FOREIGN KEY(session_id) REFERENCES sessions (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_compacted_messages_archived_by ON compacted_messages (archived_by, ordinal)",
    "CREATE INDEX ix_compacted_messages_session ON compacted_messages (session_id)",
    "CREATE TABLE compacted_message_images (message_id VARCHAR NOT NULL, "
    "sha256 VARCHAR NOT NULL, "
    "FOREIGN KEY(message_id) REFERENCES compacted_messages (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_compacted_message_images_message ON compacted_message_images (message_id)",
    "CREATE INDEX ix_compacted_message_images_sha256 ON compacted_message_images (sha256)",
)


def _add_tool_calls_and_compaction(connection: Connection) -> None:
    """v3: tool calls on messages, and the archive of messages a compaction replaced."""
    for statement in _SCHEMA_V2_COMPACTION:
        connection.execute(text(statement))


_SCHEMA_V4_TASKS = (
    "CREATE TABLE tasks (id VARCHAR NOT NULL, name VARCHAR NOT NULL, prompt TEXT NOT NULL, "
    "schedule VARCHAR NOT NULL, provider VARCHAR, model VARCHAR, "
    "enabled BOOLEAN DEFAULT '1' NOT NULL, created_at FLOAT NOT NULL, next_run_at FLOAT, "
    "last_run_at FLOAT, last_status VARCHAR, last_note TEXT, "
    "unread BOOLEAN DEFAULT '0' NOT NULL, PRIMARY KEY (id))",
)


def _add_tasks(connection: Connection) -> None:
    """Version 4: the scheduled tasks table."""
    for statement in _SCHEMA_V4_TASKS:
        connection.execute(text(statement))


def _add_find_and_keep(connection: Connection) -> None:
    """v5: pin, archive, trash, branch and import columns, and the full-text index."""
    for statement in (
        "ALTER TABLE sessions ADD COLUMN pinned INTEGER DEFAULT '0' NOT NULL",
        "ALTER TABLE sessions ADD COLUMN archived_at FLOAT",
        "ALTER TABLE sessions ADD COLUMN trashed_at FLOAT",
        "ALTER TABLE sessions ADD COLUMN parent_session_id VARCHAR",
        "ALTER TABLE sessions ADD COLUMN parent_message_id VARCHAR",
        "ALTER TABLE sessions ADD COLUMN import_key VARCHAR",
        "CREATE INDEX ix_sessions_trashed_at ON sessions (trashed_at)",
        "CREATE UNIQUE INDEX ux_sessions_import_key ON sessions (import_key)",
        "CREATE INDEX ix_sessions_parent_session_id ON sessions (parent_session_id)",
    ):
        connection.execute(text(statement))
    create_search_index(connection)


_TURN_VERSIONS = (
    "CREATE TABLE turn_versions (id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, "
    "after_message_id VARCHAR NOT NULL, first_created_at FLOAT NOT NULL, messages TEXT NOT NULL, "
    "PRIMARY KEY (id), FOREIGN KEY(session_id) REFERENCES sessions (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_turn_versions_session ON turn_versions (session_id, after_message_id)",
    "CREATE TABLE turn_version_images (version_id VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, "
    "FOREIGN KEY(version_id) REFERENCES turn_versions (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_turn_version_images_version ON turn_version_images (version_id)",
    "CREATE INDEX ix_turn_version_images_sha256 ON turn_version_images (sha256)",
)


def _add_turn_versions(connection: Connection) -> None:
    """Version 6: earlier versions of a turn (Regenerate and Edit keep what they replace)."""
    for statement in _TURN_VERSIONS:
        connection.execute(text(statement))


_DAILY_USE_COLUMNS = (
    "ALTER TABLE sessions ADD COLUMN temperature FLOAT",
    "ALTER TABLE sessions ADD COLUMN max_tokens INTEGER",
    "ALTER TABLE sessions ADD COLUMN draft TEXT",
    "ALTER TABLE messages ADD COLUMN meta TEXT",
)


def _add_daily_use_columns(connection: Connection) -> None:
    """Version 7: per-chat temperature, max tokens and draft; each reply's facts."""
    for statement in _DAILY_USE_COLUMNS:
        connection.execute(text(statement))


# Ordered: MIGRATIONS[i] upgrades a database from version i to version i + 1.
MIGRATIONS: tuple[Migration, ...] = (
    _create_schema_v1,
    _add_api_tokens,
    _add_tool_calls_and_compaction,
    _add_tasks,
    _add_find_and_keep,
    _add_turn_versions,
    _add_daily_use_columns,
)


# How long a write waits for another connection's lock before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 5000


def _set_pragmas(dbapi_connection: object, _record: object, *, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the window read while a reply is being written; NORMAL is durable across
    # application crashes, which is what a kill mid-reply needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def database_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    name = make_url(database_url).database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


async def open_database(
    database_url: str,
    *,
    migrations: Sequence[Migration] = MIGRATIONS,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> AsyncEngine:
    """Open (creating or upgrading) the database at ``database_url``.

    Before any migration runs on a database that already holds data, the file is copied
    to ``<name>.backup-v<old version>-<UTC time>`` next to it. A write waits up to
    ``busy_timeout_ms`` for another program's lock before it fails with StorageError.
    """
    if busy_timeout_ms < 0:
        raise ValueError("busy_timeout_ms cannot be negative")
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        raise StorageError(f"Only SQLite databases are supported, not {url.drivername!r}.")
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    path = database_path(database_url)
    options: dict[str, object] = {}
    identity = "new"
    if path is None:
        options["poolclass"] = StaticPool  # one shared in-memory database
    else:
        _create_folder(path.parent)
        # Decided before SQLAlchemy opens the file: its first connection already writes
        # (journal_mode=WAL), which another program's file must never see.
        identity = await asyncio.to_thread(identify_database, path)
        await asyncio.to_thread(_make_private, path)
    engine = create_async_engine(url, **options)
    event.listen(
        engine.sync_engine,
        "connect",
        functools.partial(_set_pragmas, busy_timeout_ms=busy_timeout_ms),
    )
    try:
        await _migrate(engine, path, migrations, adopt=identity == "unmarked")
        if len(migrations) >= len(MIGRATIONS):
            # tables.py describes the schema all of MIGRATIONS build; an older schema
            # (tests build one to upgrade it) is not damaged for lacking newer tables.
            await _check_columns(engine, path)
    except DBAPIError as exc:
        await engine.dispose()
        raise storage_error(path, exc) from exc
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _create_folder(folder: Path) -> None:
    """Make the data folder, private to the user (a folder already ours is made private)."""
    try:
        if folder.is_dir():
            if (folder / "chat.db").exists() and (folder.stat().st_mode & 0o077):
                folder.chmod(0o700)
            return
        folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        return
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StorageError(
            f"ChatDesk cannot create its data folder {folder}: {reason}. "
            "Choose another folder with --data-dir."
        ) from exc


def identify_database(path: Path) -> str:
    """Whose file ``path`` is, without changing a byte of it.

    ``"new"``: no file, or an empty one. ``"ours"``: marked with APPLICATION_ID.
    ``"unmarked"``: a ChatDesk file from before the mark. Raises ForeignDatabaseError for
    another program's SQLite file and DamagedDatabaseError for a file SQLite cannot read.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return "new"
    except OSError as exc:
        raise StorageError(f"The database {path} cannot be read: {exc.strerror or exc}.") from exc
    if not header:
        return "new"
    if not header.startswith(_SQLITE_MAGIC):
        raise DamagedDatabaseError(
            f"The database {path} is damaged: it does not start like a SQLite database "
            "(its first bytes were overwritten, or it is another kind of file). It was left "
            "unchanged.",
            path,
        )
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DamagedDatabaseError(f"The database {path} cannot be opened: {exc}.", path) from exc
    try:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        names = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if application_id == APPLICATION_ID:
            return "ours"
        if application_id != 0:
            raise _foreign(path, f"it is marked as another application's (id {application_id})")
        if not names:
            return "new"
        missing = [name for name in ("schema_version", *_V1_COLUMNS) if name not in names]
        if missing:
            raise _foreign(path, f"it has no table {missing[0]!r}")
        for table, needed in _V1_COLUMNS.items():
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if not needed <= columns:
                lacking = ", ".join(sorted(needed - columns))
                raise _foreign(path, f"its table {table!r} has no column {lacking}")
        return "unmarked"
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabaseError(f"The database {path} is damaged ({exc}).", path) from exc
    finally:
        connection.close()


def _foreign(path: Path, reason: str) -> ForeignDatabaseError:
    return ForeignDatabaseError(
        f"{path} is not a ChatDesk database ({reason}); it was left unchanged. Choose "
        "another data folder with --data-dir, or move the file away.",
        path,
    )


def _make_private(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite copies the mode to its
    -wal and -shm files), or make an existing one so."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if part.stat().st_mode & 0o077:
                part.chmod(0o600)


async def _check_columns(engine: AsyncEngine, path: Path | None) -> None:
    """DamagedDatabaseError when a table lacks a column this version reads (a file edited
    by another tool), instead of failing later on the first query that needs it."""
    from chatdesk.storage.tables import metadata  # the newest schema

    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(text(f"PRAGMA table_info({table.name})"))).all()
            present = {row[1] for row in rows}
            missing = sorted(set(table.columns.keys()) - present)
            if missing:
                what = (
                    f"has no table {table.name!r}"
                    if not present
                    else (f"lacks the column(s) {', '.join(missing)} of table {table.name!r}")
                )
                raise DamagedDatabaseError(
                    f"The database {path or ''} is damaged: it {what}.", path
                )


async def _migrate(
    engine: AsyncEngine, path: Path | None, migrations: Sequence[Migration], *, adopt: bool = False
) -> None:
    async with engine.begin() as conn:
        version = await conn.run_sync(_read_version)
    if version > len(migrations):
        raise StorageError(
            f"The database was written by a newer ChatDesk (schema version {version}); "
            "update ChatDesk to open it."
        )
    if version == len(migrations) and not adopt:
        return
    if version > 0 and path is not None:
        await asyncio.to_thread(backup_database, path, f"v{version}")
    async with engine.begin() as conn:
        await conn.execute(text(f"PRAGMA application_id = {APPLICATION_ID}"))
        for target in range(version, len(migrations)):
            await conn.run_sync(migrations[target])
        await conn.execute(text("DELETE FROM schema_version"))
        await conn.execute(
            text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": len(migrations)}
        )


def _read_version(connection: Connection) -> int:
    connection.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)"))
    row = connection.execute(text("SELECT max(version) FROM schema_version")).first()
    return int(row[0]) if row and row[0] is not None else 0


def backup_database(path: Path, label: str) -> Path:
    """Copy the database at ``path`` (consistently, WAL included) and return the copy's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.backup-{label}-{stamp}")
    # Private from the first byte, like the database itself.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite3.connect(path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    except sqlite3.DatabaseError:
        # A file SQLite cannot read is still someone's data: keep the raw bytes.
        shutil.copy2(path, target)
    finally:
        source.close()
    return target


def storage_error(path: Path | None, exc: SQLAlchemyError) -> StorageError:
    """A StorageError with a message a person can act on, for a failed database call."""
    where = f"The database {path}" if path else "The database"
    detail = str(getattr(exc, "orig", exc))
    if "not a database" in detail or "malformed" in detail:
        return DamagedDatabaseError(
            f"{where} is damaged or is not a ChatDesk database ({detail}). Your chats were not "
            "changed. Move the file aside to start fresh, or open another data folder "
            "with --data-dir.",
            path,
        )
    if "disk is full" in detail or "No space left" in detail:
        return StorageError(
            f"The disk holding {path or 'the database'} is full, so this change was not "
            "saved. Free some space and try again; everything saved before is kept."
        )
    if "locked" in detail or "busy" in detail:
        return StorageError(
            f"{where} is locked by another program ({detail}). Close other ChatDesk windows "
            "and try again."
        )
    return StorageError(f"{where} could not be opened or written: {detail}")


# SQLite limits the number of bound parameters in one statement.
IN_CHUNK = 500


def in_chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough for one ``IN (...)`` each."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]
