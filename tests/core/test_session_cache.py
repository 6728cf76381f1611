"""A long-running process does not keep every session it ever touched in memory, and
never holds two copies of a session that is in use."""

from __future__ import annotations

import gc

from chatdesk.domain import Session, content_text
from chatdesk.sessions import SessionManager
from chatdesk.sessions.cache import KEEP_RECENT, SessionCache
from tests.core.conftest import manager  # noqa: F401


def in_memory(opened: SessionManager) -> int:
    gc.collect()
    return opened.sessions_in_memory


async def test_sessions_nobody_holds_leave_memory_beyond_the_recent_ones(
    manager: SessionManager,  # noqa: F811
) -> None:
    ids = []
    for n in range(KEEP_RECENT * 3):
        session = await manager.create_session(f"chat {n}")
        await manager.add_message(session.id, "user", f"question {n}")
        ids.append(session.id)
    del session
    assert in_memory(manager) == KEEP_RECENT
    # A session that left memory comes back whole from the database.
    first = await manager.require_session(ids[0])
    assert first.title == "chat 0"
    assert [content_text(m.content) for m in first.history] == ["question 0"]
    await manager.add_message(first.id, "assistant", "answer 0")
    assert [m.role for m in (await manager.require_session(ids[0])).history] == [
        "user",
        "assistant",
    ]


async def test_a_session_in_use_is_never_loaded_twice(
    manager: SessionManager,  # noqa: F811
) -> None:
    held = await manager.create_session("on screen")
    for n in range(KEEP_RECENT * 2):
        await manager.create_session(f"other {n}")
    gc.collect()
    # Pushed out of the recent ones, but still held: the same object, not a second copy
    # that a write would change behind the holder's back.
    again = await manager.require_session(held.id)
    assert again is held
    await manager.add_message(held.id, "user", "still here")
    assert [content_text(m.content) for m in held.history] == ["still here"]


async def test_a_deleted_session_leaves_memory_even_when_held(
    manager: SessionManager,  # noqa: F811
) -> None:
    held = await manager.create_session("doomed")
    await manager.delete_session(held.id)
    assert await manager.get_session(held.id) is None
    assert in_memory(manager) == 0 and held.title == "doomed"


def test_forgetting_a_session_nobody_else_holds_returns_it() -> None:
    cache = SessionCache(keep=2)
    cache["a"] = Session(id="a", title="kept only by the cache")
    forgotten = cache.pop("a")
    assert forgotten is not None and forgotten.title == "kept only by the cache"
    assert "a" not in cache and cache.pop("a") is None
