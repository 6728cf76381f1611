"""Messages, sessions and content blocks: plain dataclasses and their validation.

Content follows the OpenAI chat format: either a string, or a list of blocks
``{"type": "text", "text": ...}`` / ``{"type": "image_url", "image_url": {"url": ...}}``.
Nothing here does I/O; storage and the UI build on these types.
"""

from __future__ import annotations

import binascii
import copy
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
SESSION_KINDS = ("chat", "task")
DEFAULT_TITLE = "New chat"

# Life of a message. Everything but an assistant reply is born "complete"; a reply is
# "streaming" while tokens arrive and ends in one of the others.
MESSAGE_STATUSES = ("complete", "streaming", "cancelled", "error", "interrupted")

Content = str | list[dict[str, Any]]

# The largest image a message may carry, decoded; the composer uses the same limit.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# An unpaired UTF-16 surrogate cannot be encoded as UTF-8, so it can be neither stored nor
# sent to a model.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_DATA_URL = re.compile(r"^data:(?P<mime>image/[A-Za-z0-9.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_IMAGE_MIME = re.compile(r"image/[A-Za-z0-9.+-]+")

# Large images are decoded and encoded in slices: a worker thread doing it lets go of the
# GIL between slices, so the event loop keeps running (binascii holds the GIL throughout
# one call, about 5 ms per MB here).
_BASE64_SLICE_CHARS = 1 << 20  # a multiple of 4
_BASE64_SLICE_BYTES = 3 << 18  # a multiple of 3; encodes to _BASE64_SLICE_CHARS

# Leading bytes of the image formats Qt and every model server can read.
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (all stored times are UTC)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random identifier for a session or message."""
    return uuid.uuid4().hex


def sniff_image_format(data: bytes) -> str | None:
    """The image format of ``data`` from its leading bytes, or None if it is not an image."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for signature, name in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def decode_base64(text: str, *, slice_chars: int = _BASE64_SLICE_CHARS) -> bytes:
    """Decode strict base64 (the alphabet and padding only, as ``b64decode(validate=True)``).

    Raises ValueError (binascii.Error, most often) when ``text`` is not valid base64.
    """
    if len(text) <= slice_chars:
        return binascii.a2b_base64(text, strict_mode=True)
    if slice_chars <= 0 or slice_chars % 4:
        raise ValueError("slice_chars must be a positive multiple of 4")
    # Padding may only end the whole text (strict mode demands it); the slices before the
    # last then hold whole quads of the alphabet only, and the last one, from the slice
    # holding the final data character on, decodes exactly as within the whole text.
    data_end = len(text.rstrip("="))
    if text.find("=", 0, data_end) != -1:
        raise binascii.Error("Excess data after padding")
    last = max(data_end - 1, 0) // slice_chars * slice_chars
    parts = [
        binascii.a2b_base64(text[start : start + slice_chars], strict_mode=True)
        for start in range(0, last, slice_chars)
    ]
    parts.append(binascii.a2b_base64(text[last:], strict_mode=True))
    return b"".join(parts)


def encode_base64(data: bytes, *, slice_bytes: int = _BASE64_SLICE_BYTES) -> str:
    """The canonical base64 text of ``data`` (what ``b64encode`` gives), as a string."""
    if len(data) <= slice_bytes:
        return binascii.b2a_base64(data, newline=False).decode("ascii")
    if slice_bytes <= 0 or slice_bytes % 3:
        raise ValueError("slice_bytes must be a positive multiple of 3")
    view = memoryview(data)
    return "".join(
        binascii.b2a_base64(view[start : start + slice_bytes], newline=False).decode("ascii")
        for start in range(0, len(data), slice_bytes)
    )


def is_image_mime(mime: str) -> bool:
    """Whether ``mime`` is a MIME type an image data URL may carry (``image/<format>``)."""
    return _IMAGE_MIME.fullmatch(mime) is not None


@dataclass(frozen=True, slots=True)
class DataUrl:
    """A parsed ``data:image/...;base64,...`` URL."""

    mime: str
    base64_text: str
    data: bytes


def parse_image_data_url(url: str, *, where: str = "image") -> DataUrl:
    """Decode an image data URL, checking that the bytes really are an image.

    Raises ValueError naming ``where`` and what is wrong.
    """
    match = _DATA_URL.match(url)
    if match is None:
        raise ValueError(f"{where}: a data URL must look like 'data:image/<format>;base64,...'")
    text = match.group("data")
    try:
        data = decode_base64(text)
    except ValueError as exc:  # binascii.Error is one
        raise ValueError(f"{where}: the base64 image data does not decode ({exc})") from None
    if not data:
        raise ValueError(f"{where}: the image data is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(
            f"{where}: the image is {len(data) / 1024 / 1024:.1f} MB; images can be at most "
            f"{MAX_IMAGE_BYTES // 1024 // 1024} MB"
        )
    if sniff_image_format(data) is None:
        raise ValueError(
            f"{where}: the data is not a recognisable image (PNG, JPEG, GIF, WebP or BMP)"
        )
    return DataUrl(mime=match.group("mime"), base64_text=text, data=data)


def image_data_url(data: bytes, mime: str | None = None) -> str:
    """Build a data URL for image bytes, guessing the MIME type from the bytes when not given."""
    if mime is None:
        fmt = sniff_image_format(data)
        if fmt is None:
            raise ValueError("the data is not a recognisable image (PNG, JPEG, GIF, WebP or BMP)")
        mime = f"image/{fmt}"
    return f"data:{mime};base64,{encode_base64(data)}"


def _validate_block(block: object, index: int) -> DataUrl | None:
    where = f"block {index}"
    if not isinstance(block, dict):
        raise ValueError(f"{where}: expected an object with a 'type', got {type(block).__name__}")
    kind = block.get("type")
    if kind == "text":
        if "text" not in block:
            raise ValueError(f"{where} (text): missing field 'text'")
        if not isinstance(block["text"], str):
            raise ValueError(f"{where} (text): 'text' must be a string")
        check_text(block["text"], where=f"{where} (text)")
    elif kind == "image_url":
        image = block.get("image_url")
        if image is None:
            raise ValueError(f"{where} (image_url): missing field 'image_url'")
        if not isinstance(image, dict):
            raise ValueError(f"{where} (image_url): 'image_url' must be an object with a 'url'")
        url = image.get("url")
        if url is None:
            raise ValueError(f"{where} (image_url): missing field 'image_url.url'")
        if not isinstance(url, str):
            raise ValueError(f"{where} (image_url): 'image_url.url' must be a string")
        if url.startswith(("http://", "https://")):
            return None
        if not url.startswith("data:"):
            raise ValueError(
                f"{where} (image_url): the url must be a data:image/...;base64 URL "
                "or an http(s) URL"
            )
        return parse_image_data_url(url, where=f"{where} (image_url)")
    elif kind is None:
        raise ValueError(f"{where}: missing field 'type'")
    else:
        raise ValueError(f"{where}: unknown block type {kind!r} (expected 'text' or 'image_url')")
    return None


def parse_content(content: object) -> dict[int, DataUrl]:
    """Validate ``content`` as :func:`validate_content` does; return its decoded images.

    The result maps the index of each block whose image is a data URL to that URL,
    decoded, so a caller that needs the bytes does not decode them a second time.
    """
    if isinstance(content, str):
        check_text(content)
        return {}
    if not isinstance(content, list):
        raise ValueError(
            f"content must be a string or a list of blocks, got {type(content).__name__}"
        )
    if not content:
        raise ValueError("content is an empty list of blocks")
    images: dict[int, DataUrl] = {}
    for index, block in enumerate(content):
        parsed = _validate_block(block, index)
        if parsed is not None:
            images[index] = parsed
    return images


def check_text(text: str, *, where: str = "text") -> None:
    """Raise ValueError if ``text`` holds an unpaired surrogate (it cannot be stored)."""
    found = _LONE_SURROGATE.search(text)
    if found is not None:
        raise ValueError(
            f"{where}: contains an invalid character (an unpaired surrogate, "
            f"U+{ord(found.group()):04X}) at position {found.start()}; text must be valid "
            "Unicode"
        )


def validate_content(content: object) -> None:
    """Raise ValueError if ``content`` is not a string or a valid list of blocks."""
    parse_content(content)


def validate_role(role: object) -> None:
    """Raise ValueError if ``role`` is not one of :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")


def content_text(content: Content) -> str:
    """The text of a message's content, blocks joined; images are left out."""
    if isinstance(content, str):
        return content
    return "\n".join(b["text"] for b in content if b.get("type") == "text")


def validate_tool_calls(tool_calls: object) -> None:
    """Raise ValueError unless ``tool_calls`` is None or a list of OpenAI function calls."""
    if tool_calls is None:
        return
    if not isinstance(tool_calls, list):
        raise ValueError("tool_calls must be a list of calls")
    for index, call in enumerate(tool_calls):
        where = f"tool call {index}"
        if not isinstance(call, dict):
            raise ValueError(f"{where}: expected an object")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise ValueError(f"{where}: 'id' must be a non-empty string")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"{where}: 'function.name' must be a string")
        if not isinstance(function.get("arguments", ""), str):
            raise ValueError(f"{where}: 'function.arguments' must be a JSON string")


@dataclass(eq=True, slots=True)
class Message:
    """One message of a session's history."""

    role: str
    content: Content
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    status: str = "complete"
    error: str | None = None
    # An assistant message that asks for tools: OpenAI-format calls
    # ``{"id", "type": "function", "function": {"name", "arguments"}}``.
    tool_calls: list[dict[str, Any]] | None = None
    # A role "tool" message: the id of the call it answers.
    tool_call_id: str | None = None
    # A summary made by compaction: the compaction's id and how many messages it replaced.
    compaction_id: str | None = None
    compacted_count: int = 0
    # A reply's facts: "model", "seconds" (request to last token), "tokens" (written).
    meta: dict[str, Any] | None = None

    @classmethod
    def create(cls, role: str, content: Content, **fields: Any) -> Message:
        """A validated message; the content is deep-copied so callers can't mutate it later."""
        validate_role(role)
        validate_content(content)
        return cls(role=role, content=copy.deepcopy(content), **fields)

    def to_context(self) -> dict[str, Any]:
        """The ``{"role", "content"}`` dict a model is sent (with tool fields when set)."""
        context: dict[str, Any] = {"role": self.role, "content": copy.deepcopy(self.content)}
        if self.tool_calls:
            context["tool_calls"] = copy.deepcopy(self.tool_calls)
        if self.tool_call_id is not None:
            context["tool_call_id"] = self.tool_call_id
        return context

    @property
    def is_summary(self) -> bool:
        """Whether this message is a compaction's summary of earlier messages."""
        return self.compaction_id is not None


@dataclass(eq=False)
class Session:
    """A chat (or scheduled task) session and its authoritative, mutable history.

    ``history`` has a per-instance default factory, so no two sessions ever share a list.
    """

    id: str = field(default_factory=new_id)
    owner: str = "local"
    title: str = DEFAULT_TITLE
    kind: str = "chat"
    task_id: str | None = None
    system_prompt: str | None = None
    provider: str | None = None
    model: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    history: list[Message] = field(default_factory=list)
    pinned: bool = False
    archived_at: datetime | None = None
    trashed_at: datetime | None = None
    # A branch: the chat and the message it was made from.
    parent_session_id: str | None = None
    parent_message_id: str | None = None
    # Generation settings of this chat (None: the app's defaults) and its unsent draft.
    temperature: float | None = None
    max_tokens: int | None = None
    draft: str | None = None
    # Stored earlier versions of turns, by the id of the message each turn follows ("" for
    # the start of the chat); the history holds the version being shown.
    versions: dict[str, list[VersionRef]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SESSION_KINDS:
            raise ValueError(f"unknown session kind {self.kind!r} (expected 'chat' or 'task')")

    @property
    def message_count(self) -> int:
        """How many messages the history holds."""
        return len(self.history)

    def add_message(self, message: Message) -> Message:
        """Append ``message`` to the history and mark the session as active now."""
        self.history.append(message)
        self.updated_at = max(self.updated_at, message.created_at)
        return message

    def context_messages(self) -> list[dict[str, Any]]:
        """What a model is sent: the system prompt first when set, then every message."""
        context = [m.to_context() for m in self.history]
        if self.system_prompt:
            context.insert(0, {"role": "system", "content": self.system_prompt})
        return context

    def stored_versions(self, position: int) -> list[VersionRef]:
        """The stored (not shown) versions of the turn starting at history ``position``."""
        after = self.history[position - 1].id if 0 < position <= len(self.history) else ""
        return self.versions.get(after, []) if position <= len(self.history) else []

    def version_of(self, position: int) -> tuple[int, int]:
        """(which, of how many) versions of the turn starting at ``position`` is shown, 1-based.

        Versions count in the order they were made; (1, 1) means the turn has only one.
        """
        stored = self.stored_versions(position)
        if not stored:
            return 1, 1
        if position >= len(self.history):
            return len(stored) + 1, len(stored) + 1  # the shown version is still empty
        shown = self.history[position].created_at
        return sum(1 for ref in stored if ref.first_created_at <= shown) + 1, len(stored) + 1


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A stored earlier version of a turn: its id and when its first message was made."""

    id: str
    first_created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What the sidebar needs of a session, without its messages."""

    id: str
    title: str
    kind: str
    owner: str
    message_count: int
    created_at: datetime
    updated_at: datetime
    task_id: str | None = None
    pinned: bool = False
    archived_at: datetime | None = None
    trashed_at: datetime | None = None
    parent_session_id: str | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a message (or a title, when ``message_id`` is None)."""

    session_id: str
    message_id: str | None
    title: str
    snippet: str
    created_at: datetime
    # (start, end) character offsets in ``snippet`` of the words that matched.
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class CompactedMessage:
    """A message a compaction replaced, as the compaction archive keeps it.

    ``compacted_by`` is the compaction id of the summary that replaced it; ``position`` its
    place among the messages that compaction replaced (0 = the oldest). A summary compacted
    again is one too (its ``message.compaction_id`` names the archive it stands for).
    """

    message: Message
    compacted_by: str
    position: int


@dataclass(slots=True)
class ImportedChat:
    """A chat read from an export file, ready to be stored as a new session.

    ``import_key`` says where it came from (e.g. ``chatgpt:<conversation id>``): a chat
    whose key (or id) is already stored is skipped, so importing a file twice adds nothing.
    ``compacted`` is the archive behind the history's compaction summaries, stored with it.
    """

    session: Session
    import_key: str
    compacted: list[CompactedMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Task:
    """A scheduled task: ``prompt`` is sent on ``schedule``, answers go into its one session.

    ``provider``/``model`` choose who answers, as a session's do (None: the default).
    ``last_status`` is how the latest run ended ("complete", "error", "cancelled",
    "skipped" or "missed") and ``last_note`` says it in words; ``unread`` is True while a
    finished run has not been looked at.
    """

    id: str
    name: str
    prompt: str
    schedule: str
    provider: str | None = None
    model: str | None = None
    enabled: bool = True
    created_at: datetime = field(default_factory=utcnow)
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_status: str | None = None
    last_note: str | None = None
    unread: bool = False
