"""A reply's facts (model, time, speed) through a ChatDesk JSON export and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chatdesk.interchange import export_sessions, import_file
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url

# What the engine stores with a streamed reply (chat/reply.py, _ReplyFacts.meta).
FACTS = {
    "model": "llama-3-8b",
    "seconds": 2.37,
    "tokens": 41,
    "tokens_estimated": True,
    "tokens_per_second": 17.3,
}


async def _chat_with_a_reply_with_facts(manager: SessionManager) -> str:
    session = await manager.create_session("Facts")
    await manager.add_message(session.id, "user", "how fast are owls?")
    reply = await manager.add_message(session.id, "assistant", "", status="streaming")
    await manager.update_message(
        session.id, reply.id, content="about 65 km/h", status="complete", meta=FACTS
    )
    return session.id


async def _import_into_fresh_database(tmp_path: Path, export: Path) -> SessionManager:
    """A new database with ``export`` imported, reopened so everything is read from disk."""
    url = sqlite_url(tmp_path / "fresh.db")
    first = await SessionManager.open(url)
    try:
        result = await import_file(first, export)
        assert len(result.added) == 1
    finally:
        await first.close()
    return await SessionManager.open(url)


def _write_export(tmp_path: Path, change: Any) -> Path:
    """A ChatDesk JSON export of one chat whose reply's record ``change`` edits."""
    reply: dict[str, Any] = {
        "id": "reply-1",
        "role": "assistant",
        "content": "about 65 km/h",
        "status": "complete",
        "error": None,
        "created_at": "2026-12-01T10:00:01+00:00",
    }
    change(reply)
    document = {
        "format": "chatdesk-export",
        "version": 1,
        "sessions": [
            {
                "id": "chat-1",
                "title": "Owls",
                "owner": "local",
                "created_at": "2026-12-01T10:00:00+00:00",
                "updated_at": "2026-12-01T10:00:01+00:00",
                "messages": [
                    {
                        "id": "question-1",
                        "role": "user",
                        "content": "how fast are owls?",
                        "status": "complete",
                        "created_at": "2026-12-01T10:00:00+00:00",
                    },
                    reply,
                ],
            }
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


async def test_a_replys_facts_survive_an_export_and_import(
    manager: SessionManager, tmp_path: Path
) -> None:
    session_id = await _chat_with_a_reply_with_facts(manager)
    out = tmp_path / "export.json"
    await export_sessions(manager, [session_id], out, fmt="json")
    record = json.loads(out.read_text("utf-8"))["sessions"][0]
    assert [m["facts"] for m in record["messages"]] == [None, FACTS]

    fresh = await _import_into_fresh_database(tmp_path, out)
    try:
        copy = await fresh.require_session(session_id)
        original = await manager.require_session(session_id)
        assert [m.meta for m in copy.history] == [None, FACTS]
        assert copy.history == original.history
    finally:
        await fresh.close()


async def test_a_file_without_facts_imports_as_before(tmp_path: Path) -> None:
    fresh = await _import_into_fresh_database(tmp_path, _write_export(tmp_path, lambda r: None))
    try:
        copy = await fresh.require_session("chat-1")
        assert [m.content for m in copy.history] == ["how fast are owls?", "about 65 km/h"]
        assert [m.meta for m in copy.history] == [None, None]
    finally:
        await fresh.close()


async def test_facts_that_are_not_an_object_are_dropped_and_the_chat_imports(
    tmp_path: Path,
) -> None:
    export = _write_export(tmp_path, lambda r: r.update(facts=["llama", 2.3]))
    fresh = await _import_into_fresh_database(tmp_path, export)
    try:
        reply = (await fresh.require_session("chat-1")).history[1]
        assert (reply.content, reply.meta) == ("about 65 km/h", None)
    finally:
        await fresh.close()


async def test_each_fact_of_the_wrong_type_is_dropped_alone(tmp_path: Path) -> None:
    facts = {
        "model": 7,  # not text
        "seconds": 1.5,
        "tokens": True,  # a bool is not a count
        "tokens_estimated": "yes",  # not a bool
        "tokens_per_second": -3,  # no speed is negative
        "colour": "blue",  # not a fact ChatDesk knows
    }
    export = _write_export(tmp_path, lambda r: r.update(facts=facts))
    fresh = await _import_into_fresh_database(tmp_path, export)
    try:
        reply = (await fresh.require_session("chat-1")).history[1]
        assert reply.meta == {"seconds": 1.5}
    finally:
        await fresh.close()


async def test_facts_with_nothing_valid_left_import_as_none(tmp_path: Path) -> None:
    export = _write_export(tmp_path, lambda r: r.update(facts={"seconds": "fast", "tokens": 1.5}))
    fresh = await _import_into_fresh_database(tmp_path, export)
    try:
        assert (await fresh.require_session("chat-1")).history[1].meta is None
    finally:
        await fresh.close()


async def test_a_compacted_reply_is_exported_without_facts(
    manager: SessionManager, tmp_path: Path
) -> None:
    # The compaction archive has no column for facts: the export says so with null.
    session_id = await _chat_with_a_reply_with_facts(manager)
    history = (await manager.require_session(session_id)).history
    await manager.compact_messages(session_id, [m.id for m in history], "Summary: owls.")
    out = tmp_path / "export.json"
    await export_sessions(manager, [session_id], out, fmt="json")
    record = json.loads(out.read_text("utf-8"))["sessions"][0]
    assert [m["facts"] for m in record["compacted_messages"]] == [None, None]

    fresh = await _import_into_fresh_database(tmp_path, out)
    try:
        archived = await fresh.compacted_messages(session_id)
        assert [(m.content, m.meta) for m in archived] == [
            ("how fast are owls?", None),
            ("about 65 km/h", None),
        ]
    finally:
        await fresh.close()
