"""Export chats as ChatDesk JSON (docs/export-format.md) or as Markdown."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatdesk.domain import (
    CompactedMessage,
    Message,
    Session,
    parse_image_data_url,
    sniff_image_format,
    utcnow,
)
from chatdesk.interchange.common import InterchangeError, Progress, iso
from chatdesk.sessions import SessionManager

EXPORT_FORMATS = ("markdown", "json")
FORMAT_NAME = "chatdesk-export"
FORMAT_VERSION = 1


async def export_sessions(
    manager: SessionManager,
    session_ids: Sequence[str] | None,
    out: Path,
    *,
    fmt: str,
    progress: Progress | None = None,
) -> list[Path]:
    """Export the given chats (all chats not in the Trash when None) to ``out``.

    JSON: ``out`` is one file holding every chat. Markdown: ``out`` is a ``.md`` file
    when one chat is exported, else a folder with one file per chat; images are written
    as files in a folder beside each Markdown file. Returns the files written.
    """
    if fmt not in EXPORT_FORMATS:
        raise InterchangeError(f"unknown export format {fmt!r} (use markdown or json)")
    if session_ids is None:
        session_ids = [s.id for s in await manager.list_sessions()]
    ids = list(session_ids)
    sessions = _iter_sessions(manager, ids)
    if fmt == "json":
        return [await _export_json(manager, sessions, len(ids), out, progress)]
    return await _export_markdown(sessions, len(ids), out, progress)


async def _iter_sessions(manager: SessionManager, ids: Sequence[str]) -> Any:
    for session_id in ids:
        session = await manager.read_session(session_id)
        if session is None:
            raise InterchangeError(f"there is no chat with id {session_id!r}")
        yield session


def message_record(message: Message) -> dict[str, Any]:
    """One message as the JSON export holds it (images stay data URLs)."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "created_at": iso(message.created_at),
        "tool_calls": message.tool_calls,
        "tool_call_id": message.tool_call_id,
        "compaction_id": message.compaction_id,
        "compacted_count": message.compacted_count if message.is_summary else None,
        "facts": message.meta,
    }


def compacted_record(entry: CompactedMessage) -> dict[str, Any]:
    """One archived message as the JSON export holds it: a message and its place."""
    return {
        **message_record(entry.message),
        "compacted_by": entry.compacted_by,
        "compacted_position": entry.position,
    }


async def _compaction_records(
    manager: SessionManager, session_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # The originals (what the chat really had, oldest first) and, apart, the summaries
    # that were compacted again: with both, an importer rebuilds every compaction.
    originals: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for entry in await manager.compaction_archive(session_id):
        target = summaries if entry.message.is_summary else originals
        target.append(compacted_record(entry))
    return originals, summaries


def session_record(session: Session) -> dict[str, Any]:
    """One chat as the JSON export holds it, without its compacted originals."""
    return {
        "id": session.id,
        "title": session.title,
        "kind": session.kind,
        "owner": session.owner,
        "system_prompt": session.system_prompt,
        "provider": session.provider,
        "model": session.model,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "pinned": session.pinned,
        "archived_at": iso(session.archived_at),
        "parent_session_id": session.parent_session_id,
        "parent_message_id": session.parent_message_id,
        "messages": [message_record(m) for m in session.history],
    }


async def _export_json(
    manager: SessionManager, sessions: Any, total: int, out: Path, progress: Progress | None
) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    # Written chat by chat, so exporting thousands of chats does not hold them all at once;
    # renamed into place at the end, so a failed export never leaves half a file as OUT.
    with partial.open("w", encoding="utf-8") as stream:
        header = json.dumps(
            {"format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": iso(utcnow())}
        )
        stream.write(header[:-1] + ', "sessions": [\n')
        done = 0
        async for session in sessions:
            record = session_record(session)
            originals, summaries = await _compaction_records(manager, session.id)
            record["compacted_messages"] = originals
            if summaries:
                record["compacted_summaries"] = summaries
            stream.write((",\n" if done else "") + json.dumps(record, ensure_ascii=False))
            done += 1
            if progress is not None:
                progress(done, total)
        stream.write("\n]}\n")
    partial.replace(out)
    return out


_UNSAFE = re.compile(r"[^\w\- ]+", re.UNICODE)
_ROLE_HEADINGS = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}


def _file_stem(title: str, session_id: str) -> str:
    stem = _UNSAFE.sub("", title).strip().replace(" ", "-")[:60] or "chat"
    return f"{stem}-{session_id[:8]}"


async def _export_markdown(
    sessions: Any, total: int, out: Path, progress: Progress | None
) -> list[Path]:
    single = total == 1 and out.suffix.lower() == ".md"
    folder = out.parent if single else out
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    done = 0
    async for session in sessions:
        target = out if single else folder / (_file_stem(session.title, session.id) + ".md")
        target.write_text(_markdown(session, target), encoding="utf-8")
        written.append(target)
        done += 1
        if progress is not None:
            progress(done, total)
    return written


def _markdown(session: Session, target: Path) -> str:
    images = target.with_name(target.stem + "-images")
    lines = [f"# {session.title}", ""]
    lines.append(f"*Exported from ChatDesk. Started {session.created_at:%Y-%m-%d %H:%M} UTC.*")
    if session.system_prompt:
        lines += ["", "**System prompt:**", "", session.system_prompt]
    for message in session.history:
        heading = _ROLE_HEADINGS.get(message.role, message.role.title())
        lines += ["", f"## {heading}", ""]
        if isinstance(message.content, str):
            lines.append(message.content)
        else:
            for block in message.content:
                if block.get("type") == "text":
                    lines.append(block["text"])
                elif block.get("type") == "image_url":
                    lines.append(_image_link(block["image_url"]["url"], images))
        if message.status != "complete":
            note = f"*({message.status}"
            lines.append(note + (f": {message.error})*" if message.error else ")*"))
    return "\n".join(lines) + "\n"


def _image_link(url: str, folder: Path) -> str:
    parsed = parse_image_data_url(url)
    extension = sniff_image_format(parsed.data) or parsed.mime.partition("/")[2] or "bin"
    name = f"{hashlib.sha256(parsed.data).hexdigest()[:16]}.{extension}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        path.write_bytes(parsed.data)
    return f"![image]({folder.name}/{name})"
