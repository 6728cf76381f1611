"""The yardstick for ChatDesk's start-up: a bare PySide6 window with a 1,000-row list.

Run as a process by ``bench/bench_startup.py``; prints ``first-paint <unix time>`` once the
window has painted, then quits, exactly as ChatDesk does under
``CHATDESK_EXIT_AFTER_FIRST_PAINT=1``.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QEvent, QObject, QStringListModel, QTimer
from PySide6.QtWidgets import QApplication, QListView, QMainWindow

ROWS = 1_000


class _FirstPaint(QObject):
    """Reports the first paint of any widget, once that paint pass is over."""

    def __init__(self, app: QApplication) -> None:
        super().__init__()
        self._app = app
        self._done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._done and event.type() == QEvent.Type.Paint:
            self._done = True
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        print(f"first-paint {time.time():.6f}", flush=True)
        self._app.quit()


def main() -> int:
    """Show the window and run until its first paint."""
    app = QApplication(sys.argv[:1])
    reporter = _FirstPaint(app)
    app.installEventFilter(reporter)
    window = QMainWindow()
    view = QListView(window)
    view.setModel(QStringListModel([f"Chat {n}" for n in range(ROWS)], view))
    window.setCentralWidget(view)
    window.resize(1000, 700)
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
