"""The look: a Light, Dark or System palette and the text size, kept in the preferences.

System follows the desktop's colour scheme as Qt reports it (and switches when it does);
Light and Dark are fixed palettes on the Fusion style, which draws every widget from the
palette, so both look whole on any desktop. The text size scales the application font;
the chat and the composer follow it.
Tints drawn over the palette (the user's bubbles, code backgrounds, markers) are mixed
from its colours, so they follow a theme switch as well.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleFactory,
    QStyleOption,
    QToolButton,
    QWidget,
)

THEME_LABELS = {"system": "System", "light": "Light", "dark": "Dark"}
MIN_POINT_SIZE = 7.0
MAX_POINT_SIZE = 28.0
_STEP = 1.0


def dark_palette() -> QPalette:
    """A dark palette with enough contrast for text, links and the selection."""
    palette = QPalette()
    window, base, text = QColor(37, 37, 40), QColor(28, 28, 31), QColor(228, 228, 231)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(44, 44, 48),
        QPalette.ColorRole.ToolTipBase: QColor(50, 50, 54),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(150, 150, 156),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(48, 48, 52),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 110, 110),
        QPalette.ColorRole.Highlight: QColor(64, 128, 214),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 255),
        QPalette.ColorRole.LinkVisited: QColor(180, 150, 255),
        QPalette.ColorRole.Light: QColor(70, 70, 75),
        QPalette.ColorRole.Midlight: QColor(58, 58, 62),
        QPalette.ColorRole.Mid: QColor(80, 80, 86),
        QPalette.ColorRole.Dark: QColor(20, 20, 22),
        QPalette.ColorRole.Shadow: QColor(0, 0, 0),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    muted = QColor(130, 130, 136)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, muted)
    return palette


def light_palette() -> QPalette:
    """The Fusion style's own light palette."""
    style = QStyleFactory.create("Fusion")
    return style.standardPalette() if style is not None else QPalette()


def system_is_dark() -> bool:
    """Whether the desktop asks for a dark colour scheme."""
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def resolved_theme(theme: str) -> str:
    """ "light" or "dark": what ``theme`` means on this desktop now."""
    if theme == "system":
        return "dark" if system_is_dark() else "light"
    return theme if theme in ("light", "dark") else "light"


class FusionStyle(QProxyStyle):
    """Fusion, with frames that show on a dark palette.

    Fusion outlines text boxes and panels a shade darker than the window colour, which
    on the dark theme is all but the window colour itself (the search box had no edge).
    There they are drawn in the palette's Mid colour, the Highlight colour with focus.
    """

    _FRAMES = (QStyle.PrimitiveElement.PE_FrameLineEdit, QStyle.PrimitiveElement.PE_Frame)

    def __init__(self) -> None:
        """Fusion, as the base of every look."""
        super().__init__("Fusion")

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        """Draw ``element``; on a dark palette, frames in colours that stand out."""
        palette = option.palette
        dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
        if element not in self._FRAMES or not dark or option.rect.isEmpty():
            super().drawPrimitive(element, option, painter, widget)
            return
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        role = QPalette.ColorRole.Highlight if focused else QPalette.ColorRole.Mid
        painter.save()
        painter.setPen(palette.color(role))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(option.rect.adjusted(0, 0, -1, -1))
        painter.restore()


def apply_theme(app: QApplication, theme: str) -> None:
    """Colour the whole application for ``theme`` ("system", "light" or "dark")."""
    if not isinstance(app.style(), FusionStyle):
        app.setStyle(FusionStyle())
    app.setPalette(dark_palette() if resolved_theme(theme) == "dark" else light_palette())
    # A widget with a style sheet of its own keeps the palette it was polished with until
    # its sheet is set again (its text stayed dark on the dark theme).
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet)


def apply_point_size(app: QApplication, points: float) -> None:
    """Set the application's text size in points; widgets without a font of their own follow."""
    font = QFont(app.font())
    font.setPointSizeF(clamped(points))
    app.setFont(font)


def clamped(points: float) -> float:
    """``points`` within the sizes text can be set to."""
    return max(MIN_POINT_SIZE, min(MAX_POINT_SIZE, points))


def stepped(points: float, steps: int) -> float:
    """The text size ``steps`` steps bigger (or smaller, when negative) than ``points``."""
    return clamped(points + steps * _STEP)


class FlatButtonFocus(QObject):
    """Flat (auto-raise) tool buttons draw their frame while they have the keyboard focus.

    Fusion draws no focus mark on a flat tool button, so Tab seemed to go nowhere; a
    frame drawn from the palette works in every theme (a style sheet would freeze the
    buttons' palette and break the theme switch).
    """

    def __init__(self, root: QWidget) -> None:
        """Watch every focusable flat tool button under ``root``."""
        super().__init__(root)
        for button in root.findChildren(QToolButton):
            if button.autoRaise() and button.focusPolicy() & Qt.FocusPolicy.TabFocus:
                button.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Raise a button when it gets the focus, flatten it again when it loses it."""
        if isinstance(watched, QToolButton):
            if event.type() == QEvent.Type.FocusIn:
                watched.setAutoRaise(False)
            elif event.type() == QEvent.Type.FocusOut:
                watched.setAutoRaise(True)
        return False


def code_background(palette: QPalette) -> QColor:
    """A code block's background: the text colour faintly over the base, so it suits both
    light and dark palettes."""
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    return mix_colours(base, text, 0.07)


def user_bubble_colour(palette: QPalette) -> QColor:
    """The tint behind the user's messages: the highlight colour thinly over the base."""
    return mix_colours(
        palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Highlight), 0.16
    )


def mix_colours(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    return QColor(
        round(a.red() + (b.red() - a.red()) * amount),
        round(a.green() + (b.green() - a.green()) * amount),
        round(a.blue() + (b.blue() - a.blue()) * amount),
    )
