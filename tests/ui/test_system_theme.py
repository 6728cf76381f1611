"""The System look follows the desktop when it switches between light and dark while
ChatDesk runs; a chosen Light or Dark look does not."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from chatdesk.ui import theme
from tests.ui.harness import Harness, wait_for


def base_is_dark(app: QApplication) -> bool:
    return app.palette().color(QPalette.ColorRole.Base).lightnessF() < 0.3


def test_the_system_look_follows_a_live_switch_of_the_desktop(
    harness: Harness, qtbot: QtBot, qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The desktop's scheme is the one part that cannot change here (no desktop runs under
    # the offscreen platform): what Qt would report is set, its signal is sent as Qt would.
    desktop = {"dark": False}
    monkeypatch.setattr(theme, "system_is_dark", lambda: desktop["dark"])
    hints = QGuiApplication.styleHints()
    window = harness.window()
    try:
        window.set_theme("system")
        assert not base_is_dark(qapp)
        desktop["dark"] = True
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        wait_for(qtbot, lambda: base_is_dark(qapp))
        renderer = window.chat_view.renderer
        wait_for(qtbot, lambda: renderer.palette.color(QPalette.ColorRole.Base).lightnessF() < 0.3)
        desktop["dark"] = False
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        wait_for(qtbot, lambda: not base_is_dark(qapp))

        # A look of its own is kept whatever the desktop does.
        window.set_theme("light")
        desktop["dark"] = True
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        qtbot.wait(50)
        assert not base_is_dark(qapp)
        assert window.preferences.theme == "light"
    finally:
        desktop["dark"] = False
        window.set_theme("light")
        theme.apply_theme(qapp, "light")


def test_the_message_box_has_a_visible_border_on_the_dark_theme(
    harness: Harness, qapp: QApplication, qtbot: QtBot
) -> None:
    window = harness.window()
    try:
        window.set_theme("dark")
        composer = window.composer
        wait_for(qtbot, lambda: composer.palette().color(QPalette.ColorRole.Base).lightness() < 60)
        image = composer.grab().toImage()
        border = image.pixelColor(composer.width() // 2, 0)
        inside = image.pixelColor(composer.width() // 2, 3)
        # Fusion's panel frame was a shade of the dark window colour: no border to see.
        assert abs(border.lightness() - inside.lightness()) >= 25
    finally:
        window.set_theme("light")
        theme.apply_theme(qapp, "light")


def test_text_boxes_keep_a_visible_edge_on_the_dark_theme(
    harness: Harness, qapp: QApplication, qtbot: QtBot
) -> None:
    window = harness.window()
    try:
        window.set_theme("dark")
        search = window.sidebar.filter
        wait_for(qtbot, lambda: search.palette().color(QPalette.ColorRole.Base).lightness() < 60)
        image = search.grab().toImage()
        edge = image.pixelColor(search.width() // 2, 0)
        inside = image.pixelColor(search.width() // 2, search.height() // 2)
        # Fusion's own edge is a shade darker than the dark window: nothing to see.
        assert abs(edge.lightness() - inside.lightness()) >= 25
    finally:
        window.set_theme("light")
        theme.apply_theme(qapp, "light")
