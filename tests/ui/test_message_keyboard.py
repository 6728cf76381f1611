"""Every message's actions from the keyboard: the chat is one Tab stop whose current
message (ringed) is chosen with Up/Down and acted on with direct keys or its menu."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, Qt, QUrl, Slot
from PySide6.QtGui import QContextMenuEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QMenu
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.message_model import MessageRole
from chatdesk.ui.message_widget import MessageWidget
from tests.ui.harness import Harness, run, wait_for


def chat_of_three(qtbot: QtBot, window: MainWindow, openai_server) -> None:
    """Three questions and their answers: rows 0-5, the last one a reply."""
    for number in ("one", "two", "three"):
        openai_server.reply = f"Answer {number}."
        task = window.send_text(f"Question {number}")
        assert task is not None
        wait_for(qtbot, task.done)
    wait_for(qtbot, lambda: window.chat_view.model().rowCount() == 6)


def tab_into_the_chat(qtbot: QtBot, window: MainWindow) -> None:
    """Press Tab from the message box until the chat has the focus (as a user would)."""
    window.composer.edit.setFocus()
    wait_for(qtbot, lambda: QApplication.focusWidget() is window.composer.edit)
    for _ in range(40):
        if QApplication.focusWidget() is window.chat_view:
            return
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    raise AssertionError("Tab never reached the chat")


def key(
    qtbot: QtBot,
    window: MainWindow,
    pressed: Qt.Key,
    modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press ``pressed`` where the keyboard focus is, as a user would."""
    qtbot.keyClick(QApplication.focusWidget() or window, pressed, modifier)


def current_text(window: MainWindow) -> str:
    return window.chat_view.currentIndex().data()


def widget_of(window: MainWindow, row: int) -> MessageWidget:
    widget = window.chat_view.indexWidget(window.chat_view.model().index(row, 0))
    assert isinstance(widget, MessageWidget)
    return widget


def shown_version(window: MainWindow, row: int) -> str | None:
    widget = window.chat_view.indexWidget(window.chat_view.model().index(row, 0))
    if not isinstance(widget, MessageWidget):
        return None
    return widget.findChild(QLabel, "versionLabel").text()


def test_tab_reaches_the_chat_and_e_edits_an_earlier_message(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    tab_into_the_chat(qtbot, window)
    assert current_text(window) == "Answer three."  # the newest message in view
    for _ in range(3):
        key(qtbot, window, Qt.Key.Key_Up)
    assert current_text(window) == "Question two"
    key(qtbot, window, Qt.Key.Key_E)
    composer = window.composer
    assert QApplication.focusWidget() is composer.edit
    assert composer.text() == "Question two"
    assert composer.editing_message_id == window.chat_view.currentIndex().data(MessageRole).id
    key(qtbot, window, Qt.Key.Key_End)
    qtbot.keyClicks(composer.edit, ", said better")
    openai_server.reply = "A better answer."
    key(qtbot, window, Qt.Key.Key_Return)
    session = window.chat.current
    assert session is not None
    wait_for(qtbot, lambda: session.history[-1].content == "A better answer.")
    assert [m.content for m in session.history] == [
        "Question one",
        "Answer one.",
        "Question two, said better",
        "A better answer.",
    ]


def test_ctrl_c_copies_an_earlier_reply(harness: Harness, openai_server, qtbot: QtBot) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    QGuiApplication.clipboard().clear()
    tab_into_the_chat(qtbot, window)
    key(qtbot, window, Qt.Key.Key_Home)
    key(qtbot, window, Qt.Key.Key_Down)
    assert current_text(window) == "Answer one."
    key(qtbot, window, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "Answer one."
    # The same through the message's menu (Enter opens it, C is Copy's mnemonic).
    key(qtbot, window, Qt.Key.Key_Down)
    key(qtbot, window, Qt.Key.Key_Down)
    assert current_text(window) == "Answer two."
    key(qtbot, window, Qt.Key.Key_Return)
    menu = window.chat_view.keyboard.menu
    assert isinstance(menu, QMenu)
    wait_for(qtbot, menu.isVisible)
    names = [a.text().replace("&", "") for a in menu.actions()]
    assert names == ["Copy", "Branch from Here"]  # an earlier reply: no Edit, no Regenerate
    qtbot.keyClick(menu, Qt.Key.Key_C)
    wait_for(qtbot, lambda: not menu.isVisible())
    assert QGuiApplication.clipboard().text() == "Answer two."


def test_regenerate_and_versions_from_the_keyboard_as_the_buttons_allow(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    session = window.chat.current
    assert session is not None
    window.focus_messages()
    # An earlier reply has no Regenerate button, so R does nothing there either.
    key(qtbot, window, Qt.Key.Key_Up)
    key(qtbot, window, Qt.Key.Key_Up)
    assert current_text(window) == "Answer two."
    key(qtbot, window, Qt.Key.Key_R)
    assert not window.chat._turns
    # The last reply has one.
    key(qtbot, window, Qt.Key.Key_End)
    openai_server.reply = "Answer three, again."
    key(qtbot, window, Qt.Key.Key_R)
    wait_for(qtbot, lambda: session.version_of(5) == (2, 2) and not window.chat._turns)
    assert session.history[-1].content == "Answer three, again."
    # Left and Right show the other versions, as the arrows under the reply do.
    window.focus_messages()
    key(qtbot, window, Qt.Key.Key_End)
    key(qtbot, window, Qt.Key.Key_Left)
    wait_for(qtbot, lambda: session.history[-1].content == "Answer three.")
    # Once the reply shows "1/2", its › arrow (and so Right) goes to the next version
    wait_for(qtbot, lambda: shown_version(window, 5) == "1/2")
    # (and the switch has finished: the chat takes no other until then)
    wait_for(qtbot, lambda: not window.chat.is_streaming(session.id))
    key(qtbot, window, Qt.Key.Key_End)
    key(qtbot, window, Qt.Key.Key_Right)
    wait_for(qtbot, lambda: session.history[-1].content == "Answer three, again.")


def test_the_current_message_is_ringed_while_the_chat_has_the_focus(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    view = window.chat_view
    tab_into_the_chat(qtbot, window)
    assert widget_of(window, 5).is_current()
    ringed = widget_of(window, 5).grab().toImage()
    key(qtbot, window, Qt.Key.Key_Up)
    assert widget_of(window, 4).is_current() and not widget_of(window, 5).is_current()
    assert widget_of(window, 5).grab().toImage() != ringed
    # Esc goes back to the message box, and the ring goes with the focus.
    key(qtbot, window, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is window.composer.edit
    assert not any(w.is_current() for w in view.message_widgets())


def test_ctrl_e_in_the_chat_edits_the_current_message_and_from_the_box_the_last(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    composer = window.composer
    tab_into_the_chat(qtbot, window)
    # A reply is current: it has no Edit button, so the menu's Ctrl+E does nothing either.
    key(qtbot, window, Qt.Key.Key_Up)
    key(qtbot, window, Qt.Key.Key_Up)
    assert current_text(window) == "Answer two."
    key(qtbot, window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert composer.editing_message_id is None and composer.text() == ""
    assert QApplication.focusWidget() is window.chat_view
    # An earlier message of the user's is current: Ctrl+E edits that one, as E does.
    key(qtbot, window, Qt.Key.Key_Up)
    assert current_text(window) == "Question two"
    earlier = window.chat_view.currentIndex().data(MessageRole).id
    key(qtbot, window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is composer.edit
    assert composer.text() == "Question two"
    assert composer.editing_message_id == earlier
    composer.cancel_edit()
    # From the message box (the chat's current message is still the earlier one),
    # Ctrl+E keeps its meaning: the user's last message.
    assert current_text(window) == "Question two"
    composer.edit.setFocus()
    wait_for(qtbot, lambda: QApplication.focusWidget() is composer.edit)
    key(qtbot, window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert composer.text() == "Question three"
    session = window.chat.current
    assert session is not None
    assert composer.editing_message_id == session.history[4].id


def test_ctrl_r_in_the_chat_regenerates_only_where_the_button_would(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    session = window.chat.current
    assert session is not None
    asked = len(openai_server.requests)
    tab_into_the_chat(qtbot, window)
    key(qtbot, window, Qt.Key.Key_Up)
    key(qtbot, window, Qt.Key.Key_Up)
    assert current_text(window) == "Answer two."
    # An earlier reply offers no Regenerate: Ctrl+R leaves the chat as it is.
    openai_server.reply = "Not asked for."
    key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert not window.chat._turns
    qtbot.wait(200)  # a turn started by mistake would have asked the server by now
    assert len(openai_server.requests) == asked
    assert [m.content for m in session.history][-1] == "Answer three."
    assert session.version_of(5) == (1, 1)
    # The last reply current: Ctrl+R regenerates it through its own button.
    key(qtbot, window, Qt.Key.Key_End)
    openai_server.reply = "Answer three, again."
    key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: session.version_of(5) == (2, 2) and not window.chat._turns)
    assert session.history[-1].content == "Answer three, again."
    # From the message box it regenerates the last reply, whatever the chat's current one.
    window.focus_messages()
    key(qtbot, window, Qt.Key.Key_Home)
    window.focus_composer()
    wait_for(qtbot, lambda: QApplication.focusWidget() is window.composer.edit)
    openai_server.reply = "Answer three, third."
    key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: session.version_of(5) == (3, 3) and not window.chat._turns)
    assert session.history[-1].content == "Answer three, third."


def test_right_click_on_a_message_opens_its_menu(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    chat_of_three(qtbot, window, openai_server)
    widget = widget_of(window, 2)
    point = QPoint(widget.width() - 60, 12)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, widget.mapToGlobal(point))
    QApplication.sendEvent(widget, event)
    menu = window.chat_view.keyboard.menu
    assert isinstance(menu, QMenu)
    wait_for(qtbot, menu.isVisible)
    assert [a.text().replace("&", "") for a in menu.actions()] == [
        "Copy",
        "Edit",
        "Branch from Here",
    ]
    menu.actions()[1].trigger()
    assert window.composer.text() == "Question two"
    menu.close()


def test_the_shortcuts_sheet_lists_the_message_keys(harness: Harness) -> None:
    window = harness.window()
    sheet = window.show_shortcuts()
    rows = sheet.rows()
    assert ("View", "Go to the Messages", "Ctrl+J") in rows
    assert ("Messages", "The message's actions", "Enter / Menu / Shift+F10") in rows
    assert ("Messages", "Edit your message", "E / Ctrl+E") in rows
    # The menu's Ctrl+E and Ctrl+R are no longer only about the last message.
    assert not any(what == "Edit Last Message" for _, what, _ in rows)
    sheet.close()


def test_up_past_the_first_loaded_message_brings_older_ones(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session = window.chat.current
    assert session is not None
    messages = [
        Message.create("user" if i % 2 == 0 else "assistant", f"Message {i}") for i in range(120)
    ]
    run(qtbot, window.manager.replace_messages(session.id, messages))
    model = window.chat_view.model()
    wait_for(qtbot, lambda: 0 < model.rowCount() < 120)
    first_loaded = model.index(0, 0).data()
    window.focus_messages()
    key(qtbot, window, Qt.Key.Key_Home)
    assert current_text(window) == first_loaded
    key(qtbot, window, Qt.Key.Key_Up)
    number = int(first_loaded.split()[1])
    assert current_text(window) == f"Message {number - 1}"
    assert widget_of(window, window.chat_view.currentIndex().row()).is_current()


def test_the_menu_copies_code_and_opens_links_a_keyboard_cannot_reach_in_the_text(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    openai_server.reply = (
        "Run it:\n\n```python\nprint('hi')\n```\n\nSee [the docs](https://docs.example.org/run)."
    )
    task = window.send_text("How do I run it?")
    assert task is not None
    wait_for(qtbot, task.done)
    opened: list[str] = []
    catcher = UrlCatcher(opened)
    QDesktopServices.setUrlHandler("https", catcher, "open")
    try:
        window.focus_messages()
        key(qtbot, window, Qt.Key.Key_End)
        key(qtbot, window, Qt.Key.Key_Return)
        menu = window.chat_view.keyboard.menu
        assert isinstance(menu, QMenu)
        wait_for(qtbot, menu.isVisible)
        by_name = {a.objectName(): a for a in menu.actions()}
        by_name["copyCode1MessageAction"].trigger()
        assert QGuiApplication.clipboard().text() == "print('hi')"
        assert "docs.example.org" in by_name["openLink1MessageAction"].text()
        by_name["openLink1MessageAction"].trigger()
        assert opened == ["https://docs.example.org/run"]
        menu.close()
    finally:
        QDesktopServices.unsetUrlHandler("https")
    # The text itself is no longer a Tab stop of its own: the chat is one.
    assert all(
        not part.focusPolicy() & Qt.FocusPolicy.TabFocus
        for widget in window.chat_view.message_widgets()
        for part in widget.part_widgets()
    )


class UrlCatcher(QObject):
    """Takes the links the app opens, instead of a browser."""

    def __init__(self, opened: list[str]) -> None:
        super().__init__()
        self.opened = opened

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toString())
