"""The window's look as the user sets it: the theme and the text size, kept in preferences.

:mod:`chatdesk.ui.theme` knows how to colour and size the application; this applies what
the preferences say, when the user changes it (View menu) and when the desktop switches
between light and dark while the theme is System. The View menu's theme entries show
which one is in use.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication

from chatdesk.settings import Preferences
from chatdesk.ui.composer import Composer
from chatdesk.ui.theme import apply_point_size, apply_theme, clamped, stepped


class LookController(QObject):
    """Applies the preferred theme and text size to the application."""

    def __init__(
        self,
        preferences: Preferences,
        composer: Composer,
        theme_actions: dict[str, QAction],
        parent: QObject,
    ) -> None:
        """Follow ``preferences``; ``theme_actions`` (by theme name) show the one in use."""
        super().__init__(parent)
        self._preferences = preferences
        self._composer = composer
        self._theme_actions = theme_actions
        # The application's own text size, read when the look is first applied.
        self._normal_point_size: float | None = None
        # "System" follows the desktop when it switches between light and dark.
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._follow_system_scheme)

    def set_theme(self, theme: str) -> None:
        """Use the Light, Dark or System look from now on (and remember it)."""
        self._preferences.theme = theme
        self.apply()

    def change_text_size(self, steps: int) -> None:
        """Make text ``steps`` steps larger (smaller when negative; 0: the normal size)."""
        points = self._preferences.text_size
        normal = self._normal_point_size
        self._preferences.text_size = (
            None if steps == 0 else stepped(points or normal or 0.0, steps)
        )
        self.apply()

    def apply(self) -> None:
        """Colour and size the application as the preferences say."""
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        if self._normal_point_size is None:
            self._normal_point_size = app.font().pointSizeF()
        theme, points = self._preferences.theme, self._preferences.text_size
        apply_theme(app, theme)
        apply_point_size(app, clamped(points) if points else self._normal_point_size)
        self._composer.follow_font(app.font())
        for name, action in self._theme_actions.items():
            action.setChecked(name == theme)

    def _follow_system_scheme(self, _scheme: object) -> None:
        if shiboken6.isValid(self) and self._preferences.theme == "system":
            self.apply()
