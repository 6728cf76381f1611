"""A process removes only rows it knows: truncate, replace and regenerate check, in their
own transaction, that the stored messages are the ones in memory; and a reply still
streaming cannot be removed from under its writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.sessions import SessionBusyError, SessionChangedError, SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import LONG_REPLY, stored_messages
from tests.openai_test_server import OpenAITestServer
from tests.reliability.processes import child_env

ADD_SIX = """
import asyncio, sys
from chatdesk.sessions import SessionManager

async def main(url, session_id):
    manager = await SessionManager.open(url)
    for index in range(6):
        role = "user" if index % 2 == 0 else "assistant"
        await manager.add_message(session_id, role, f"written by the other process {index}")
    await manager.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def other_process_adds_six(db_path: Path, session_id: str) -> None:
    """Another process (a second ChatDesk, as before the lock) writes six messages."""
    subprocess.run(
        [sys.executable, "-c", ADD_SIX, sqlite_url(db_path), session_id],
        check=True,
        timeout=60,
        env=child_env(),
    )


async def test_a_stale_process_removes_nothing_it_has_not_seen(
    engine: ChatEngine, manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session("Shared")
    await manager.add_message(session.id, "user", "first question")
    await manager.add_message(session.id, "assistant", "first answer")
    other_process_adds_six(db_path, session.id)
    before = stored_messages(db_path, session.id)
    assert len(before) == 8

    with pytest.raises(SessionChangedError, match="changed outside this window"):
        await manager.truncate_messages(session.id, 1)
    with pytest.raises(SessionChangedError):
        await manager.replace_messages(session.id, [{"role": "user", "content": "only me"}])
    with pytest.raises(SessionChangedError):  # Retry on the stale window
        async for _ in engine.regenerate(session.id):
            pass

    assert stored_messages(db_path, session.id) == before
    assert len((await manager.require_session(session.id)).history) == 2


async def test_truncating_a_chat_whose_reply_streams_is_a_clear_busy_error(
    engine: ChatEngine,
    manager: SessionManager,
    openai_server: OpenAITestServer,
    db_path: Path,
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.02
    session = await manager.create_session("Busy")
    replies = engine.send(session.id, "Tell me a story")
    await replies.__anext__()  # the reply is stored and streaming now

    with pytest.raises(SessionBusyError, match="still being written"):
        await manager.truncate_messages(session.id, 1)
    with pytest.raises(SessionBusyError, match="still being written"):
        await manager.replace_messages(session.id, [])
    async for _ in replies:
        pass

    rows = stored_messages(db_path, session.id)
    assert [(role, status) for role, _, status, _ in rows] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert rows[1][1] == LONG_REPLY
    # Once it has ended, the same truncate works.
    assert await manager.truncate_messages(session.id, 1) == 1
