"""Message text as people expect it: user line breaks kept, code blocks highlighted,
labelled, copyable and never clipped, and a visible answer to every Copy click."""

from __future__ import annotations

from PySide6.QtGui import QFont, QGuiApplication, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message
from chatdesk.ui.code_blocks import Segment, split_code_blocks
from chatdesk.ui.message_parts import COPIED_FEEDBACK_MS, CodeBlock, MessageText
from chatdesk.ui.message_widget import MessageWidget
from chatdesk.ui.rendering import CodePart, MessageRenderer, TextPart

REPLY = (
    "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b  # sum\n```\n\n"
    "Call it with two numbers."
)


def _shown(renderer: MessageRenderer, message: Message, width: int = 700) -> MessageWidget:
    parent = QWidget()
    parent.resize(width, 2000)
    widget = MessageWidget(parent, renderer)
    layout = renderer.layout(message, 0, width)
    widget.setGeometry(0, 0, width, layout.height)
    widget.show_message(message, layout, is_last_reply=True)
    parent.show()
    widget._keep_parent = parent  # type: ignore[attr-defined]
    return widget


def test_fenced_code_is_cut_out_of_the_prose_around_it() -> None:
    assert split_code_blocks(REPLY) == [
        Segment("Here is the function:\n"),
        Segment("def add(a, b):\n    return a + b  # sum", "python"),
        Segment("\nCall it with two numbers."),
    ]
    # A fence still open while a reply streams runs to the end; ~~~ fences count too.
    assert split_code_blocks("~~~\nx = 1\n") == [Segment("x = 1\n", "")]
    assert split_code_blocks("") == [Segment("")]
    # A fence inside a longer line is not a fence.
    assert split_code_blocks("use ```x``` here") == [Segment("use ```x``` here")]


def test_user_text_keeps_its_line_breaks(qapp: QApplication) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    message = Message.create("user", "Line A\nLine B\n# not a heading\n* not a list")
    layout = renderer.layout(message, 0, 700)
    (part,) = layout.parts
    assert isinstance(part, TextPart)
    assert part.document.blockCount() == 4
    assert part.document.toPlainText() == "Line A\nLine B\n# not a heading\n* not a list"
    one_line = renderer.layout(Message.create("user", "Line A"), 0, 700).parts[0]
    assert part.height >= 4 * one_line.height - 2


def test_a_long_paste_stays_one_line_per_line(qapp: QApplication) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    text = "\n".join(f"row {n}" for n in range(3000))
    layout = renderer.layout(Message.create("user", text), 0, 700)
    part = layout.parts[0]
    assert isinstance(part, TextPart)
    # A paste this long shows collapsed ("Show more"): every line shown is its own line.
    shown = text[: len(text) - layout.hidden_chars]
    assert shown.count("\n") > 500
    assert part.document.blockCount() == shown.count("\n") + 1


def test_a_code_block_is_highlighted_labelled_and_copied(qapp: QApplication, qtbot: QtBot) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    widget = _shown(renderer, Message.create("assistant", REPLY))
    kinds = [type(w) for w in widget.part_widgets()]
    assert kinds == [MessageText, CodeBlock, MessageText]
    block = widget.part_widgets()[1]
    assert isinstance(block, CodeBlock)
    assert block.label.text() == "Python"
    colours = _colours(block.text.document())
    assert len(colours) >= 3  # keyword, name, comment... not one colour for everything
    block.copy_button.click()
    assert QGuiApplication.clipboard().text() == "def add(a, b):\n    return a + b  # sum"
    assert block.copy_button.text() == "Copied"
    qtbot.waitUntil(lambda: block.copy_button.text() == "Copy", timeout=COPIED_FEEDBACK_MS * 3)


def test_a_long_code_line_scrolls_instead_of_being_clipped(qapp: QApplication) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    long_line = "x = [" + ", ".join(str(n) for n in range(200)) + "]"
    message = Message.create("assistant", f"```python\n{long_line}\n```")
    widget = _shown(renderer, message, width=500)
    (block,) = widget.part_widgets()
    assert isinstance(block, CodeBlock)
    part = renderer.layout(message, 0, 500).parts[0]
    assert isinstance(part, CodePart) and part.scrolls
    bar = block.text.horizontalScrollBar()
    assert bar.isVisible() and bar.maximum() > 0
    # The whole line is in view once scrolled to the end, so it can be read and selected.
    assert bar.maximum() + block.text.viewport().width() >= int(block.text.document().idealWidth())
    # The block, its scroll bar included, fits inside the row height the layout promised.
    assert block.geometry().bottom() <= widget.height()
    assert block.text.geometry().bottom() < block.height()


def test_a_long_word_in_prose_wraps_within_the_bubble(qapp: QApplication) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    message = Message.create("assistant", "see https://example.org/" + "a" * 400)
    part = renderer.layout(message, 0, 500).parts[0]
    assert isinstance(part, TextPart)
    assert part.document.idealWidth() <= part.width


def test_copying_a_message_says_copied(qapp: QApplication, qtbot: QtBot) -> None:
    renderer = MessageRenderer(QFont(), QPalette())
    widget = _shown(renderer, Message.create("assistant", "Plain answer."))
    copy = widget.findChild(QWidget, "copyMessageButton")
    copy.click()
    assert QGuiApplication.clipboard().text() == "Plain answer."
    assert copy.text() == "Copied"
    qtbot.waitUntil(lambda: copy.text() == "Copy", timeout=COPIED_FEEDBACK_MS * 3)


def _colours(document: QTextDocument) -> set[str]:
    found = set()
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.text().strip():
                found.add(fragment.charFormat().foreground().color().name())
            it += 1
        block = block.next()
    return found
