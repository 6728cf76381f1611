"""The composer in daily use: focus comes back after mouse actions, Esc stops a reply,
an edit never eats a draft, and typed text is the chat's size."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton
from pytestqt.qtbot import QtBot

from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.composer import Composer
from chatdesk.ui.message_model import MessageListModel
from tests.core.conftest import make_png


def _composer(qtbot: QtBot) -> Composer:
    composer = Composer()
    qtbot.addWidget(composer)
    composer.resize(600, 120)
    composer.show()
    return composer


def test_typed_text_is_the_size_of_the_chat_text(qapp: QApplication, qtbot: QtBot) -> None:
    composer = _composer(qtbot)
    view = ChatView(MessageListModel())
    qtbot.addWidget(view)
    assert composer.edit.font().pointSizeF() == view.renderer.font.pointSizeF()


def test_clicking_send_gives_the_focus_back_to_the_text_box(
    qapp: QApplication, qtbot: QtBot
) -> None:
    composer = _composer(qtbot)
    composer.edit.setPlainText("hello")
    qtbot.mouseClick(composer.send_button, Qt.MouseButton.LeftButton)
    assert composer.window().focusWidget() is composer.edit


def test_attaching_through_the_file_dialog_gives_the_focus_back(
    qapp: QApplication, qtbot: QtBot, tmp_path: Path, monkeypatch: object
) -> None:
    picture = tmp_path / "a.png"
    picture.write_bytes(make_png())
    composer = _composer(qtbot)
    # The real dialog would wait for a person: it answers with the file, as one would.
    monkeypatch.setattr(  # type: ignore[attr-defined]
        QFileDialog, "getOpenFileNames", lambda *args, **kwargs: ([str(picture)], "")
    )
    composer.attach_button.setFocus()
    qtbot.mouseClick(composer.attach_button, Qt.MouseButton.LeftButton)
    assert len(composer.attachments()) == 1
    assert composer.window().focusWidget() is composer.edit


def test_escape_stops_a_reply(qapp: QApplication, qtbot: QtBot) -> None:
    composer = _composer(qtbot)
    composer.set_streaming(True)
    with qtbot.waitSignal(composer.stopRequested, timeout=1000):
        qtbot.keyClick(composer.edit, Qt.Key.Key_Escape)


def test_a_cancelled_edit_gives_the_draft_back(qapp: QApplication, qtbot: QtBot) -> None:
    composer = _composer(qtbot)
    composer.edit.setPlainText("half-written thought")
    composer.begin_edit("message-1", "the sent question")
    assert composer.text() == "the sent question"
    qtbot.keyClick(composer.edit, Qt.Key.Key_Escape)
    assert composer.editing_message_id is None
    assert composer.text() == "half-written thought"


def test_send_and_stop_are_buttons_a_keyboard_reaches(qapp: QApplication, qtbot: QtBot) -> None:
    composer = _composer(qtbot)
    for button in composer.findChildren(QPushButton):
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus
