"""Render the app icon ``resources/icons/chatdesk.svg`` into PNGs of every size we ship.

Writes ``resources/icons/chatdesk-<size>.png`` for each size in SIZES: the window uses
those up to 128 px (see ``chatdesk.app.WINDOW_ICON_SIZES``), the desktop entry all of them.

Usage: ``.venv/bin/python scripts/render_icons.py`` (needs no display).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
SOURCE = ICON_DIR / "chatdesk.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def render(renderer: object, size: int) -> object:
    """The icon drawn at ``size`` x ``size`` pixels on a transparent background."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))  # type: ignore[attr-defined]
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def main() -> int:
    """Render every size; the exit code."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"cannot read {SOURCE}", file=sys.stderr)
        return 1
    for size in SIZES:
        image = render(renderer, size)
        target = ICON_DIR / f"chatdesk-{size}.png"
        if not image.save(str(target), "PNG"):  # type: ignore[attr-defined]
            print(f"cannot write {target}", file=sys.stderr)
            return 1
        print(f"wrote {target.relative_to(ICON_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
