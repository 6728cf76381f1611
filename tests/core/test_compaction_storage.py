"""The SessionManager's side of compaction: originals kept, summaries editable, undo exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatdesk.sessions import SessionManager
from tests.core.conftest import png_data_url, query


async def _chat(manager: SessionManager, count: int) -> str:
    session = await manager.create_session("long chat")
    for i in range(count):
        role = "user" if i % 2 == 0 else "assistant"
        await manager.add_message(session.id, role, f"message {i}")
    return session.id


async def test_compaction_keeps_every_original_and_undo_restores_them(
    manager: SessionManager, db_url: str, db_path: Path
) -> None:
    session_id = await _chat(manager, 6)
    session = await manager.require_session(session_id)
    originals = list(session.history)

    summary = await manager.compact_messages(
        session_id, [m.id for m in originals[:4]], "They counted to three."
    )

    assert summary.role == "system" and summary.compacted_count == 4
    assert [m.id for m in session.history] == [summary.id, originals[4].id, originals[5].id]
    assert await manager.compacted_messages(session_id) == originals[:4]
    assert query(db_path, "SELECT message_count FROM sessions") == [(3,)]

    # A fresh manager reads the same from disk.
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        history = (await reopened.require_session(session_id)).history
        assert [m.content for m in history] == ["They counted to three.", "message 4", "message 5"]
        assert history[0].compaction_id == summary.compaction_id
        assert history[0].compacted_count == 4
        assert await reopened.compacted_messages(session_id) == originals[:4]

        restored = await reopened.undo_compaction(session_id)
        assert restored == originals[:4]
        assert (await reopened.require_session(session_id)).history == originals
        assert await reopened.compacted_messages(session_id) == []
        assert query(
            db_path,
            "SELECT content FROM messages WHERE session_id = ? ORDER BY position",
            (session_id,),
        ) == [(f"message {i}",) for i in range(6)]
        assert query(db_path, "SELECT count(*) FROM compacted_messages") == [(0,)]
        # New messages still append after the restored ones.
        await reopened.add_message(session_id, "user", "message 6")
        assert query(
            db_path,
            "SELECT position FROM messages WHERE session_id = ? ORDER BY position",
            (session_id,),
        )[-1] > (5,)
    finally:
        await reopened.close()


async def test_a_compacted_summary_compacted_again_still_leads_to_the_originals(
    manager: SessionManager,
) -> None:
    session_id = await _chat(manager, 8)
    originals = list((await manager.require_session(session_id)).history)
    first = await manager.compact_messages(session_id, [m.id for m in originals[:4]], "first")
    history = (await manager.require_session(session_id)).history
    second = await manager.compact_messages(session_id, [m.id for m in history[:3]], "second")

    assert second.compacted_count == 6
    assert await manager.compacted_messages(session_id) == originals[:6]
    assert await manager.compacted_messages(session_id, first.compaction_id) == originals[:4]

    await manager.undo_compaction(session_id)
    history = (await manager.require_session(session_id)).history
    assert [m.content for m in history] == ["first", *(f"message {i}" for i in range(4, 8))]
    await manager.undo_compaction(session_id)
    assert (await manager.require_session(session_id)).history == originals


async def test_an_edited_summary_is_stored_and_the_images_of_originals_are_kept(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    picture = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    with_image = await manager.add_message(session.id, "user", picture)
    await manager.add_message(session.id, "assistant", "a red square")
    await manager.add_message(session.id, "user", "thanks")
    summary = await manager.compact_messages(
        session.id, [with_image.id, session.history[1].id], "A picture was shown."
    )
    assert query(db_path, "SELECT count(*) FROM images") == [(1,)]

    await manager.update_message(session.id, summary.id, content="A red square was shown.")
    assert query(db_path, "SELECT content FROM messages WHERE id = ?", (summary.id,)) == [
        ("A red square was shown.",)
    ]
    assert (await manager.compacted_messages(session.id))[0].content == picture

    await manager.undo_compaction(session.id)
    assert session.history[0].content == picture
    assert query(db_path, "SELECT count(*) FROM message_images") == [(1,)]


async def test_only_consecutive_messages_can_be_compacted_and_nothing_changes_otherwise(
    manager: SessionManager,
) -> None:
    session_id = await _chat(manager, 4)
    history = list((await manager.require_session(session_id)).history)
    with pytest.raises(ValueError, match="consecutive"):
        await manager.compact_messages(session_id, [history[0].id, history[2].id], "x")
    with pytest.raises(ValueError, match="no compaction to undo"):
        await manager.undo_compaction(session_id)
    assert (await manager.require_session(session_id)).history == history


async def test_tool_calls_and_results_round_trip_through_the_database(
    manager: SessionManager, db_url: str
) -> None:
    session = await manager.create_session()
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "manage_session", "arguments": '{"action": "info"}'},
        }
    ]
    await manager.add_message(session.id, "user", "how long is this chat?")
    await manager.add_message(session.id, "assistant", "", tool_calls=calls)
    await manager.add_message(session.id, "tool", '{"messages": 2}', tool_call_id="call_1")
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        context = await reopened.get_context_messages(session.id)
    finally:
        await reopened.close()
    assert context[1] == {"role": "assistant", "content": "", "tool_calls": calls}
    assert context[2] == {"role": "tool", "content": '{"messages": 2}', "tool_call_id": "call_1"}
