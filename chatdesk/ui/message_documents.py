"""Message text as Qt documents: Markdown with set-apart code, code, or plain text.

A document is built once per message text block and re-filled in place when the text
grows (a streamed reply), so a widget showing it follows without being handed a new
one. :class:`chatdesk.ui.rendering.MessageRenderer` caches the documents and measures
them for the layout.
"""

from __future__ import annotations

from PySide6.QtGui import (
    QFont,
    QFontDatabase,
    QPalette,
    QTextBlockFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextFrameFormat,
    QTextOption,
    QTextTable,
)

from chatdesk.ui.code_blocks import fill_code_document
from chatdesk.ui.theme import code_background


def chat_font(base: QFont) -> QFont:
    """The font messages are set in: the system font, never smaller than 10.5 points."""
    font = QFont(base)
    if font.pointSizeF() > 0 and font.pointSizeF() < 10.5:
        font.setPointSizeF(10.5)
    return font


def build_document(text: str, font: QFont, palette: QPalette) -> QTextDocument:
    """A Markdown document of ``text`` with code blocks set apart by a background."""
    document = _empty_document(font)
    fill_document(document, text, palette)
    return document


def _empty_document(font: QFont) -> QTextDocument:
    document = QTextDocument()
    document.setDefaultFont(font)
    document.setDocumentMargin(0)
    # A word longer than the line (a URL, a hash, base64, minified code) breaks anywhere
    # instead of running off the side.
    option = document.defaultTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    document.setDefaultTextOption(option)
    return document


def code_font(font: QFont) -> QFont:
    """The fixed-pitch font code is set in, at the size of ``font``."""
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    mono.setFamilies([mono.family(), "monospace"])
    if font.pointSizeF() > 0:
        mono.setPointSizeF(font.pointSizeF())
    return mono


def build_code_document(code: str, language: str, font: QFont, palette: QPalette) -> QTextDocument:
    """An unwrapped, highlighted document of ``code`` in a fixed-pitch version of ``font``."""
    document = QTextDocument()
    document.setDefaultFont(code_font(font))
    document.setDocumentMargin(0)
    option = document.defaultTextOption()
    option.setWrapMode(QTextOption.WrapMode.NoWrap)
    document.setDefaultTextOption(option)
    fill_code_document(document, code, language, palette)
    return document


def build_plain_document(text: str, font: QFont) -> QTextDocument:
    """``text`` as typed: every line break kept, nothing read as Markdown."""
    document = _empty_document(font)
    document.setPlainText(text)
    return document


def fill_document(document: QTextDocument, text: str, palette: QPalette) -> None:
    """Replace ``document``'s contents with the Markdown ``text`` (kept object, new text)."""
    document.setMarkdown(text, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
    _style_code_blocks(document, palette)


def _style_code_blocks(document: QTextDocument, palette: QPalette) -> None:
    background = code_background(palette)
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    cursor = QTextCursor(document)
    block = document.begin()
    previous_was_code = False
    while block.isValid():
        is_code = block.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)
        if is_code:
            following = block.next()
            last = not (
                following.isValid()
                and following.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)
            )
            change = QTextBlockFormat()
            change.setBackground(background)
            change.setLeftMargin(0)
            # Space above the first line and below the last, so the code sits in a box.
            change.setTopMargin(0 if previous_was_code else 4)
            change.setBottomMargin(4 if last else 0)
            cursor.setPosition(block.position())
            cursor.mergeBlockFormat(change)
            cursor.setPosition(
                block.position() + block.length() - 1, QTextCursor.MoveMode.KeepAnchor
            )
            char = cursor.charFormat()
            char.setFontFamilies([mono.family(), "monospace"])
            cursor.mergeCharFormat(char)
        previous_was_code = is_code
        block = block.next()
    for frame in document.rootFrame().childFrames():
        if isinstance(frame, QTextTable):
            table_format = frame.format()
            table_format.setCellPadding(6)
            table_format.setBorderBrush(palette.color(QPalette.ColorRole.Mid))
            table_format.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
            table_format.setTopMargin(4)
            table_format.setBottomMargin(4)
            frame.setFormat(table_format)
