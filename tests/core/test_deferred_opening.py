"""Start-up paints before the database opens: a deferred SessionManager, and the chat list
read for the first paint without SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage.errors import StorageError
from chatdesk.storage.first_screen import read_chat_list


async def test_a_deferred_manager_opens_on_first_use(db_url: str, db_path: Path) -> None:
    manager = SessionManager.deferred(db_url)
    assert not db_path.exists()  # nothing touched yet
    session = await manager.create_session("Made after a deferred start")
    assert [s.title for s in await manager.list_sessions()] == ["Made after a deferred start"]
    assert manager.database_path == db_path
    await manager.close()
    again = SessionManager.deferred(db_url)
    await again.finish_opening()
    assert (await again.require_session(session.id)).title == "Made after a deferred start"
    await again.close()


async def test_a_deferred_manager_reports_a_damaged_file_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    path.write_bytes(b"this is not a database" * 100)
    manager = SessionManager.deferred(sqlite_url(path))
    with pytest.raises(StorageError, match="is damaged"):
        await manager.finish_opening()
    assert path.read_bytes() == b"this is not a database" * 100  # left as it was
    await manager.close()


async def test_the_first_screen_lists_what_the_manager_lists(db_url: str, db_path: Path) -> None:
    manager = await SessionManager.open(db_url)
    for title in ("One", "Two", "Three"):
        session = await manager.create_session(title)
        await manager.add_message(session.id, "user", f"about {title}")
    expected = await manager.list_sessions()
    assert read_chat_list(db_path) == expected
    await manager.close()


def test_the_first_screen_gives_up_quietly_on_a_missing_or_foreign_file(tmp_path: Path) -> None:
    assert read_chat_list(tmp_path / "absent.db") is None
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"not sqlite at all" * 50)
    assert read_chat_list(foreign) is None
    assert read_chat_list(None) is None


def test_the_core_and_window_modules_import_no_sqlalchemy_sdk_or_model_runtime() -> None:
    # What the first paint does not need is imported after it (bench/bench_startup.py).
    code = (
        "import sys, chatdesk.app, chatdesk.ui.main_window, chatdesk.chat, chatdesk.sessions\n"
        "heavy = ('sqlalchemy', 'aiosqlite', 'openai', 'llama_cpp', 'pygments', 'keyring')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={"PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
