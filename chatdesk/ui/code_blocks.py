"""Fenced code blocks of a reply: found in its Markdown and highlighted with Pygments.

A reply is shown as prose parts and code parts, so each code block can carry its own
language label and Copy button and scroll sideways instead of being clipped. Pygments is
imported on first use: the first paint of the window does not need it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QColor, QFont, QPalette, QTextCharFormat, QTextCursor, QTextDocument

if TYPE_CHECKING:
    from pygments.lexer import Lexer

# An opening fence at the top level: up to three spaces, then ``` or ~~~ and an info string.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of a Markdown text: prose (``language`` is None) or one fenced code block."""

    text: str
    language: str | None = None

    @property
    def is_code(self) -> bool:
        """Whether this segment is a fenced code block."""
        return self.language is not None


def split_code_blocks(markdown: str) -> list[Segment]:
    """``markdown`` cut into prose and top-level fenced code blocks, in order.

    A fence still open at the end (a reply being streamed) runs to the end of the text.
    Blank prose between blocks is dropped; an empty text is one empty prose segment.
    """
    segments: list[Segment] = []
    prose: list[str] = []
    lines = markdown.split("\n")

    def flush_prose() -> None:
        text = "\n".join(prose)
        if text.strip():
            segments.append(Segment(text))
        prose.clear()

    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        # A backtick fence's info string may not hold a backtick (CommonMark).
        if opening is None or (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            prose.append(lines[i])
            i += 1
            continue
        fence = opening.group(1)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        info = opening.group(2).strip()
        body: list[str] = []
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1  # past the closing fence (or the end)
        flush_prose()
        segments.append(Segment("\n".join(body), info.split()[0] if info else ""))
    flush_prose()
    return segments or [Segment("")]


def language_label(language: str) -> str:
    """The name shown above a code block: the lexer's own name when Pygments knows it."""
    lexer = _lexer(language)
    if lexer is None:
        return language or "text"
    return str(lexer.name) if language else "text"


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    if not language:
        return None
    try:
        # Keep the text exactly as given: no added or stripped newlines.
        return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def is_dark(palette: QPalette) -> bool:
    """Whether ``palette`` draws light text on a dark base."""
    return palette.color(QPalette.ColorRole.Base).lightnessF() < 0.5


@functools.lru_cache(maxsize=512)
def _token_format(dark: bool, token_type: Any) -> QTextCharFormat:
    from pygments.styles import get_style_by_name

    style = get_style_by_name("monokai" if dark else "default")
    found = style.style_for_token(token_type)
    char = QTextCharFormat()
    if found.get("color"):
        char.setForeground(QColor(f"#{found['color']}"))
    if found.get("bold"):
        char.setFontWeight(QFont.Weight.Bold)
    if found.get("italic"):
        char.setFontItalic(True)
    return char


def fill_code_document(
    document: QTextDocument, code: str, language: str, palette: QPalette
) -> None:
    """Replace ``document``'s text with ``code``, coloured for ``language`` when known."""
    document.clear()
    cursor = QTextCursor(document)
    lexer = _lexer(language)
    if lexer is None:
        cursor.insertText(code)
        return
    dark = is_dark(palette)
    cursor.beginEditBlock()
    for token_type, value in lexer.get_tokens(code):
        cursor.insertText(value, _token_format(dark, token_type))
    cursor.endEditBlock()
