"""Schema versioning, backups before migrations, and SQLite settings."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from chatdesk.domain import Message
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage import StorageError, open_database
from chatdesk.storage.content_codec import IMAGE_REF_PREFIX, decode_content, encode_content
from chatdesk.storage.database import MIGRATIONS
from chatdesk.storage.tables import metadata
from tests.core.conftest import make_png, png_data_url, query


def add_colour_column(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE sessions ADD COLUMN colour INTEGER DEFAULT 0"))


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

    engine = await open_database(db_url, migrations=(*MIGRATIONS, add_colour_column))
    await engine.dispose()

    latest = len(MIGRATIONS)
    backups = list(db_path.parent.glob(f"chat.db.backup-v{latest}-*"))
    assert len(backups) == 1
    assert query(backups[0], "SELECT content FROM messages") == [("do not lose me",)]
    assert query(backups[0], "SELECT version FROM schema_version") == [(latest,)]
    assert query(db_path, "SELECT version FROM schema_version") == [(latest + 1,)]
    assert query(db_path, "SELECT title, colour FROM sessions") == [("precious", 0)]
    assert query(db_path, "SELECT content FROM messages") == [("do not lose me",)]


async def test_migrations_build_exactly_the_schema_tables_py_describes(
    db_url: str, db_path: Path
) -> None:
    engine = await open_database(db_url)
    await engine.dispose()
    for table in metadata.sorted_tables:
        stored = {row[1] for row in query(db_path, f"PRAGMA table_info({table.name})")}
        assert stored == set(table.columns.keys()), f"table {table.name} differs"
        stored_indexes = {row[1] for row in query(db_path, f"PRAGMA index_list({table.name})")}
        declared = {index.name for index in table.indexes}
        assert declared <= stored_indexes, f"indexes of {table.name} differ"


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


async def test_the_busy_timeout_can_be_chosen(db_url: str) -> None:
    engine = await open_database(db_url, busy_timeout_ms=75)
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 75
    await engine.dispose()
    manager = await SessionManager.open(db_url, busy_timeout_ms=120)
    try:
        async with manager.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 120
    finally:
        await manager.close()
    with pytest.raises(ValueError):
        await open_database(db_url, busy_timeout_ms=-1)


async def test_a_data_folder_that_cannot_be_created_gives_a_clear_error(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a file, not a folder"
    in_the_way.write_text("")
    folder = in_the_way / "ChatDesk"
    with pytest.raises(StorageError) as raised:
        await SessionManager.open(sqlite_url(folder / "chat.db"))
    message = str(raised.value)
    assert message.startswith(f"ChatDesk cannot create its data folder {folder}: ")
    assert message.endswith(". Choose another folder with --data-dir.")
    assert isinstance(raised.value.__cause__, OSError)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
async def test_a_data_folder_under_proc_gives_a_clear_error() -> None:
    # Not even root can create a folder in /proc.
    with pytest.raises(
        StorageError,
        match=r"^ChatDesk cannot create its data folder /proc/nope: No such file or directory\. "
        r"Choose another folder with --data-dir\.$",
    ):
        await SessionManager.open("sqlite+aiosqlite:////proc/nope/chat.db")


def test_non_canonical_base64_stays_inline_and_round_trips() -> None:
    png = make_png()
    canonical = base64.b64encode(png).decode()
    assert canonical.endswith("=")  # so the last quad has bits to spare
    # Same bytes, but a last data character whose unused low bits are set.
    last = canonical.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd = last[:-1] + alphabet[alphabet.index(last[-1]) + 1] + canonical[len(last) :]
    assert base64.b64decode(odd, validate=True) == png
    for b64, inline in ((canonical, False), (odd, True)):
        content = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}}]
        encoded = encode_content(content)
        assert (b64 in encoded.cell) is inline
        assert bool(encoded.images) is not inline
        assert decode_content(encoded.content_type, encoded.cell, encoded.images) == (
            content,
            True,
        )


def test_decoding_rejects_a_damaged_image_reference() -> None:
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": ""}}]
    content[1]["image_url"]["url"] = png_data_url()
    encoded = encode_content(content)
    [digest] = encoded.images
    assert decode_content("blocks", encoded.cell, encoded.images) == (content, True)
    # A missing image, an image that is not one, a reference with a bad MIME type, and
    # blocks around the image that are not valid: each comes back as the raw cell.
    assert decode_content("blocks", encoded.cell, {}) == (encoded.cell, False)
    assert decode_content("blocks", encoded.cell, {digest: b"not a picture"}) == (
        encoded.cell,
        False,
    )
    bad_mime = encoded.cell.replace(f"{digest};image/png", f"{digest};text/html")
    assert f"{IMAGE_REF_PREFIX}{digest};text/html" in bad_mime
    assert decode_content("blocks", bad_mime, encoded.images) == (bad_mime, False)
    bad_text = encoded.cell.replace('"text": "hi"', '"text": 5')
    assert decode_content("blocks", bad_text, encoded.images) == (bad_text, False)
    assert decode_content("blocks", "[]", {}) == ("[]", False)


def test_encoding_validates_like_message_create() -> None:
    with pytest.raises(ValueError, match="not a recognisable image"):
        encode_content(
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]
        )
    with pytest.raises(ValueError, match="empty list"):
        encode_content([])
    Message.create("user", [{"type": "image_url", "image_url": {"url": png_data_url()}}])
