"""Desktop notifications for scheduled runs that finish while the window is not active."""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from chatdesk.domain import Task

NOTIFICATION_MS = 8_000


def run_message(task: Task) -> tuple[str, str]:
    """The title and text that tell how a task's run ended."""
    if task.last_status == "complete":
        return f"“{task.name}” has a new answer", "Open ChatDesk to read it."
    if task.last_status == "error":
        return f"“{task.name}” failed", task.last_note or "The model did not answer."
    return f"“{task.name}” was stopped", "Its reply so far is kept in its chat."


class RunNotifier:
    """Shows a desktop notification through the system tray (``QSystemTrayIcon``).

    Where the desktop has no tray, the window asks for attention in the task bar instead.
    ``shown`` keeps what was sent, newest last.
    """

    def __init__(self, window: QWidget, icon: QIcon) -> None:
        """Notify on behalf of ``window``, with ``icon`` in the tray."""
        self._window = window
        self._tray = QSystemTrayIcon(icon, window)
        self._tray.setToolTip("ChatDesk")
        self._tray.messageClicked.connect(self._bring_window_up)
        self.shown: list[tuple[str, str]] = []

    def notify_run(self, task: Task) -> None:
        """Say that a run of ``task`` finished."""
        title, text = run_message(task)
        self.shown.append((title, text))
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray.show()
            icon = (
                QSystemTrayIcon.MessageIcon.Warning
                if task.last_status == "error"
                else QSystemTrayIcon.MessageIcon.Information
            )
            self._tray.showMessage(title, text, icon, NOTIFICATION_MS)
        else:
            QApplication.alert(self._window)

    def hide(self) -> None:
        """Take the icon out of the tray (the window is closing)."""
        self._tray.hide()

    def _bring_window_up(self) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
