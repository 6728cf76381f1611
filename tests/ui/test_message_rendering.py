"""Message layouts: measured right whatever the text widgets showing them are doing."""

from __future__ import annotations

from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from chatdesk.domain import Message
from chatdesk.ui.message_widget import MessageText
from chatdesk.ui.rendering import MessageRenderer, TextPart

REPLY = (
    "Here are three fruits:\n\n1. Banana - a great source of potassium, eaten in any meal "
    "or snack.\n\n2. Apple - an excellent source of vitamin C, eaten on its own.\n\n"
    "3. Blueberries - full of antioxidants, and high in fiber, which keeps you full.\n"
)


def test_a_row_shown_narrow_is_remeasured_at_a_new_width(qapp: QApplication) -> None:
    # As when a window lays out its chat before it is shown at its real size: the text
    # widget keeps re-wrapping the shared document at its own (old) width.
    renderer = MessageRenderer(QFont(), QPalette())
    messages = [
        Message.create("user", "Write a short list of three fruits."),
        Message.create("assistant", REPLY),
    ]
    parent = QWidget()
    for message in messages:
        narrow = renderer.layout(message, 0, 200)
        part = narrow.parts[0]
        assert isinstance(part, TextPart)
        widget = MessageText(parent)
        widget.show_document(part.document)
        widget.setGeometry(0, 0, part.width, part.height)

        wide = renderer.layout(message, 0, 900)
        fresh = MessageRenderer(QFont(), QPalette()).layout(message, 0, 900)
        assert wide.height == fresh.height < narrow.height
        assert [p.width for p in wide.parts] == [p.width for p in fresh.parts]
