"""The SessionManager contract, against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from chatdesk.domain import Message, Session
from chatdesk.sessions import (
    MESSAGE_ADDED,
    SESSION_DELETED,
    SessionEvent,
    SessionManager,
    SessionNotFoundError,
)
from chatdesk.storage import StorageError
from tests.core.conftest import png_data_url, query


def image_message(text: str = "what is this?", colour: tuple[int, int, int] = (1, 2, 3)) -> list:
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": png_data_url(rgb=colour), "detail": "low"}},
    ]


async def test_session_not_found_error_is_a_lookup_error(manager: SessionManager) -> None:
    assert issubclass(SessionNotFoundError, LookupError)
    with pytest.raises(SessionNotFoundError):
        await manager.add_message("missing", "user", "hi")
    assert await manager.get_session("missing") is None


async def test_created_session_is_persisted_before_returning(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session("Plans", system_prompt="Be brief.")
    rows = query(db_path, "SELECT id, title, owner, kind, message_count FROM sessions")
    assert rows == [(session.id, "Plans", "local", "chat", 0)]
    assert session.title == "Plans"
    assert session.history == []


async def test_histories_are_isolated_between_sessions(manager: SessionManager) -> None:
    first = await manager.create_session("first")
    second = await manager.create_session("second")
    await manager.add_message(first.id, "user", "for the first only")
    assert first.history is not second.history
    assert [m.content for m in first.history] == ["for the first only"]
    assert second.history == []


async def test_a_reference_to_history_sees_later_changes(manager: SessionManager) -> None:
    session = await manager.create_session()
    history = session.history
    await manager.add_message(session.id, "user", "one")
    await manager.add_message(session.id, "assistant", "two")
    assert [m.content for m in history] == ["one", "two"]
    await manager.replace_messages(session.id, [{"role": "user", "content": "summary"}])
    assert [m.content for m in history] == ["summary"]
    await manager.truncate_messages(session.id, 0)
    assert history == []


async def test_add_message_appends_once_and_persists(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    before = session.updated_at
    seen: list[SessionEvent] = []
    manager.add_listener(seen.append)
    message = await manager.add_message(session.id, "user", "hello")
    assert session.history == [message]
    assert session.message_count == 1
    assert session.updated_at >= before
    rows = query(db_path, "SELECT id, role, content, position FROM messages")
    assert rows == [(message.id, "user", "hello", 0)]
    assert query(db_path, "SELECT message_count FROM sessions") == [(1,)]
    assert seen == [SessionEvent(MESSAGE_ADDED, session.id, message.id)]


async def test_add_message_delegates_to_session_add_message(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await manager.create_session()
    calls: list[Message] = []
    original = Session.add_message

    def spy(self: Session, message: Message) -> Message:
        calls.append(message)
        return original(self, message)

    monkeypatch.setattr(Session, "add_message", spy)
    message = await manager.add_message(session.id, "user", "hi")
    assert calls == [message]
    assert session.history == [message]


@pytest.mark.parametrize(
    ("role", "content"),
    [
        ("robot", "hi"),
        ("user", [{"type": "video"}]),
        ("user", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]),
        ("user", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]),
        ("user", 12),
    ],
)
async def test_bad_input_writes_nothing(
    manager: SessionManager, db_path: Path, role: str, content: object
) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "kept")
    with pytest.raises(ValueError):
        await manager.add_message(session.id, role, content)  # type: ignore[arg-type]
    assert [m.content for m in session.history] == ["kept"]
    assert query(db_path, "SELECT count(*) FROM messages") == [(1,)]
    assert query(db_path, "SELECT message_count FROM sessions") == [(1,)]
    assert query(db_path, "SELECT count(*) FROM images") == [(0,)]


async def test_multimodal_content_round_trips_a_restart(db_url: str, db_path: Path) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session("pictures", system_prompt="Describe images.")
    await manager.add_message(session.id, "user", image_message())
    await manager.add_message(session.id, "assistant", "A small red square.")
    await manager.add_message(session.id, "user", image_message("again?"))  # same picture
    expected = [(m.role, m.content) for m in session.history]
    await manager.close()

    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.get_session(session.id)
        assert loaded is not None
        assert [(m.role, m.content) for m in loaded.history] == expected
        assert loaded.system_prompt == "Describe images."
        context = await reopened.get_context_messages(session.id)
        assert context[0] == {"role": "system", "content": "Describe images."}
        assert context[1] == {"role": "user", "content": image_message()}
    finally:
        await reopened.close()
    # The picture is stored once, as bytes, and the message rows carry no base64.
    assert query(db_path, "SELECT count(*) FROM images") == [(1,)]
    cells = [row[0] for row in query(db_path, "SELECT content FROM messages")]
    assert not any("base64" in cell for cell in cells)


async def test_a_corrupt_content_cell_loads_as_text(db_url: str, db_path: Path) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session()
    message = await manager.add_message(session.id, "user", [{"type": "text", "text": "hi"}])
    await manager.add_message(session.id, "assistant", "fine")
    await manager.close()
    broken = '[{"type": "text", "text": "hi"'
    query(db_path, "UPDATE messages SET content = ? WHERE id = ?", (broken, message.id))

    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.get_session(session.id)
        assert loaded is not None
        assert [m.content for m in loaded.history] == [broken, "fine"]
    finally:
        await reopened.close()


async def test_get_session_hydrates_lazily_and_once(db_url: str) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "hello")
    await manager.close()

    reopened = await SessionManager.open(db_url)
    try:
        first, second = await asyncio.gather(
            reopened.get_session(session.id), reopened.get_session(session.id)
        )
        assert first is second
        assert first is not None and [m.content for m in first.history] == ["hello"]
        assert await reopened.get_session(session.id) is first
    finally:
        await reopened.close()


async def test_list_sessions_is_most_recent_first_and_filters_by_owner(
    manager: SessionManager,
) -> None:
    old = await manager.create_session("old")
    other = await manager.create_session("other", owner="api-user")
    recent = await manager.create_session("recent")
    await manager.add_message(old.id, "user", "bump")  # now the most recent activity
    listed = await manager.list_sessions()
    assert [s.id for s in listed] == [old.id, recent.id, other.id]
    assert listed[0].message_count == 1 and listed[0].title == "old"
    assert [s.id for s in await manager.list_sessions(owner="api-user")] == [other.id]


async def test_context_messages_put_the_system_prompt_first(manager: SessionManager) -> None:
    session = await manager.create_session(system_prompt="You are terse.")
    await manager.add_message(session.id, "user", image_message())
    assert await manager.get_context_messages(session.id) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": image_message()},
    ]
    plain = await manager.create_session()
    await manager.add_message(plain.id, "user", "hi")
    assert await manager.get_context_messages(plain.id) == [{"role": "user", "content": "hi"}]


async def test_replace_messages_changes_memory_and_disk_together(
    db_url: str, db_path: Path
) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session()
    for text in ("a", "b", "c"):
        await manager.add_message(session.id, "user", text)
    await manager.replace_messages(
        session.id,
        [{"role": "system", "content": "summary of a, b"}, {"role": "user", "content": "c"}],
    )
    assert [(m.role, m.content) for m in session.history] == [
        ("system", "summary of a, b"),
        ("user", "c"),
    ]
    with pytest.raises(ValueError):
        await manager.replace_messages(
            session.id, [{"role": "user", "content": "ok"}, {"role": "user", "content": []}]
        )
    assert len(session.history) == 2
    await manager.close()
    assert query(db_path, "SELECT content FROM messages ORDER BY position") == [
        ("summary of a, b",),
        ("c",),
    ]
    assert query(db_path, "SELECT message_count FROM sessions") == [(2,)]


async def test_truncate_keeps_the_first_messages(manager: SessionManager, db_path: Path) -> None:
    session = await manager.create_session()
    for text in ("1", "2", "3", "4"):
        await manager.add_message(session.id, "user", text)
    assert await manager.truncate_messages(session.id, 2) == 2
    assert [m.content for m in session.history] == ["1", "2"]
    assert query(db_path, "SELECT content FROM messages ORDER BY position") == [("1",), ("2",)]
    assert query(db_path, "SELECT message_count FROM sessions") == [(2,)]
    await manager.add_message(session.id, "user", "after")
    assert query(db_path, "SELECT content FROM messages ORDER BY position")[-1] == ("after",)


async def test_truncate_never_stores_more_messages_than_rows_exist(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    for text in ("1", "2", "3"):
        await manager.add_message(session.id, "user", text)
    assert await manager.truncate_messages(session.id, 10) == 3
    assert query(db_path, "SELECT message_count FROM sessions") == [(3,)]
    # Rows removed behind the manager's back: the count follows the rows, not the request.
    query(db_path, "DELETE FROM messages WHERE position = 2")
    assert await manager.truncate_messages(session.id, 3) == 2
    assert query(db_path, "SELECT message_count FROM sessions") == [(2,)]
    with pytest.raises(ValueError):
        await manager.truncate_messages(session.id, -1)


async def test_delete_session_removes_rows_and_memory(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", image_message())
    seen: list[SessionEvent] = []
    manager.add_listener(seen.append)
    assert await manager.delete_session(session.id) is True
    assert await manager.get_session(session.id) is None
    for table in ("sessions", "messages", "images", "message_images"):
        assert query(db_path, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert seen == [SessionEvent(SESSION_DELETED, session.id)]
    assert await manager.delete_session(session.id) is False
    assert await manager.delete_session("never-existed") is False


async def test_delete_session_whose_row_vanished(manager: SessionManager, db_path: Path) -> None:
    session = await manager.create_session()
    query(db_path, "DELETE FROM sessions WHERE id = ?", (session.id,))
    assert await manager.delete_session(session.id) is True
    assert await manager.get_session(session.id) is None


async def test_task_session_is_cached_and_never_duplicated(db_url: str, db_path: Path) -> None:
    manager = await SessionManager.open(db_url)
    first = await manager.ensure_task_session("nightly-digest", title="Nightly digest")
    again, concurrent = await asyncio.gather(
        manager.ensure_task_session("nightly-digest"),
        manager.ensure_task_session("nightly-digest"),
    )
    assert first is again is concurrent
    assert (first.kind, first.task_id, first.title) == ("task", "nightly-digest", "Nightly digest")
    await manager.add_message(first.id, "assistant", "digest #1")
    await manager.close()

    reopened = await SessionManager.open(db_url)
    try:
        after_restart = await reopened.ensure_task_session("nightly-digest")
        assert after_restart.id == first.id
        assert [m.content for m in after_restart.history] == ["digest #1"]
        assert await reopened.ensure_task_session("nightly-digest") is after_restart
        other = await reopened.ensure_task_session("weekly")
        assert other.id != first.id
    finally:
        await reopened.close()
    assert query(db_path, "SELECT count(*) FROM sessions WHERE task_id = 'nightly-digest'") == [
        (1,)
    ]


async def test_cleanup_deletes_only_old_empty_sessions(
    manager: SessionManager, db_path: Path
) -> None:
    fresh = await manager.create_session("fresh and empty")
    old_empty = await manager.create_session("old and empty")
    old_used = await manager.create_session("old with messages")
    await manager.add_message(old_used.id, "user", "keep me")
    old_task = await manager.ensure_task_session("backup")
    two_hours_ago = (old_empty.created_at - timedelta(hours=2)).timestamp()
    query(
        db_path,
        "UPDATE sessions SET created_at = ? WHERE id IN (?, ?, ?)",
        (two_hours_ago, old_empty.id, old_used.id, old_task.id),
    )
    assert await manager.cleanup_empty_sessions() == 1
    remaining = {s.id for s in await manager.list_sessions()}
    assert remaining == {fresh.id, old_used.id, old_task.id}
    assert await manager.get_session(old_empty.id) is None
    # A session created a moment ago goes only when the caller asks for no age at all.
    assert await manager.cleanup_empty_sessions(min_age=timedelta(0)) == 1
    assert await manager.get_session(fresh.id) is None


async def test_concurrent_writers_never_cross_contaminate(db_url: str) -> None:
    manager = await SessionManager.open(db_url)
    sessions = [await manager.create_session(f"s{i}") for i in range(10)]
    per_writer = 15

    async def writer(number: int) -> None:
        target = sessions[number % 10]
        for sequence in range(per_writer):
            await manager.add_message(target.id, "user", f"w{number}:{sequence}")
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(n) for n in range(20)))

    def check(history: list[Message], index: int) -> None:
        writers = {index, index + 10}
        texts = [m.content for m in history]
        assert len(texts) == 2 * per_writer
        assert {int(t.split(":")[0][1:]) for t in texts} == writers
        for w in writers:
            own = [int(t.split(":")[1]) for t in texts if t.startswith(f"w{w}:")]
            assert own == list(range(per_writer))

    for index, session in enumerate(sessions):
        check(session.history, index)
    await manager.close()

    reopened = await SessionManager.open(db_url)
    try:
        for index, session in enumerate(sessions):
            loaded = await reopened.get_session(session.id)
            assert loaded is not None
            check(loaded.history, index)
        counts = {s.id: s.message_count for s in await reopened.list_sessions()}
        assert set(counts.values()) == {2 * per_writer}
    finally:
        await reopened.close()


async def test_update_message_persists_status_and_text(db_url: str) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session()
    reply = await manager.add_message(session.id, "assistant", "Hel", status="streaming")
    await manager.update_message(session.id, reply.id, content="Hello", persist=False)
    assert session.history[0].content == "Hello"
    await manager.update_message(session.id, reply.id, content="Hello!", status="complete")
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.get_session(session.id)
        assert loaded is not None
        assert (loaded.history[0].content, loaded.history[0].status) == ("Hello!", "complete")
    finally:
        await reopened.close()


async def test_a_reply_streaming_at_shutdown_is_marked_interrupted(db_url: str) -> None:
    manager = await SessionManager.open(db_url)
    session = await manager.create_session()
    await manager.add_message(session.id, "assistant", "half a rep", status="streaming")
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.get_session(session.id)
        assert loaded is not None
        assert (loaded.history[0].content, loaded.history[0].status) == (
            "half a rep",
            "interrupted",
        )
    finally:
        await reopened.close()


async def test_update_session_renames_and_persists(manager: SessionManager, db_path: Path) -> None:
    session = await manager.create_session()
    await manager.update_session(session.id, title="Renamed", model="gpt-x")
    assert (session.title, session.model) == ("Renamed", "gpt-x")
    assert query(db_path, "SELECT title, model FROM sessions") == [("Renamed", "gpt-x")]
    with pytest.raises(ValueError):
        await manager.update_session(session.id, title="  ")
    with pytest.raises(ValueError):
        await manager.update_session(session.id, owner="someone-else")


async def test_a_damaged_database_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StorageError, match="is damaged"):
        await SessionManager.open(f"sqlite+aiosqlite:///{path}")
    assert path.read_bytes() == garbage


async def test_blocks_cell_never_mistakes_a_json_looking_string(
    manager: SessionManager, db_url: str
) -> None:
    session = await manager.create_session()
    text = json.dumps([{"type": "text", "text": "I am a string"}])
    await manager.add_message(session.id, "user", text)
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.get_session(session.id)
        assert loaded is not None and loaded.history[0].content == text
    finally:
        await reopened.close()
