"""Trash, pin, archive and branches, through the SessionManager and across a reopen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from chatdesk.sessions import SESSION_UPDATED, SessionEvent, SessionManager
from tests.core.conftest import png_data_url, query


async def test_trash_restore_and_list(manager: SessionManager, db_url: str) -> None:
    keep = await manager.create_session("keep")
    doomed = await manager.create_session("doomed")
    await manager.add_message(doomed.id, "user", "still here")
    events: list[SessionEvent] = []
    manager.add_listener(events.append)

    trashed = await manager.trash_session(doomed.id)
    assert trashed.trashed_at is not None
    assert events == [SessionEvent(SESSION_UPDATED, doomed.id)]
    assert [s.id for s in await manager.list_sessions()] == [keep.id]
    assert {s.id for s in await manager.list_sessions(include_trashed=True)} == {keep.id, doomed.id}
    assert [s.id for s in await manager.list_sessions(trashed_only=True)] == [doomed.id]
    # In the Trash, nothing is lost: the chat still opens with its messages.
    assert (await manager.require_session(doomed.id)).history[0].content == "still here"

    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        assert [s.id for s in await reopened.list_sessions(trashed_only=True)] == [doomed.id]
        await reopened.restore_session(doomed.id)
        assert {s.id for s in await reopened.list_sessions()} == {keep.id, doomed.id}
        assert (await reopened.require_session(doomed.id)).trashed_at is None
    finally:
        await reopened.close()


async def test_the_trash_is_purged_after_thirty_days(
    manager: SessionManager, db_path: Path
) -> None:
    old = await manager.create_session("old")
    await manager.add_message(
        old.id,
        "user",
        "bye",
    )
    recent = await manager.create_session("recent")
    alive = await manager.create_session("alive")
    await manager.trash_session(old.id)
    await manager.trash_session(recent.id)
    # As if the first went to the Trash 31 days ago.
    query(
        db_path,
        "UPDATE sessions SET trashed_at = trashed_at - ? WHERE id = ?",
        (timedelta(days=31).total_seconds(), old.id),
    )
    assert await manager.purge_trash() == 1
    ids = {s.id for s in await manager.list_sessions(include_trashed=True)}
    assert ids == {recent.id, alive.id}
    assert query(db_path, "SELECT count(*) FROM messages") == [(0,)]
    assert await manager.get_session(old.id) is None


async def test_delete_session_stays_immediate(manager: SessionManager) -> None:
    session = await manager.create_session()
    assert await manager.delete_session(session.id)
    assert await manager.list_sessions(include_trashed=True) == []


async def test_pinned_chats_come_first_and_archived_leave_the_list(
    manager: SessionManager, db_url: str
) -> None:
    first = await manager.create_session("first")
    second = await manager.create_session("second")
    third = await manager.create_session("third")
    await manager.add_message(third.id, "user", "newest")
    await manager.set_pinned(first.id, True)
    assert [s.title for s in await manager.list_sessions()] == ["first", "third", "second"]
    assert (await manager.list_sessions())[0].pinned

    await manager.set_archived(second.id, True)
    assert [s.title for s in await manager.list_sessions(archived=False)] == ["first", "third"]
    assert [s.title for s in await manager.list_sessions(archived=True)] == ["second"]
    assert len(await manager.list_sessions()) == 3  # archived=None: both

    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.require_session(first.id)
        assert loaded.pinned and loaded.archived_at is None
        assert (await reopened.require_session(second.id)).archived_at is not None
        await reopened.set_pinned(first.id, False)
        await reopened.set_archived(second.id, False)
        assert [s.title for s in await reopened.list_sessions(archived=False)] == [
            "third",
            "second",
            "first",
        ]
    finally:
        await reopened.close()


async def test_a_branch_copies_history_up_to_the_message_and_shares_images(
    manager: SessionManager, db_path: Path, db_url: str
) -> None:
    parent = await manager.create_session("plan", system_prompt="be brief", model="m1")
    picture = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    first = await manager.add_message(parent.id, "user", picture)
    answer = await manager.add_message(parent.id, "assistant", "a red square")
    await manager.add_message(parent.id, "user", "later question")

    branch = await manager.branch_session(parent.id, answer.id)
    assert branch.id != parent.id
    assert [m.content for m in branch.history] == [picture, "a red square"]
    assert [m.id for m in branch.history] != [first.id, answer.id]
    assert branch.system_prompt == "be brief" and branch.model == "m1"
    assert (branch.parent_session_id, branch.parent_message_id) == (parent.id, answer.id)
    # The image is stored once and used by both chats.
    assert query(db_path, "SELECT count(*) FROM images") == [(1,)]
    assert query(db_path, "SELECT count(*) FROM message_images") == [(2,)]
    assert [s.id for s in await manager.branches_of(parent.id)] == [branch.id]

    # The branch lives on its own: the parent changing or going leaves it whole.
    await manager.add_message(branch.id, "user", "another path")
    assert len(parent.history) == 3
    await manager.delete_session(parent.id)
    assert query(db_path, "SELECT count(*) FROM images") == [(1,)]

    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        loaded = await reopened.require_session(branch.id)
        assert [m.content for m in loaded.history] == [picture, "a red square", "another path"]
        assert loaded.parent_session_id == parent.id
        assert loaded.parent_message_id == answer.id
    finally:
        await reopened.close()


async def test_branching_from_an_unknown_message_changes_nothing(manager: SessionManager) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "hi")
    with pytest.raises(LookupError):
        await manager.branch_session(session.id, "no-such-message")
    assert len(await manager.list_sessions()) == 1
