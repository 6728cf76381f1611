"""The "‹ 2/3 ›" arrows under a turn with several versions."""

from __future__ import annotations

from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message
from chatdesk.ui.message_widget import MessageWidget
from chatdesk.ui.rendering import MessageRenderer


def _widget(version: tuple[int, int], status: str = "complete") -> MessageWidget:
    renderer = MessageRenderer(QFont(), QPalette())
    parent = QWidget()
    widget = MessageWidget(parent, renderer)
    message = Message.create("assistant", "An answer.", status=status)
    layout = renderer.layout(message, 0, 600)
    widget.setGeometry(0, 0, 600, layout.height)
    widget.show_message(message, layout, is_last_reply=True, version=version)
    parent.show()
    widget._keep_parent = parent  # type: ignore[attr-defined]
    return widget


def test_arrows_show_which_version_and_ask_for_the_neighbours(
    qapp: QApplication, qtbot: QtBot
) -> None:
    widget = _widget((2, 3))
    label = widget.findChild(QLabel, "versionLabel")
    previous = widget.findChild(QToolButton, "previousVersionButton")
    following = widget.findChild(QToolButton, "nextVersionButton")
    assert label.isVisible() and label.text() == "2/3"
    assert previous.isEnabled() and following.isEnabled()
    message_id = widget.message.id
    with qtbot.waitSignal(widget.versionRequested) as asked:
        previous.click()
    assert asked.args == [message_id, 1]
    with qtbot.waitSignal(widget.versionRequested) as asked:
        following.click()
    assert asked.args == [message_id, 3]


def test_no_arrows_for_a_single_version_and_none_usable_while_streaming(
    qapp: QApplication,
) -> None:
    single = _widget((1, 1))
    assert not single.findChild(QLabel, "versionLabel").isVisible()
    streaming = _widget((3, 3), status="streaming")
    assert not streaming.findChild(QToolButton, "previousVersionButton").isEnabled()
    assert not streaming.findChild(QToolButton, "nextVersionButton").isEnabled()
