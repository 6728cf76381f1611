"""Keyboard-only use, the menu bar, the shortcuts sheet, themes and text size, and the
per-chat settings dialog."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QAbstractItemView, QApplication, QToolButton
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message
from chatdesk.ui.chat_settings_dialog import ChatSettingsDialog
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.theme import apply_theme
from chatdesk.ui.window_actions import ShortcutsSheet
from tests.ui.harness import Harness, run, wait_for


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    task = window.send_text(text)
    assert task is not None
    wait_for(qtbot, task.done)


def shortcut_of(window: MainWindow, name: str) -> list[str]:
    return [s.toString() for s in window.menu_actions.by_name[name].shortcuts()]


def test_a_clicked_chat_keeps_the_focus_so_f2_and_delete_work(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window()
    send(qtbot, window, "First chat")
    window.new_session()
    wait_for(qtbot, lambda: window.sidebar.model.rowCount() == 2)
    first_row = window.sidebar.proxy.index(1, 0)
    target = window.sidebar.proxy.data(first_row)
    rect = window.sidebar.list.visualRect(first_row)
    qtbot.mouseClick(window.sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_for(qtbot, lambda: window.pane.title.text() == target)
    assert window.focusWidget() is window.sidebar.list
    # F2 renames and Delete deletes the chat just clicked.
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_F2)
    assert window.sidebar.list.state() == QAbstractItemView.State.EditingState
    qtbot.keyClick(QApplication.focusWidget() or window.sidebar.list, Qt.Key.Key_Escape)
    clicked = window.sidebar.current_session_id()  # the row clicked (both are "New chat")
    assert clicked is not None
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Delete)
    # Delete moves the chat to the Trash at once, with Undo (nothing is lost).
    wait_for(qtbot, lambda: window.sidebar.model.row_of(clicked) is None)
    wait_for(qtbot, window.findkeep.undo.isVisible)
    assert target in window.findkeep.undo.text.text()
    window.sidebar.list.setFocus()
    # Typing in the list writes the message instead.
    qtbot.keyClicks(window.sidebar.list, "hi")
    assert window.composer.text() == "hi"


def test_every_command_has_a_menu_entry_and_shortcut(harness: Harness) -> None:
    window = harness.window()
    expected = {
        "newChatAction": "Ctrl+N",
        "quitAction": "Ctrl+Q",
        "stopAction": "Esc",
        "renameChatAction": "F2",
        "regenerateAction": "Ctrl+R",
        "editLastAction": "Ctrl+E",
        "copyReplyAction": "Ctrl+Shift+C",
        "largerTextAction": "Ctrl+=",
        "smallerTextAction": "Ctrl+-",
        "shortcutsAction": "F1",
    }
    for name, key in expected.items():
        assert key in shortcut_of(window, name), name
    assert "Ctrl+/" in shortcut_of(window, "shortcutsAction")
    assert [title for title, _ in window.menu_actions.menus] == ["File", "Chat", "View", "Help"]


def test_quit_closes_the_window(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    window.menu_actions.by_name["quitAction"].trigger()
    wait_for(qtbot, lambda: not window.isVisible())


def test_escape_stops_a_reply_anywhere_in_the_window(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.reply = " ".join(f"word{i}" for i in range(200))
    openai_server.chunk_delay = 0.02
    window = harness.window()
    stop = window.menu_actions.by_name["stopAction"]
    assert not stop.isEnabled()  # Esc is left to the widgets while nothing streams
    task = window.send_text("Talk for a while")
    assert task is not None
    session = window.chat.current
    assert session is not None
    wait_for(
        qtbot,
        lambda: (
            stop.isEnabled()
            and session.history[-1:][0:1] != []
            and session.history[-1].role == "assistant"
        ),
    )
    stop.trigger()
    wait_for(qtbot, task.done)
    assert session.history[-1].status == "cancelled"


def test_keyboard_reaches_copy_edit_and_regenerate(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    openai_server.reply = "The answer."
    send(qtbot, window, "The question")
    window.menu_actions.by_name["copyReplyAction"].trigger()
    assert QGuiApplication.clipboard().text() == "The answer."
    # Up in the empty message box edits the last message.
    window.composer.edit.setFocus()
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Up)
    assert window.composer.editing_message_id is not None
    assert window.composer.text() == "The question"
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Escape)
    assert window.composer.editing_message_id is None
    openai_server.reply = "Another answer."
    window.menu_actions.by_name["regenerateAction"].trigger()
    session = window.chat.current
    assert session is not None
    wait_for(qtbot, lambda: session.version_of(1) == (2, 2) and not window.chat._turns)


def test_page_up_in_the_message_box_scrolls_the_chat(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session = window.chat.current
    assert session is not None
    messages = [
        Message.create("user" if i % 2 == 0 else "assistant", f"Message {i}\n\nwith two lines")
        for i in range(40)
    ]
    run(qtbot, window.manager.replace_messages(session.id, messages))
    window.chat_view.scroll_to_newest()
    bar = window.chat_view.verticalScrollBar()
    wait_for(qtbot, lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bottom = bar.value()
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_PageUp)
    assert bar.value() < bottom
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_PageDown)
    assert bar.value() == bottom


def test_a_focused_tool_button_shows_a_focus_ring(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    button = window.findChild(QToolButton, "attachButton")
    window.composer.edit.setFocus()
    qtbot.wait(20)
    unfocused = button.grab().toImage()
    button.setFocus()
    qtbot.wait(20)
    assert window.focusWidget() is button
    assert button.grab().toImage() != unfocused


def test_the_shortcuts_sheet_lists_every_shortcut(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    sheet = window.show_shortcuts()
    assert isinstance(sheet, ShortcutsSheet)
    rows = sheet.rows()
    assert ("File", "Quit", "Ctrl+Q") in rows
    assert ("Help", "Keyboard Shortcuts", "F1 / Ctrl+/") in rows
    assert any(keys == "Up" for _, _, keys in rows)
    sheet.close()


def test_dark_theme_and_text_size_apply_and_are_remembered(
    harness: Harness, qtbot: QtBot, qapp: QApplication
) -> None:
    window = harness.window()
    light_base = qapp.palette().color(QPalette.ColorRole.Base)
    try:
        window.menu_actions.themes["dark"].trigger()
        assert qapp.palette().color(QPalette.ColorRole.Base).lightnessF() < 0.3
        renderer = window.chat_view.renderer
        wait_for(qtbot, lambda: renderer.palette.color(QPalette.ColorRole.Base).lightnessF() < 0.3)
        # A widget with a style sheet of its own (the context meter) follows too.
        meter = window.pane.context_meter
        wait_for(
            qtbot,
            lambda: meter.palette().color(QPalette.ColorRole.ButtonText).lightnessF() > 0.7,
        )
        # Widgets that set one colour of their own follow the switch too.
        sidebar_list = window.sidebar.list
        wait_for(
            qtbot,
            lambda: sidebar_list.palette().color(QPalette.ColorRole.Base).lightnessF() < 0.3,
        )
        assert window.preferences.theme == "dark"
        before = qapp.font().pointSizeF()
        window.menu_actions.by_name["largerTextAction"].trigger()
        assert qapp.font().pointSizeF() == before + 1
        assert window.chat_view.renderer.font.pointSizeF() >= before + 1
        assert (
            window.composer.edit.font().pointSizeF() == window.chat_view.renderer.font.pointSizeF()
        )
        window.menu_actions.by_name["normalTextAction"].trigger()
        assert qapp.font().pointSizeF() == before
    finally:
        window.set_theme("light")
        window.change_text_size(0)
        apply_theme(qapp, "light")
    assert (
        qapp.palette().color(QPalette.ColorRole.Base).lightnessF() >= light_base.lightnessF() - 0.2
    )


def test_chat_settings_are_stored_with_the_chat(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    dialog = window.open_chat_settings()
    assert isinstance(dialog, ChatSettingsDialog)
    code_helper = dialog.presets.findText("Code helper")
    dialog.presets.setCurrentIndex(code_helper)
    dialog.presets.activated.emit(code_helper)
    assert "programming" in dialog.system_prompt.toPlainText()
    dialog.default_max_tokens.setChecked(False)
    dialog.max_tokens.setValue(300)
    dialog.save_preset_named("My coder")
    assert any(p.name == "My coder" for p in window.preferences.chat_presets())
    dialog.accept()
    session = window.chat.current
    assert session is not None
    wait_for(qtbot, lambda: session.max_tokens == 300)
    assert session.temperature == 0.2
    send(qtbot, window, "Write hello world")
    request = openai_server.requests[-1]
    assert request["max_tokens"] == 300 and request["temperature"] == 0.2
    assert request["messages"][0]["role"] == "system"


def test_the_chat_header_opens_the_chat_settings(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    button = window.pane.chat_settings_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    wait_for(qtbot, lambda: window.findChild(ChatSettingsDialog) is not None)
    window.findChild(ChatSettingsDialog).reject()


def test_a_new_chat_starts_from_a_preset(harness: Harness, openai_server, qtbot: QtBot) -> None:
    window = harness.window()
    send(qtbot, window, "An earlier chat")
    first = window.chat.current
    menu = window.menu_actions.preset_menu
    assert menu is not None
    menu.aboutToShow.emit()
    names = [a.text() for a in menu.actions()]
    assert "Code helper" in names
    menu.actions()[names.index("Code helper")].trigger()
    wait_for(
        qtbot,
        lambda: (
            window.chat.current is not first
            and window.chat.current is not None
            and window.chat.current.temperature == 0.2
        ),
    )
    session = window.chat.current
    assert session is not None and "programming" in (session.system_prompt or "")
    send(qtbot, window, "Hello")
    assert openai_server.requests[-1]["messages"][0]["role"] == "system"
