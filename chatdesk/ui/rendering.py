"""Laying out a message: where its bubble and parts go in a row, and how tall it is.

The chat view asks for a row's height far more often than a message changes, so both the
parsed documents and the computed layouts are cached per message id and content
version (and width for layouts). A document is parsed once per version and only
re-wrapped when the width changes; the message widget shows that same document.
Building the documents is :mod:`chatdesk.ui.message_documents`; images come from
:class:`chatdesk.ui.image_cache.ImageCache`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from PySide6.QtCore import QSize
from PySide6.QtGui import QFont, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication, QStyle

from chatdesk.domain import Content, Message
from chatdesk.ui.code_blocks import fill_code_document, split_code_blocks
from chatdesk.ui.context_rows import display_blocks
from chatdesk.ui.image_cache import ImageCache
from chatdesk.ui.message_documents import (
    build_code_document,
    build_document,
    build_plain_document,
    chat_font,
    fill_document,
)

# Geometry shared by the layout computation and the widget that shows it; both must
# agree to the pixel, or rows clip or leave gaps.
ROW_MARGIN_H = 20
ROW_MARGIN_V = 6
BUBBLE_PAD_H = 14
BUBBLE_PAD_V = 10
PART_SPACING = 8
ACTION_BAR_HEIGHT = 24
ACTION_GAP = 2
COLUMN_MAX_WIDTH = 860
USER_BUBBLE_FRACTION = 0.8
THUMBNAIL_MAX_WIDTH = 360
THUMBNAIL_MAX_HEIGHT = 280
MIN_BUBBLE_CONTENT_WIDTH = 24
# A code block: a header line (language, Copy) above the code, which is padded inside.
CODE_HEADER_HEIGHT = 26
CODE_PAD = 8

# A text block longer than COLLAPSED_CHARS shows collapsed, its start only, with "Show
# more", which reveals SHOW_MORE_CHARS more each time. Laying text out costs time in
# proportion to its length (an unbroken 1 MiB line took over 100 s, a 10 MB chat 25 s),
# so what a row shows stays bounded (and a page of rows too, see message_model).
COLLAPSED_CHARS = 8_000
SHOW_MORE_CHARS = 16_000
# Qt lays out one unbroken run of text in time that grows faster than its length, so a
# line longer than this is shown (never stored or copied) broken into lines this long.
_LONGEST_SHOWN_LINE = 2_000

_DOCUMENT_CACHE_SIZE = 600
_LAYOUT_CACHE_SIZE = 2000


@dataclass(slots=True)
class TextPart:
    """A text block of a message, as a laid-out Markdown document."""

    document: QTextDocument
    width: int
    height: int
    # Characters of the block not shown (collapsed behind "Show more").
    hidden_chars: int = 0


@dataclass(slots=True)
class ImagePart:
    """An image block of a message, shown as a thumbnail of ``width`` x ``height``."""

    key: tuple[str, int]
    url: str
    width: int
    height: int
    hidden_chars: int = 0


@dataclass(slots=True)
class CodePart:
    """A fenced code block: highlighted, unwrapped code under a language label.

    ``scrolls`` says whether its lines are wider than the block, so it shows a
    horizontal scroll bar (counted in ``height``).
    """

    document: QTextDocument
    code: str
    language: str
    width: int
    height: int
    scrolls: bool
    # Characters of the block not shown (collapsed behind "Show more").
    hidden_chars: int = 0


Part = TextPart | ImagePart | CodePart


@dataclass(slots=True)
class MessageLayout:
    """Where a message's bubble and parts go inside a row of ``row_width``."""

    row_width: int
    bubble_x: int
    bubble_width: int
    bubble_height: int
    parts: list[Part] = field(default_factory=list)
    # The row's size, made once: the view asks for every row's size on each layout pass.
    size: QSize = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.size = QSize(self.row_width, self.height)

    @property
    def hidden_chars(self) -> int:
        """Characters collapsed behind "Show more", over all text parts."""
        return sum(p.hidden_chars for p in self.parts if isinstance(p, TextPart | CodePart))

    @property
    def height(self) -> int:
        """The row's full height: margins, bubble and action bar."""
        return ROW_MARGIN_V * 2 + self.bubble_height + ACTION_GAP + ACTION_BAR_HEIGHT


def message_blocks(content: Content) -> list[dict]:
    """The content as blocks; a plain string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content


def wrapped_at(document: QTextDocument, width: int) -> QTextDocument:
    """``document`` wrapped at ``width``, or a copy of it when it cannot be re-wrapped.

    A text widget showing the document re-wraps it at the widget's own width as soon as it
    changes (synchronously), so a row measured before its widget has been resized to the
    new width (a window shown or resized) is measured on a copy.
    """
    if document.textWidth() != width:
        document.setTextWidth(width)
        if document.textWidth() != width:
            document = document.clone()
            document.setTextWidth(width)
    return document


def _split_long_lines(text: str) -> str:
    """``text`` with every line over _LONGEST_SHOWN_LINE broken (U+2028, a line break
    inside the paragraph, so no gap shows) into lines at most that long."""
    lines = text.split("\n")
    if all(len(line) <= _LONGEST_SHOWN_LINE for line in lines):
        return text
    step = _LONGEST_SHOWN_LINE
    return "\n".join(
        "\u2028".join(line[i : i + step] for i in range(0, len(line), step)) if line else line
        for line in lines
    )


def thumbnail_size(image_size: QSize, max_width: int) -> QSize:
    """Fit an image into the thumbnail box and ``max_width``, keeping its aspect ratio."""
    width, height = max(image_size.width(), 1), max(image_size.height(), 1)
    scale = min(1.0, THUMBNAIL_MAX_HEIGHT / height, min(THUMBNAIL_MAX_WIDTH, max_width) / width)
    return QSize(max(1, round(width * scale)), max(1, round(height * scale)))


class MessageRenderer:
    """Computes and caches message layouts for one font, palette and image cache."""

    def __init__(self, font: QFont, palette: QPalette) -> None:
        """Lay messages out in ``font``; code backgrounds come from ``palette``."""
        self.font = chat_font(font)
        self.palette = palette
        self.images = ImageCache()
        self._documents: OrderedDict[tuple[str, int, int], tuple[int, str, str, QTextDocument]] = (
            OrderedDict()
        )
        # One entry per message (its latest version and width): the view asks for row
        # sizes on every re-layout, so this lookup must be a single dict hit.
        self._layouts: dict[str, tuple[int, int, MessageLayout]] = {}
        # How many characters of each text block a message shows, once "Show more" was used.
        self._shown: dict[str, int] = {}
        # Summaries shown expanded: their id -> the original messages (a change must bump
        # the message's version, as any content change does).
        self.expanded: dict[str, list[Message]] = {}

    def set_font(self, font: QFont) -> None:
        """Adopt a new font (the text size changed); call set_palette or clear() after."""
        self.font = chat_font(font)

    def set_palette(self, palette: QPalette) -> None:
        """Adopt a new palette (light/dark switch): every document is restyled."""
        self.palette = palette
        self.clear()

    def clear(self) -> None:
        """Forget every cached document and layout."""
        self._documents.clear()
        self._layouts.clear()

    def show_more(self, message_id: str) -> None:
        """Reveal SHOW_MORE_CHARS more characters of a collapsed message."""
        self._shown[message_id] = self._shown.get(message_id, COLLAPSED_CHARS) + SHOW_MORE_CHARS
        self._layouts.pop(message_id, None)

    def layout(self, message: Message, version: int, row_width: int) -> MessageLayout:
        """The layout of ``message`` at content ``version`` in a row ``row_width`` wide."""
        cached = self._layouts.get(message.id)
        if cached is not None and cached[0] == version and cached[1] == row_width:
            return cached[2]
        found = self._compute(message, version, row_width)
        if len(self._layouts) >= _LAYOUT_CACHE_SIZE:
            self._layouts.clear()  # rare (thousands of rows seen); simpler than an LRU
        self._layouts[message.id] = (version, row_width, found)
        return found

    def document(
        self,
        message_id: str,
        index: int,
        version: int,
        text: str,
        *,
        kind: str = "markdown",
        segment: int = 0,
    ) -> QTextDocument:
        """The document of segment ``segment`` of text block ``index``, re-filled (same
        object) when its text changed.

        ``kind`` is "markdown", "plain" (a user's text, line breaks kept) or "code:<lang>".
        Keeping the object means a widget already showing it updates by itself.
        """
        key = (message_id, index, segment)
        entry = self._documents.get(key)
        if entry is not None and entry[1] == kind:
            self._documents.move_to_end(key)
            cached_version, _kind, cached_text, document = entry
            # Same version, other length: more of a collapsed message is shown now.
            if cached_version == version and len(cached_text) == len(text):
                return document
            if cached_text != text:
                self._fill(document, kind, text)
            self._documents[key] = (version, kind, text, document)
            return document
        document = self._build(kind, text)
        self._documents[key] = (version, kind, text, document)
        while len(self._documents) > _DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return document

    def _build(self, kind: str, text: str) -> QTextDocument:
        if kind.startswith("code:"):
            return build_code_document(text, kind[5:], self.font, self.palette)
        if kind == "plain":
            return build_plain_document(text, self.font)
        return build_document(text, self.font, self.palette)

    def _fill(self, document: QTextDocument, kind: str, text: str) -> None:
        if kind.startswith("code:"):
            fill_code_document(document, text, kind[5:], self.palette)
        elif kind == "plain":
            document.setPlainText(text)
        else:
            fill_document(document, text, self.palette)

    def _text_parts(
        self,
        message: Message,
        index: int,
        version: int,
        text: str,
        content_max: int,
        hidden: int = 0,
    ) -> list[Part]:
        """A text block as parts: the user's text as typed; a reply's prose and code.

        ``hidden`` (characters collapsed behind "Show more") goes on the last part.
        """
        is_user = message.role == "user"
        if is_user:
            segments = [(0, "plain", text)]
        else:
            segments = [
                (n, f"code:{s.language}" if s.is_code else "markdown", s.text)
                for n, s in enumerate(split_code_blocks(text))
            ]
        parts: list[Part] = []
        for n, kind, segment_text in segments:
            shown_text = segment_text
            if len(shown_text) > _LONGEST_SHOWN_LINE:
                shown_text = _split_long_lines(shown_text)
            document = self.document(message.id, index, version, shown_text, kind=kind, segment=n)
            if kind.startswith("code:"):
                inner = content_max - 2 * CODE_PAD
                scrolls = math.ceil(document.idealWidth()) > inner
                bar = _scroll_bar_extent() if scrolls else 0
                height = CODE_HEADER_HEIGHT + math.ceil(document.size().height()) + CODE_PAD + bar
                parts.append(
                    CodePart(document, segment_text, kind[5:], content_max, height, scrolls)
                )
                continue
            measured = wrapped_at(document, content_max)
            width = content_max
            if is_user:
                width = max(
                    MIN_BUBBLE_CONTENT_WIDTH, min(content_max, math.ceil(measured.idealWidth()) + 1)
                )
                measured = wrapped_at(measured, width)
            parts.append(TextPart(document, width, math.ceil(measured.size().height())))
        if parts and hidden:
            parts[-1].hidden_chars = hidden
        return parts

    def _compute(self, message: Message, version: int, row_width: int) -> MessageLayout:
        column = max(
            MIN_BUBBLE_CONTENT_WIDTH * 4, min(row_width - 2 * ROW_MARGIN_H, COLUMN_MAX_WIDTH)
        )
        column_x = (row_width - column) // 2
        is_user = message.role == "user"
        bubble_max = int(column * USER_BUBBLE_FRACTION) if is_user else column
        content_max = max(MIN_BUBBLE_CONTENT_WIDTH, bubble_max - 2 * BUBBLE_PAD_H)
        parts: list[Part] = []
        # Summaries and tool calls read in words (context_rows); expanded summaries show
        # their originals, which the renderer is handed in ``expanded``.
        blocks = display_blocks(message, self.expanded.get(message.id))
        for index, block in enumerate(blocks):
            if block.get("type") == "image_url":
                url = block["image_url"]["url"]
                if url.startswith("data:"):
                    size = thumbnail_size(self.images.size((message.id, index), url), content_max)
                    parts.append(ImagePart((message.id, index), url, size.width(), size.height()))
                    continue
                text = f"[Image]({url})"
            else:
                text = block.get("text", "")
            # A long block shows collapsed (its start, then "Show more"); the cut is made
            # before code fences are found, so an open fence runs to the cut.
            shown = self._shown.get(message.id, COLLAPSED_CHARS)
            hidden = max(0, len(text) - shown)
            if hidden:
                text = text[:shown] + "…"
            parts.extend(self._text_parts(message, index, version, text, content_max, hidden))
        content_width = max([p.width for p in parts] + [MIN_BUBBLE_CONTENT_WIDTH])
        content_height = sum(p.height for p in parts) + PART_SPACING * max(0, len(parts) - 1)
        bubble_width = (content_width if is_user else content_max) + 2 * BUBBLE_PAD_H
        bubble_x = column_x + column - bubble_width if is_user else column_x
        return MessageLayout(
            row_width=row_width,
            bubble_x=bubble_x,
            bubble_width=bubble_width,
            bubble_height=content_height + 2 * BUBBLE_PAD_V,
            parts=parts,
        )


def _scroll_bar_extent() -> int:
    """The height of a horizontal scroll bar in the application's style."""
    return QApplication.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
