"""Schema versioning, backups before migrations, and SQLite settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from chatdesk.sessions import SessionManager
from chatdesk.storage import StorageError, open_database
from chatdesk.storage.database import MIGRATIONS
from tests.core.conftest import query


def add_pinned_column(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE sessions ADD COLUMN pinned INTEGER DEFAULT 0"))


async def test_new_database_is_at_the_latest_version_with_wal(db_url: str, db_path: Path) -> None:
    engine = await open_database(db_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    await engine.dispose()
    assert query(db_path, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    assert not list(db_path.parent.glob("*.backup-*")), "a fresh database needs no backup"


async def test_migration_runs_after_a_backup_of_the_old_file(db_url: str, db_path: Path) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session("precious")
    await manager.add_message(session.id, "user", "do not lose me")
    await manager.close()

    engine = await open_database(db_url, migrations=(*MIGRATIONS, add_pinned_column))
    await engine.dispose()

    backups = list(db_path.parent.glob("chat.db.backup-v1-*"))
    assert len(backups) == 1
    assert query(backups[0], "SELECT content FROM messages") == [("do not lose me",)]
    assert query(backups[0], "SELECT version FROM schema_version") == [(1,)]
    assert query(db_path, "SELECT version FROM schema_version") == [(2,)]
    assert query(db_path, "SELECT title, pinned FROM sessions") == [("precious", 0)]
    assert query(db_path, "SELECT content FROM messages") == [("do not lose me",)]


async def test_a_database_from_a_newer_version_is_refused(db_url: str, db_path: Path) -> None:
    engine = await open_database(db_url)
    await engine.dispose()
    query(db_path, "UPDATE schema_version SET version = 99")
    with pytest.raises(StorageError, match="newer ChatDesk"):
        await open_database(db_url)


async def test_only_sqlite_is_accepted() -> None:
    with pytest.raises(StorageError, match="Only SQLite"):
        await open_database("postgresql+asyncpg://localhost/chat")


async def test_in_memory_database_works() -> None:
    manager = await SessionManager.open("sqlite+aiosqlite:///:memory:")
    try:
        session = await manager.create_session()
        await manager.add_message(session.id, "user", "hi")
        assert [s.message_count for s in await manager.list_sessions()] == [1]
    finally:
        await manager.close()
