"""Compacted chats through a ChatDesk JSON export and back: summaries, originals, Undo."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatdesk.domain import ImportedChat, Message, Session
from chatdesk.interchange import InterchangeError, export_sessions, import_file
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import png_data_url, query

OLD_EXPORT = (
    Path(__file__).resolve().parents[1] / "fixtures" / "chatdesk" / "compacted-without-ids.json"
)


def _shape(messages: list[Message]) -> list[tuple[Any, ...]]:
    """What a message is, apart from its id: role, content, status and tool fields."""
    return [
        (m.role, m.content, m.status, m.tool_calls, m.tool_call_id, m.compacted_count)
        for m in messages
    ]


async def _twice_compacted_chat(manager: SessionManager) -> tuple[str, list[Message]]:
    """A chat of ten messages compacted three times, once a summary of a summary.

    Returns its id and its history before any compaction.
    """
    session = await manager.create_session("Owls, compacted", system_prompt="be brief")
    image = [
        {"type": "text", "text": "what owl is this"},
        {"type": "image_url", "image_url": {"url": png_data_url(rgb=(10, 200, 10))}},
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    await manager.add_message(session.id, "user", image)
    await manager.add_message(session.id, "assistant", "a barn owl")
    await manager.add_message(session.id, "assistant", "", tool_calls=[call])
    await manager.add_message(session.id, "tool", "tool output", tool_call_id="call_1")
    for i in range(4, 10):
        role = "user" if i % 2 == 0 else "assistant"
        await manager.add_message(session.id, role, f"message {i}")
    history = list((await manager.require_session(session.id)).history)

    inner = await manager.compact_messages(session.id, [m.id for m in history[:4]], "S1: owls")
    await manager.compact_messages(
        session.id, [inner.id, history[4].id, history[5].id], "S2: owls and more"
    )
    await manager.compact_messages(session.id, [history[7].id, history[8].id], "S3: later")
    return session.id, history


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[SessionManager]:
    manager = await SessionManager.open(sqlite_url(tmp_path / "fresh.db"))
    yield manager
    await manager.close()


async def _export(manager: SessionManager, session_id: str, out: Path) -> dict[str, Any]:
    await export_sessions(manager, [session_id], out, fmt="json")
    return json.loads(out.read_text("utf-8"))  # type: ignore[no-any-return]


async def test_a_twice_compacted_chat_comes_back_whole_and_can_be_undone(
    manager: SessionManager, fresh: SessionManager, tmp_path: Path
) -> None:
    session_id, before = await _twice_compacted_chat(manager)
    compacted = list((await manager.require_session(session_id)).history)
    assert [m.compacted_count for m in compacted if m.is_summary] == [6, 2]
    out = tmp_path / "export.json"
    record = (await _export(manager, session_id, out))["sessions"][0]
    # What the file says: who holds each message, and the summary compacted again.
    inner = record["compacted_summaries"][0]
    outer, later = compacted[0].compaction_id, compacted[2].compaction_id
    assert (inner["compacted_by"], inner["compacted_position"]) == (outer, 0)
    assert [m["compacted_by"] for m in record["compacted_messages"]] == (
        [inner["compaction_id"]] * 4 + [outer] * 2 + [later] * 2
    )

    assert (await import_file(fresh, out)).added == [session_id]

    # Into an empty database every id is free: the copy is the original, summaries too.
    copy = await fresh.require_session(session_id)
    assert copy.history == compacted
    assert await fresh.compacted_messages(session_id) == await manager.compacted_messages(
        session_id
    )
    assert await fresh.compacted_messages(session_id) == before[:6] + before[7:9]
    assert await fresh.compaction_archive(session_id) == await manager.compaction_archive(
        session_id
    )

    # Undo, step by step, does in the copy exactly what it does in the original.
    for step in range(3):
        undone = await fresh.undo_compaction(session_id)
        assert undone == await manager.undo_compaction(session_id), f"undo {step + 1}"
        assert (await fresh.require_session(session_id)).history == (
            await manager.require_session(session_id)
        ).history
    assert (await fresh.require_session(session_id)).history == before
    assert await fresh.compacted_messages(session_id) == []
    # The picture came back with its message; the index finds the originals again.
    assert before[0].content == (await fresh.require_session(session_id)).history[0].content
    assert len(await fresh.search("message 8")) == 1


async def test_an_imported_compaction_is_kept_on_disk_and_importing_again_adds_nothing(
    manager: SessionManager, tmp_path: Path
) -> None:
    session_id, before = await _twice_compacted_chat(manager)
    out = tmp_path / "export.json"
    await _export(manager, session_id, out)
    target = tmp_path / "target.db"
    first = await SessionManager.open(sqlite_url(target))
    try:
        assert (await import_file(first, out)).added == [session_id]
        again = await import_file(first, out)
        assert again.added == [] and again.skipped == 1
    finally:
        await first.close()
    assert query(target, "SELECT count(*) FROM compacted_messages") == [(8 + 1,)]

    reopened = await SessionManager.open(sqlite_url(target))
    try:
        assert await reopened.compacted_messages(session_id) == before[:6] + before[7:9]
        await reopened.undo_compaction(session_id)
        await reopened.undo_compaction(session_id)
        await reopened.undo_compaction(session_id)
        assert (await reopened.require_session(session_id)).history == before
    finally:
        await reopened.close()
    assert query(target, "SELECT count(*) FROM compacted_messages") == [(0,)]


async def test_taken_ids_are_renamed_alike_in_the_chat_and_its_archive(
    manager: SessionManager, tmp_path: Path
) -> None:
    """The same chat under another id into its own database: every message id and
    compaction id is taken, so all get new ones, and both chats still undo on their own."""
    session_id, before = await _twice_compacted_chat(manager)
    out = tmp_path / "export.json"
    document = await _export(manager, session_id, out)
    document["sessions"][0]["id"] = "copy-of-owls"
    out.write_text(json.dumps(document), "utf-8")

    assert (await import_file(manager, out)).added == ["copy-of-owls"]

    original = (await manager.require_session(session_id)).history
    copy = (await manager.require_session("copy-of-owls")).history
    assert _shape(copy) == _shape(original)
    assert not {m.id for m in copy} & {m.id for m in original}
    assert not {m.compaction_id for m in copy if m.is_summary} & {
        m.compaction_id for m in original if m.is_summary
    }
    copied = await manager.compacted_messages("copy-of-owls")
    assert _shape(copied) == _shape(before[:6] + before[7:9])
    assert not {m.id for m in copied} & {m.id for m in before}

    for _ in range(3):
        await manager.undo_compaction("copy-of-owls")
    assert _shape((await manager.require_session("copy-of-owls")).history) == _shape(before)
    # The original chat's compactions were not touched by the copy's.
    assert (await manager.require_session(session_id)).history == original
    assert await manager.compacted_messages(session_id) == before[:6] + before[7:9]


def _drop_summary_archive(record: dict[str, Any]) -> None:
    held = record["compacted_summaries"][0]["compaction_id"]
    record["compacted_messages"] = [
        m for m in record["compacted_messages"] if m["compacted_by"] != held
    ]


def _stray_holder(record: dict[str, Any]) -> None:
    record["compacted_messages"][0]["compacted_by"] = "no-such-compaction"


def _bad_content(record: dict[str, Any]) -> None:
    record["compacted_messages"][1]["content"] = {"not": "content"}


def _no_position(record: dict[str, Any]) -> None:
    del record["compacted_summaries"][0]["compacted_position"]


def _loop(record: dict[str, Any]) -> None:
    # The inner summary claims to be held by its own compaction: it hangs below nothing.
    inner = record["compacted_summaries"][0]
    inner["compacted_by"], inner["compacted_position"] = inner["compaction_id"], 99


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_drop_summary_archive, "are not in the file"),
        (_stray_holder, "'no-such-compaction', which no summary has"),
        (_bad_content, "compacted_messages entry 2"),
        (_no_position, "'compacted_position'"),
        (_loop, "is not behind any summary"),
    ],
)
async def test_a_file_with_a_broken_compacted_entry_writes_nothing(
    manager: SessionManager,
    fresh: SessionManager,
    tmp_path: Path,
    damage: Callable[[dict[str, Any]], None],
    said: str,
) -> None:
    plain = await manager.create_session("A good chat first")
    await manager.add_message(plain.id, "user", "hello")
    session_id, _ = await _twice_compacted_chat(manager)
    out = tmp_path / "export.json"
    await export_sessions(manager, [plain.id, session_id], out, fmt="json")
    document = json.loads(out.read_text("utf-8"))
    damage(document["sessions"][1])
    out.write_text(json.dumps(document), "utf-8")

    with pytest.raises(InterchangeError, match="Nothing was imported") as caught:
        await import_file(fresh, out)
    assert said in str(caught.value) and "session 2" in str(caught.value)
    assert await fresh.list_sessions() == []
    db = tmp_path / "fresh.db"
    assert query(db, "SELECT count(*) FROM messages") == [(0,)]
    assert query(db, "SELECT count(*) FROM compacted_messages") == [(0,)]


async def test_an_export_from_before_compaction_ids_still_imports_its_summary_as_text(
    fresh: SessionManager,
    tmp_path: Path,
) -> None:
    result = await import_file(fresh, OLD_EXPORT)
    assert len(result.added) == 1
    session_id = result.added[0]
    history = (await fresh.require_session(session_id)).history
    assert [(m.role, m.content) for m in history] == [
        ("system", "The user asked where owls sleep: hollow trees."),
        ("user", "And barn owls?"),
        ("assistant", "In barns, as the name says."),
    ]
    assert not any(m.is_summary for m in history)
    assert await fresh.compacted_messages(session_id) == []
    assert query(tmp_path / "fresh.db", "SELECT count(*) FROM compacted_messages") == [(0,)]
    with pytest.raises(ValueError, match="no compaction to undo"):
        await fresh.undo_compaction(session_id)


async def test_the_manager_refuses_a_summary_without_its_originals(
    fresh: SessionManager, tmp_path: Path
) -> None:
    """Whoever builds the chats, the manager stores no summary Undo could not undo."""
    summary = Message(role="system", content="S", compaction_id="c1", compacted_count=2)
    session = Session(title="half a compaction", history=[summary])
    chat = ImportedChat(session=session, import_key="test:half")
    with pytest.raises(ValueError, match="do not match its summaries"):
        await fresh.import_chats([chat])
    assert query(tmp_path / "fresh.db", "SELECT count(*) FROM sessions") == [(0,)]
