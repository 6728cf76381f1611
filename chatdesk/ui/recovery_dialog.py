"""The dialog shown when the database cannot be used at start-up: what is wrong, and the
ways on (open the latest backup, or start a new database with the damaged file kept)."""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget


class RecoveryChoice(enum.Enum):
    """What the user chose to do about a damaged database."""

    OPEN_BACKUP = "open-backup"
    START_NEW = "start-new"
    QUIT = "quit"


class DamagedDatabaseDialog(QMessageBox):
    """Says what is wrong with the database and offers the ways on as buttons."""

    def __init__(self, problem: str, backup: Path | None, parent: QWidget | None = None) -> None:
        """``backup`` is the newest backup copy, or None when there is none."""
        super().__init__(parent)
        self.setObjectName("damagedDatabaseDialog")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("ChatDesk cannot open its database")
        self.setText("Your chat database cannot be opened.")
        details = [problem, ""]
        if backup is not None:
            when = datetime.fromtimestamp(backup.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
            details.append(f"The latest backup is from {when} ({backup.name}).")
        else:
            details.append("There is no backup of it.")
        details.append(
            "Either way, the damaged file is kept next to it (renamed), so nothing is deleted."
        )
        self.setInformativeText("\n".join(details))
        self.choice = RecoveryChoice.QUIT
        self.backup_button: QPushButton | None = None
        if backup is not None:
            self.backup_button = self.addButton(
                "Open the latest backup", QMessageBox.ButtonRole.AcceptRole
            )
            self.backup_button.setObjectName("openBackup")
        self.new_button = self.addButton(
            "Start a new database", QMessageBox.ButtonRole.DestructiveRole
        )
        self.new_button.setObjectName("startNew")
        self.quit_button = self.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
        self.quit_button.setObjectName("quit")
        self.setDefaultButton(self.backup_button or self.quit_button)
        self.setEscapeButton(self.quit_button)
        self.buttonClicked.connect(self._remember)

    def _remember(self, button: object) -> None:
        if button is self.backup_button:
            self.choice = RecoveryChoice.OPEN_BACKUP
        elif button is self.new_button:
            self.choice = RecoveryChoice.START_NEW
        else:
            self.choice = RecoveryChoice.QUIT


async def ask_recovery(problem: str, backup: Path | None) -> RecoveryChoice:
    """Show the dialog (without blocking the event loop) and return the user's choice."""
    dialog = DamagedDatabaseDialog(problem, backup)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished(_result: int) -> None:
        if not done.done():
            done.set_result(None)

    dialog.finished.connect(finished)
    dialog.open()
    try:
        await done
        return dialog.choice
    finally:
        dialog.deleteLater()
