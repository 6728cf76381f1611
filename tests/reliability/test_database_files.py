"""Foreign, unmarked, damaged and private database files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage import DamagedDatabaseError, ForeignDatabaseError, open_database
from chatdesk.storage.database import _SCHEMA_V1, APPLICATION_ID
from chatdesk.storage.recovery import database_backups, restore_backup, set_aside
from tests.core.conftest import query


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` by name, with a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def make_sqlite(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("statements", "reason"),
    [
        (
            [
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
                "INSERT INTO notes (body) VALUES ('someone else''s data')",
            ],
            "no table 'schema_version'",
        ),
        (
            [
                "CREATE TABLE schema_version (version INTEGER)",
                "INSERT INTO schema_version VALUES (1)",
                "CREATE TABLE sessions (id TEXT, name TEXT)",
                "CREATE TABLE messages (id TEXT, body TEXT)",
            ],
            "table 'sessions' has no column",
        ),
        (
            [*_SCHEMA_V1, "PRAGMA application_id = 1234"],
            "another application's (id 1234)",
        ),
    ],
    ids=["other-tables", "our-names-other-columns", "other-application-id"],
)
async def test_another_programs_sqlite_file_is_refused_without_changing_a_byte(
    tmp_path: Path, statements: list[str], reason: str
) -> None:
    path = tmp_path / "chat.db"
    make_sqlite(path, *statements)
    before = snapshot(tmp_path)

    with pytest.raises(ForeignDatabaseError, match="not a ChatDesk database") as raised:
        await SessionManager.open(sqlite_url(path))

    assert reason in str(raised.value)
    assert snapshot(tmp_path) == before, "the foreign file (or its folder) was changed"


async def test_a_chatdesk_file_from_before_the_mark_is_backed_up_then_marked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    make_sqlite(
        path,
        *_SCHEMA_V1,
        "CREATE TABLE schema_version (version INTEGER)",
        "INSERT INTO schema_version VALUES (1)",
        "INSERT INTO sessions (id, title, created_at, updated_at, message_count) "
        "VALUES ('s1', 'Old chat', 0, 0, 1)",
        "INSERT INTO messages (id, session_id, position, role, content, created_at) "
        "VALUES ('m1', 's1', 0, 'user', 'keep me', 0)",
    )
    manager = await SessionManager.open(sqlite_url(path))
    session = await manager.require_session("s1")
    await manager.close()

    assert [m.content for m in session.history] == ["keep me"]
    assert query(path, "PRAGMA application_id") == [(APPLICATION_ID,)]
    backups = database_backups(path)
    assert len(backups) == 1
    assert query(backups[0], "SELECT content FROM messages") == [("keep me",)]
    assert query(backups[0], "PRAGMA application_id") == [(0,)]
    assert mode(backups[0]) == 0o600


async def test_a_new_database_is_marked_and_private(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    path = folder / "chat.db"
    manager = await SessionManager.open(sqlite_url(path))
    session = await manager.create_session("Private")
    await manager.add_message(session.id, "user", "secret thoughts")

    assert mode(folder) == 0o700
    assert mode(path) == 0o600
    assert mode(path.with_name("chat.db-wal")) == 0o600
    await manager.close()
    assert query(path, "PRAGMA application_id") == [(APPLICATION_ID,)]

    # An older install's world-readable files are made private on the next start.
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)
    manager = await SessionManager.open(sqlite_url(path))
    await manager.close()
    assert (mode(folder), mode(path)) == (0o700, 0o600)


async def test_a_marked_file_missing_a_column_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    manager = await SessionManager.open(sqlite_url(path))
    await manager.close()
    query(path, "ALTER TABLE messages DROP COLUMN error")

    with pytest.raises(DamagedDatabaseError, match=r"lacks the column.* error .*'messages'"):
        await SessionManager.open(sqlite_url(path))


async def test_damaged_pages_give_a_damaged_database_error(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    manager = await SessionManager.open(sqlite_url(path))
    session = await manager.create_session("Soon broken")
    for index in range(200):
        await manager.add_message(session.id, "user", f"message {index} " * 40)
    await manager.close()
    engine = await open_database(sqlite_url(path))  # checkpoints the WAL into the file
    await engine.dispose()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 6] = b"\xff" * (page * 4)
    path.write_bytes(bytes(data))

    with pytest.raises(DamagedDatabaseError) as raised:
        manager = await SessionManager.open(sqlite_url(path))
        await manager.list_sessions()
        await manager.require_session(session.id)
    assert raised.value.path == path


async def test_recovery_sets_the_damaged_file_aside_and_restores_the_latest_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    manager = await SessionManager.open(sqlite_url(path))
    session = await manager.create_session("Backed up")
    await manager.add_message(session.id, "user", "in the backup")
    await manager.close()
    from chatdesk.storage.database import backup_database

    backup_database(path, "manual")
    path.write_bytes(b"\x00" * 8192)
    damaged = path.read_bytes()

    with pytest.raises(DamagedDatabaseError):
        await SessionManager.open(sqlite_url(path))
    aside = restore_backup(path, database_backups(path)[0])

    assert aside.read_bytes() == damaged
    manager = await SessionManager.open(sqlite_url(path))
    restored = await manager.require_session(session.id)
    await manager.close()
    assert [m.content for m in restored.history] == ["in the backup"]

    # Starting anew keeps the file aside too.
    second = set_aside(path)
    assert second.exists() and not path.exists()
    manager = await SessionManager.open(sqlite_url(path))
    assert await manager.list_sessions() == []
    await manager.close()
