"""A damaged database at start-up: a dialog says what is wrong and offers the ways on,
instead of a traceback and no window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from chatdesk.app import open_manager
from chatdesk.sessions import SessionManager
from chatdesk.settings import parse_startup_options, sqlite_url
from chatdesk.storage.database import backup_database
from chatdesk.ui.recovery_dialog import DamagedDatabaseDialog
from tests.ui.harness import run


def make_damaged_database(qtbot: QtBot, data_dir: Path, *, with_backup: bool) -> tuple[Path, str]:
    """A chat database with one chat, optionally backed up, then damaged; (path, chat id)."""
    path = data_dir / "chat.db"

    async def build() -> str:
        manager = await SessionManager.open(sqlite_url(path))
        session = await manager.create_session("Saved in the backup")
        await manager.add_message(session.id, "user", "remember me")
        await manager.close()
        return session.id

    session_id = run(qtbot, build())
    if with_backup:
        backup_database(path, "daily")
    path.write_bytes(b"\x00" * 4096 + path.read_bytes()[4096:])
    return path, session_id


def the_dialog(qtbot: QtBot) -> DamagedDatabaseDialog:
    found: list[DamagedDatabaseDialog] = []

    def shown() -> bool:
        found[:] = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, DamagedDatabaseDialog) and w.isVisible()
        ]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    return found[0]


@pytest.mark.parametrize("choice", ["openBackup", "startNew", "quit"])
def test_a_damaged_database_offers_the_backup_or_a_new_one_keeping_the_file(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path, choice: str
) -> None:
    path, session_id = make_damaged_database(qtbot, tmp_path, with_backup=True)
    damaged = path.read_bytes()
    options = parse_startup_options(["--data-dir", str(tmp_path)], environ={})

    opening = asyncio.ensure_future(open_manager(options))
    dialog = the_dialog(qtbot)
    assert "is damaged" in dialog.informativeText()
    assert "latest backup is from" in dialog.informativeText()
    qtbot.mouseClick(dialog.findChild(QPushButton, choice), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(opening.done, timeout=10_000)
    manager = opening.result()

    asides = list(tmp_path.glob("chat.db.damaged-*"))
    if choice == "quit":
        assert manager is None
        assert path.read_bytes() == damaged and not asides
        return
    assert manager is not None
    try:
        sessions = run(qtbot, manager.list_sessions())
    finally:
        run(qtbot, manager.close())
    main_files = [a for a in asides if not a.name.endswith(("-wal", "-shm"))]
    assert [a.read_bytes() for a in main_files] == [damaged]
    if choice == "openBackup":
        assert [s.id for s in sessions] == [session_id]
    else:
        assert sessions == []


def test_without_a_backup_only_a_new_database_is_offered(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path
) -> None:
    make_damaged_database(qtbot, tmp_path, with_backup=False)
    options = parse_startup_options(["--data-dir", str(tmp_path)], environ={})
    opening = asyncio.ensure_future(open_manager(options))
    dialog = the_dialog(qtbot)
    assert dialog.backup_button is None
    assert "There is no backup" in dialog.informativeText()
    qtbot.mouseClick(dialog.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(opening.done, timeout=10_000)
    manager = opening.result()
    assert manager is not None
    run(qtbot, manager.close())
