"""Where the window was: its geometry and splitter sizes, kept in the preferences."""

from __future__ import annotations

import base64
from typing import Any

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtWidgets import QMainWindow, QSplitter

DEFAULT_SIZE = QSize(1100, 720)
SIDEBAR_WIDTH = 270


def remember_layout(window: QMainWindow, splitter: QSplitter, state: dict[str, Any]) -> None:
    """Put the window's geometry and the splitter's sizes into ``state``."""
    state["geometry"] = base64.b64encode(bytes(window.saveGeometry().data())).decode("ascii")
    state["splitter"] = splitter.sizes()


def restore_layout(window: QMainWindow, splitter: QSplitter, state: dict[str, Any]) -> None:
    """Give the window the geometry and splitter sizes in ``state``, or sensible defaults."""
    restored = False
    geometry = state.get("geometry")
    if isinstance(geometry, str):
        try:
            restored = window.restoreGeometry(QByteArray(base64.b64decode(geometry)))
        except ValueError:
            restored = False
    if not restored:
        window.resize(DEFAULT_SIZE)
    sizes = state.get("splitter")
    if isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) for s in sizes):
        splitter.setSizes(sizes)
    else:
        splitter.setSizes([SIDEBAR_WIDTH, window.width() - SIDEBAR_WIDTH])
