"""The menu bar's actions with their shortcuts, and the sheet that lists them (F1).

Every action is reachable from the keyboard and named in one place, so the menus, the
shortcuts and the shortcuts sheet never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chatdesk.presets import ChatPreset
from chatdesk.settings import THEMES
from chatdesk.ui.message_actions import MESSAGE_KEYS
from chatdesk.ui.theme import THEME_LABELS

# Shown in the sheet, though no QAction owns them (the widget handles the key itself).
WIDGET_KEYS = (
    ("Chat", "Send the message", "Enter"),
    ("Chat", "New line in the message", "Shift+Enter"),
    ("Chat", "Edit your last message (in an empty message box)", "Up"),
    ("Chat", "Scroll the chat by a page", "PgUp / PgDown"),
    ("Chats", "Rename or delete the selected chat in the list", "F2 / Delete"),
    ("Chats", "Clear the chat filter", "Esc"),
)


class WindowCommands(Protocol):
    """What the menu bar's actions call on the window."""

    def new_session(self) -> None: ...
    def presets(self) -> list[ChatPreset]: ...
    def new_chat_from_preset(self, preset: ChatPreset) -> object: ...
    def open_settings(self) -> object: ...
    def open_chat_settings(self) -> object: ...
    def rename_current(self) -> None: ...
    def delete_current(self) -> None: ...
    def stop_current(self) -> None: ...
    def regenerate_reply(self) -> None: ...
    def edit_last_message(self) -> None: ...
    def copy_last_reply(self) -> None: ...
    def set_theme(self, theme: str) -> None: ...
    def change_text_size(self, steps: int) -> None: ...
    def focus_chat_list(self) -> None: ...
    def focus_composer(self) -> None: ...
    def focus_messages(self) -> None: ...
    def show_shortcuts(self) -> object: ...
    def close(self) -> bool: ...


@dataclass
class WindowActions:
    """The window's actions by name, and the menus they are in (in order)."""

    by_name: dict[str, QAction] = field(default_factory=dict)
    menus: list[tuple[str, list[QAction]]] = field(default_factory=list)
    themes: dict[str, QAction] = field(default_factory=dict)
    preset_menu: QMenu | None = None


def build_menus(window: QMainWindow, commands: WindowCommands) -> WindowActions:
    """Fill ``window``'s menu bar; the actions work window-wide through their shortcuts."""
    found = WindowActions()
    bar = window.menuBar()

    def menu(title: str) -> QMenu:
        added = bar.addMenu(title)
        found.menus.append((title.replace("&", ""), []))
        return added

    def action(
        into: QMenu,
        name: str,
        text: str,
        slot: Callable[[], object],
        *keys: QKeySequence | QKeySequence.StandardKey | str,
    ) -> QAction:
        made = QAction(text, window)
        made.setObjectName(name)
        sequences = [QKeySequence(k) for k in keys]
        if sequences:
            made.setShortcuts(sequences)
        made.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        made.triggered.connect(lambda _checked=False: slot())
        into.addAction(made)
        found.by_name[name] = made
        found.menus[-1][1].append(made)
        return made

    file = menu("&File")
    action(file, "newChatAction", "&New Chat", commands.new_session, QKeySequence.StandardKey.New)
    from_preset = file.addMenu("New Chat from &Preset")
    from_preset.setObjectName("newChatFromPresetMenu")

    def list_presets() -> None:
        # Filled when opened: presets saved in Chat Settings show up at once.
        from_preset.clear()
        for preset in commands.presets():
            entry = from_preset.addAction(preset.name)
            entry.triggered.connect(
                lambda _checked=False, p=preset: commands.new_chat_from_preset(p)
            )

    from_preset.aboutToShow.connect(list_presets)
    found.preset_menu = from_preset
    file.addSeparator()
    action(file, "settingsAction", "&Settings…", commands.open_settings, "Ctrl+,")
    file.addSeparator()
    action(file, "quitAction", "&Quit", commands.close, "Ctrl+Q")

    chat = menu("&Chat")
    action(chat, "chatSettingsAction", "Chat &Settings…", commands.open_chat_settings, "Ctrl+;")
    action(chat, "renameChatAction", "&Rename Chat", commands.rename_current, "F2")
    action(chat, "deleteChatAction", "&Delete Chat…", commands.delete_current, "Ctrl+Shift+Del")
    chat.addSeparator()
    action(chat, "stopAction", "S&top Reply", commands.stop_current, "Esc")
    regenerate = action(
        chat, "regenerateAction", "Re&generate Reply", commands.regenerate_reply, "Ctrl+R"
    )
    regenerate.setStatusTip("Regenerate the last reply (in the chat: if it is the current one)")
    edit = action(chat, "editLastAction", "&Edit Message", commands.edit_last_message, "Ctrl+E")
    edit.setStatusTip("Edit your last message (in the chat: the current one, if yours)")
    action(chat, "copyReplyAction", "&Copy Last Reply", commands.copy_last_reply, "Ctrl+Shift+C")

    view = menu("&View")
    theme_menu = view.addMenu("&Theme")
    group = QActionGroup(window)
    for theme in THEMES:
        choice = QAction(THEME_LABELS[theme], window)
        choice.setObjectName(f"{theme}ThemeAction")
        choice.setCheckable(True)
        choice.triggered.connect(lambda _checked=False, t=theme: commands.set_theme(t))
        group.addAction(choice)
        theme_menu.addAction(choice)
        found.themes[theme] = choice
    view.addSeparator()
    action(
        view,
        "largerTextAction",
        "&Larger Text",
        lambda: commands.change_text_size(1),
        "Ctrl+=",
        "Ctrl++",
    )
    action(
        view, "smallerTextAction", "&Smaller Text", lambda: commands.change_text_size(-1), "Ctrl+-"
    )
    action(
        view,
        "normalTextAction",
        "&Normal Text Size",
        lambda: commands.change_text_size(0),
        "Ctrl+0",
    )
    view.addSeparator()
    action(view, "focusListAction", "Go to Chat &List", commands.focus_chat_list, "Ctrl+L")
    action(view, "focusComposerAction", "Go to &Message Box", commands.focus_composer, "Ctrl+K")
    action(view, "focusMessagesAction", "Go to the Messa&ges", commands.focus_messages, "Ctrl+J")

    help_menu = menu("&Help")
    action(
        help_menu, "shortcutsAction", "&Keyboard Shortcuts", commands.show_shortcuts, "F1", "Ctrl+/"
    )
    return found


class ShortcutsSheet(QDialog):
    """Every action and key of the window in one table, by menu."""

    def __init__(self, actions: WindowActions, parent: QWidget | None = None) -> None:
        """List ``actions`` (menu, action, keys) and the keys widgets handle themselves."""
        super().__init__(parent)
        self.setObjectName("shortcutsSheet")
        self.setWindowTitle("Keyboard Shortcuts")
        rows: list[tuple[str, str, str]] = []
        for menu_title, menu_actions in actions.menus:
            for found in menu_actions:
                keys = " / ".join(
                    s.toString(QKeySequence.SequenceFormat.NativeText) for s in found.shortcuts()
                )
                if keys:
                    # The status tip says more than the menu's short text where it differs.
                    what = found.statusTip() or found.text().replace("&", "")
                    rows.append((menu_title, what, keys))
        rows += list(WIDGET_KEYS) + list(MESSAGE_KEYS)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setObjectName("shortcutsTable")
        self.table.setHorizontalHeaderLabels(["Where", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        width = sum(self.table.columnWidth(c) for c in range(3)) + 60
        rows_height = self.table.verticalHeader().defaultSectionSize() * len(rows)
        self.resize(max(560, width), min(820, rows_height + 110))

    def rows(self) -> list[tuple[str, str, str]]:
        """The table's rows as (where, action, keys)."""
        found = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c) for c in range(3)]
            texts = [cell.text() if cell is not None else "" for cell in cells]
            found.append((texts[0], texts[1], texts[2]))
        return found
