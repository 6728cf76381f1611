"""Import chats: ChatDesk's own JSON export and ChatGPT's export (JSON or its zip).

The whole file is read and checked before anything is written, so a file that is not a
valid export writes nothing. Chats already imported (same import key) or already there
(same id) are skipped and never changed.
"""

from __future__ import annotations

import asyncio
import json
import math
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from chatdesk.domain import (
    MESSAGE_STATUSES,
    ROLES,
    CompactedMessage,
    Content,
    ImportedChat,
    Message,
    Session,
    validate_content,
)
from chatdesk.interchange.chatgpt import read_chatgpt
from chatdesk.interchange.common import ImportResult, InterchangeError, Progress, parse_iso
from chatdesk.interchange.exporter import FORMAT_NAME, FORMAT_VERSION
from chatdesk.sessions import SessionManager

CHATGPT_FILE = "conversations.json"


async def import_file(
    manager: SessionManager, path: Path, *, progress: Progress | None = None
) -> ImportResult:
    """Import every chat of the export at ``path``; raise InterchangeError for a bad file."""
    chats, source = await asyncio.to_thread(read_export, path)
    added = await manager.import_chats(chats, progress=progress)
    return ImportResult(added=added, skipped=len(chats) - len(added), source=source)


def read_export(path: Path) -> tuple[list[ImportedChat], str]:
    """The chats in an export file and which kind of export it is ("chatgpt" or "chatdesk")."""
    try:
        return _read_export(Path(path))
    except InterchangeError as exc:
        message = str(exc)
        if "nothing was imported" not in message.lower():
            message = f"{Path(path).name}: {message}. Nothing was imported."
        raise InterchangeError(message) from None


def _read_export(path: Path) -> tuple[list[ImportedChat], str]:
    if not path.is_file():
        raise InterchangeError("there is no such file")
    if zipfile.is_zipfile(path):
        return _read_zip_export(path)
    return _chats_of(_load_json(path.read_bytes(), path.name), {}, path.name)


def _chats_of(data: Any, images: Mapping[str, bytes], name: str) -> tuple[list[ImportedChat], str]:
    if isinstance(data, dict) and data.get("format") == FORMAT_NAME:
        return read_chatdesk(data), "chatdesk"
    if isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data):
        return read_chatgpt(data, images), "chatgpt"
    raise InterchangeError(
        f"{name} is not a ChatGPT export (conversations.json or its zip) "
        "or a ChatDesk JSON export. Nothing was imported."
    )


def _load_json(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InterchangeError(
            f"{name} is not valid JSON ({exc}); it is not an export ChatDesk can read. "
            "Nothing was imported."
        ) from None


def _read_zip_export(path: Path) -> tuple[list[ImportedChat], str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            main = next((n for n in names if Path(n).name == CHATGPT_FILE), None)
            if main is None:
                raise InterchangeError(
                    f"{path.name} is a zip without a {CHATGPT_FILE}; it is not a ChatGPT "
                    "export. Nothing was imported."
                )
            data = _load_json(archive.read(main), f"{path.name}/{main}")
            return _chats_of(data, _ZipImages(archive), path.name)
    except (zipfile.BadZipFile, OSError) as exc:
        message = f"{path.name} is a damaged zip ({exc}). Nothing was imported."
        raise InterchangeError(message) from None


class _ZipImages(Mapping[str, bytes]):
    """The images beside conversations.json, by file name, read from the zip on demand."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self._archive = archive
        # Uploaded and generated images are named after the file id messages point at.
        self._members = {
            Path(info.filename).name: info
            for info in archive.infolist()
            if not info.is_dir() and Path(info.filename).suffix.lower() in _IMAGE_SUFFIXES
        }

    def __getitem__(self, name: str) -> bytes:
        return self._archive.read(self._members[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}


def read_chatdesk(data: dict[str, Any]) -> list[ImportedChat]:
    """The chats of a ChatDesk JSON export, checked field by field."""
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InterchangeError(
            f"This ChatDesk export has format version {version!r}; this ChatDesk reads "
            f"version {FORMAT_VERSION} and older. Nothing was imported."
        )
    sessions = data.get("sessions")
    if not isinstance(sessions, list):
        raise InterchangeError("The ChatDesk export has no list of sessions. Nothing was imported.")
    return [_chatdesk_chat(record, i) for i, record in enumerate(sessions)]


def _field(record: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = record.get(name)
    if not isinstance(value, kind):
        raise InterchangeError(f"{where}: '{name}' is missing or has the wrong type")
    return value


def _optional(record: dict[str, Any], name: str, where: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise InterchangeError(f"{where}: '{name}' must be text")
    return value


def _tool_calls(item: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    calls = item.get("tool_calls")
    if calls is None:
        return None
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise InterchangeError(f"{where}: 'tool_calls' must be a list of objects")
    return calls


def _chatdesk_message(item: Any, at: str) -> Message:
    if not isinstance(item, dict):
        raise InterchangeError(f"{at} is not an object. Nothing was imported.")
    role = _field(item, "role", str, at)
    if role not in ROLES:
        raise InterchangeError(f"{at}: unknown role {role!r}. Nothing was imported.")
    content = item.get("content")
    try:
        validate_content(content)
    except ValueError as exc:
        raise InterchangeError(f"{at}: {exc}. Nothing was imported.") from None
    status = _field(item, "status", str, at)
    if status not in MESSAGE_STATUSES:
        raise InterchangeError(f"{at}: unknown status {status!r}. Nothing was imported.")
    # A summary written before compaction ids has none: it stays a plain system message.
    compaction_id = _optional(item, "compaction_id", at)
    compacted_count = 0
    if compaction_id is not None:
        if not compaction_id:
            raise InterchangeError(f"{at}: 'compaction_id' is empty")
        compacted_count = _whole_number(item, "compacted_count", at)
    return Message(
        role=role,
        content=cast(Content, content),  # validated just above
        id=_field(item, "id", str, at),
        created_at=parse_iso(item.get("created_at"), at),
        # A reply that was still streaming when exported can no longer finish.
        status="interrupted" if status == "streaming" else status,
        error=_optional(item, "error", at),
        tool_calls=_tool_calls(item, at),
        tool_call_id=_optional(item, "tool_call_id", at),
        compaction_id=compaction_id,
        compacted_count=compacted_count,
        meta=_reply_facts(item.get("facts")),
    )


def _is_amount(value: object) -> bool:
    """A finite number, 0 or more (a bool is not one)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


# The facts a reply may carry (chat/reply.py writes them) and what each must be.
_FACT_CHECKS: dict[str, Callable[[object], bool]] = {
    "model": lambda v: v is None or isinstance(v, str),
    "seconds": _is_amount,
    "tokens": lambda v: _is_amount(v) and isinstance(v, int),
    "tokens_estimated": lambda v: isinstance(v, bool),
    "tokens_per_second": _is_amount,
}


def _reply_facts(value: object) -> dict[str, Any] | None:
    """The reply facts of a message record, checked fact by fact.

    The facts only describe a reply, so a wrong one is dropped alone rather than
    refusing the file: facts that are not an object, unknown facts and facts of the
    wrong type are left out, and None comes back when no fact is left.
    """
    if not isinstance(value, dict):
        return None
    kept = {
        name: value[name]
        for name, fits in _FACT_CHECKS.items()
        if name in value and fits(value[name])
    }
    return kept or None


def _whole_number(item: dict[str, Any], name: str, at: str) -> int:
    value = item.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InterchangeError(f"{at}: '{name}' must be a whole number, 0 or more")
    return value


def _compaction_archive(
    record: dict[str, Any], history: list[Message], where: str
) -> list[CompactedMessage]:
    """The archive behind the history's summaries, checked so every compaction rebuilds.

    A file from before compaction ids (no summary has one) has nothing to rebuild: its
    compacted originals are not read, and its summaries stay plain system messages.
    """
    top = [m.compaction_id for m in history if m.compaction_id is not None]
    if not top:
        return []
    entries: list[CompactedMessage] = []
    for name in ("compacted_messages", "compacted_summaries"):
        items = record.get(name, [])
        if not isinstance(items, list):
            raise InterchangeError(f"{where}: '{name}' must be a list")
        for j, item in enumerate(items):
            at = f"{where}, {name} entry {j + 1}"
            message = _chatdesk_message(item, at)
            compacted_by = _field(item, "compacted_by", str, at)
            position = _whole_number(item, "compacted_position", at)
            entries.append(CompactedMessage(message, compacted_by, position))
    summaries: set[str] = set()
    for message in [*history, *(e.message for e in entries)]:
        cid = message.compaction_id
        if cid is not None:
            if cid in summaries:
                raise InterchangeError(f"{where}: two summaries have compaction id {cid!r}")
            summaries.add(cid)
    groups: dict[str, list[CompactedMessage]] = {}
    for entry in entries:
        groups.setdefault(entry.compacted_by, []).append(entry)
    if strays := sorted(set(groups) - summaries):
        raise InterchangeError(
            f"{where}: compacted messages name compaction {strays[0]!r}, which no summary has"
        )
    for cid in sorted(summaries):
        positions = [e.position for e in groups.get(cid, [])]
        if not positions:
            raise InterchangeError(
                f"{where}: the messages compaction {cid!r} replaced are not in the file"
            )
        if len(set(positions)) != len(positions):
            raise InterchangeError(
                f"{where}: two messages of compaction {cid!r} have the same 'compacted_position'"
            )
    # Every compaction must hang below a summary of the history (no loops, no strays).
    reached: set[str] = set()
    pending = list(top)
    while pending:
        cid = pending.pop()
        if cid not in reached:
            reached.add(cid)
            pending.extend(_compactions_inside(groups[cid]))
    if unreached := sorted(summaries - reached):
        raise InterchangeError(
            f"{where}: compaction {unreached[0]!r} is not behind any summary in the chat's messages"
        )
    return entries


def _chatdesk_chat(record: Any, index: int) -> ImportedChat:
    where = f"session {index + 1}"
    if not isinstance(record, dict):
        raise InterchangeError(f"{where} is not an object. Nothing was imported.")
    session_id = _field(record, "id", str, where)
    messages = [
        _chatdesk_message(item, f"{where}, message {j + 1}")
        for j, item in enumerate(_field(record, "messages", list, where))
    ]
    compacted = _compaction_archive(record, messages, where)
    archived = record.get("archived_at")
    session = Session(
        id=session_id,
        owner=_field(record, "owner", str, where),
        title=_field(record, "title", str, where) or "Imported chat",
        # A scheduled task's chat comes back as a plain chat: the task itself is not in
        # the export, and a second chat for a task would collide with its own.
        kind="chat",
        system_prompt=_optional(record, "system_prompt", where),
        provider=_optional(record, "provider", where),
        model=_optional(record, "model", where),
        created_at=parse_iso(record.get("created_at"), where),
        updated_at=parse_iso(record.get("updated_at"), where),
        history=messages,
        pinned=bool(record.get("pinned", False)),
        archived_at=None if archived is None else parse_iso(archived, where),
        parent_session_id=_optional(record, "parent_session_id", where),
        parent_message_id=_optional(record, "parent_message_id", where),
    )
    return ImportedChat(session=session, import_key=f"chatdesk:{session_id}", compacted=compacted)


def _compactions_inside(entries: list[CompactedMessage]) -> list[str]:
    """The compaction ids of the summaries among ``entries`` (compacted again)."""
    return [e.message.compaction_id for e in entries if e.message.compaction_id is not None]
