"""Message layouts: measured right whatever the text widgets showing them are doing."""

from __future__ import annotations

from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from chatdesk.domain import Message, Session
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.message_model import MessageListModel
from chatdesk.ui.message_parts import MessageText
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


def test_a_streaming_row_keeps_its_true_height_across_a_resize(qapp: QApplication) -> None:
    model = MessageListModel()
    view = ChatView(model)
    view.resize(700, 600)
    view.show()
    qapp.processEvents()
    narrow = view.viewport().width()

    def height(text: str, width: int) -> int:
        fresh = MessageRenderer(view.font(), view.palette())
        return fresh.layout(Message.create("assistant", text), 0, width).height

    # Text whose next token brings the row, at the wider width, back to the height it
    # had at the narrow one: a height check that ignores the width misses that change.
    words = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
    ]
    text, found = "", None
    for number in range(300):
        text += words[number % len(words)] + " "
        longer = text + "supercalifragilisticexpialidocious "
        if height(text, narrow) == height(longer, narrow + 200) > height(text, narrow + 200):
            found = (text, longer)
            break
    assert found is not None
    session = Session()
    session.add_message(Message.create("user", "hi"))
    reply = Message.create("assistant", "")
    session.add_message(reply)
    model.set_session(session)

    def stream(content: str) -> None:
        reply.content = content
        model.on_message_updated(session.id, reply.id)
        model.flush_updates()
        qapp.processEvents()

    stream(found[0])
    view.resize(900, 600)
    qapp.processEvents()
    stream(found[1])
    index = model.index(model.row_of(reply.id))
    expected = view._delegate.layout_for(index).height
    assert view.visualRect(index).height() == expected
    assert view.indexWidget(index).height() == expected
    view.close()
