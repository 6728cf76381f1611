"""Turning message content into table cells and back.

Images in data URLs are moved to the ``images`` table, keyed by the SHA-256 of their
bytes, and the stored block keeps a reference with the exact MIME type it was given, so
reading a message back yields exactly the content that was written.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatdesk.domain import (
    Content,
    DataUrl,
    encode_base64,
    is_image_mime,
    parse_content,
    sniff_image_format,
    validate_content,
)

IMAGE_REF_PREFIX = "chatdesk-image:"


@dataclass(slots=True)
class EncodedContent:
    """A message's content as stored: the cell, its type and the images it refers to."""

    content_type: str
    cell: str
    images: dict[str, bytes] = field(default_factory=dict)


def encode_content(content: Content) -> EncodedContent:
    """Validate content and encode it for storage, moving image bytes out of the cell.

    Raises ValueError (as :func:`chatdesk.domain.validate_content`) for invalid content.
    Each image is decoded once; for large images this is CPU work worth a worker thread.
    """
    parsed_images = parse_content(content)
    if isinstance(content, str):
        return EncodedContent("text", content)
    blocks = copy.deepcopy(content)
    found: dict[str, bytes] = {}
    for index, parsed in parsed_images.items():
        # Only canonical base64 can be rebuilt byte for byte; anything else stays inline.
        if not _is_canonical(parsed):
            continue
        digest = hashlib.sha256(parsed.data).hexdigest()
        found[digest] = parsed.data
        blocks[index]["image_url"]["url"] = f"{IMAGE_REF_PREFIX}{digest};{parsed.mime}"
    return EncodedContent("blocks", json.dumps(blocks, ensure_ascii=False), found)


def _is_canonical(parsed: DataUrl) -> bool:
    # Strictly decoded base64 is whole quads of the alphabet. Every quad but the last
    # stands for exactly three bytes, so only the last (whose padding leaves bits unused,
    # or after which extra "=" may follow) can differ from what b64encode would write.
    text, data = parsed.base64_text, parsed.data
    if len(text) != 4 * -(-len(data) // 3):
        return False
    tail = len(data) % 3 or 3
    return encode_base64(data[-tail:]) == text[-4:]


def image_refs(cell: str) -> list[str]:
    """The image hashes a stored ``blocks`` cell refers to (empty if it does not parse)."""
    blocks = _parse_blocks(cell)
    return [] if blocks is None else [h for h, _ in _refs_in(blocks)]


def decode_content(
    content_type: str, cell: str, image_bytes: dict[str, bytes]
) -> tuple[Content, bool]:
    """Rebuild content from a stored cell; returns (content, ok).

    A cell that should hold blocks but does not parse, or refers to an image that is
    gone, comes back as plain text (ok=False) rather than failing the whole session.
    """
    if content_type != "blocks":
        return cell, True
    blocks = _parse_blocks(cell)
    if not blocks:
        return cell, False
    others = []
    for block in blocks:
        ref = _ref_of(block)
        if ref is None:
            others.append(block)
            continue
        digest, mime = ref
        data = image_bytes.get(digest)
        # The bytes were validated when they were written: rebuilding the data URL is
        # enough, decoding it again to re-validate would double the cost of opening.
        if data is None or not is_image_mime(mime) or sniff_image_format(data) is None:
            return cell, False
        block["image_url"]["url"] = f"data:{mime};base64,{encode_base64(data)}"
    try:
        if others:
            validate_content(others)
    except ValueError:
        return cell, False
    return blocks, True


def _parse_blocks(cell: str) -> list[dict[str, Any]] | None:
    try:
        blocks = json.loads(cell)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        return None
    return blocks


def _refs_in(blocks: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    return [ref for b in blocks if (ref := _ref_of(b)) is not None]


def _ref_of(block: dict[str, Any]) -> tuple[str, str] | None:
    image = block.get("image_url")
    if block.get("type") != "image_url" or not isinstance(image, dict):
        return None
    url = image.get("url")
    if not isinstance(url, str) or not url.startswith(IMAGE_REF_PREFIX):
        return None
    digest, _, mime = url[len(IMAGE_REF_PREFIX) :].partition(";")
    return digest, mime
