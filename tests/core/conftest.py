"""Fixtures for the Qt-free core: a real SQLite file per test and a manager over it."""

from __future__ import annotations

import base64
import sqlite3
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.openai_test_server import OpenAITestServer


def make_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real, decodable PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def png_data_url(**kwargs: Any) -> str:
    """A data URL of :func:`make_png`."""
    return "data:image/png;base64," + base64.b64encode(make_png(**kwargs)).decode()


def query(db_path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the database file directly, bypassing ChatDesk."""
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(sql, args).fetchall()
        connection.commit()
        return rows
    finally:
        connection.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's database file lives."""
    return tmp_path / "chat.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    """The SQLAlchemy URL of this test's database file."""
    return sqlite_url(db_path)


@pytest.fixture
async def manager(db_url: str) -> AsyncIterator[SessionManager]:
    """A SessionManager over a fresh database file, closed after the test."""
    opened = await SessionManager.open(db_url)
    yield opened
    await opened.close()


LONG_REPLY = " ".join(f"word{i}" for i in range(40))


async def drain(replies: AsyncIterator[str]) -> list[str]:
    """Every delta of a reply stream."""
    return [delta async for delta in replies]


def stored_messages(db_path: Path, session_id: str) -> list[tuple[str, str, str, str | None]]:
    """(role, content, status, error) of every stored message of the session, in order."""
    return query(
        db_path,
        "SELECT role, content, status, error FROM messages WHERE session_id = ? ORDER BY position",
        (session_id,),
    )


@pytest.fixture
async def provider(openai_server: OpenAITestServer) -> AsyncIterator[OpenAICompatibleProvider]:
    """A provider for the test server."""
    built = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    yield built
    await built.close()


@pytest.fixture
async def engine(
    manager: SessionManager, provider: OpenAICompatibleProvider
) -> AsyncIterator[ChatEngine]:
    """An engine that flushes often and makes no title requests."""
    built = ChatEngine(manager, provider, flush_interval=0.1, auto_title=False)
    yield built
    await built.close()
