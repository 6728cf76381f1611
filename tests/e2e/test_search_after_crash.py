"""The search index survives a process killed mid-reply: after reopening it matches the rows."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from chatdesk.domain import content_text
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.test_search import index_problems
from tests.e2e.test_crash_recovery import LONG_REPLY, read_line, start_child, stored_reply
from tests.openai_test_server import OpenAITestServer

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


async def test_the_index_matches_the_rows_after_sigkill_and_reopen(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.03
    db_path = tmp_path / "chat.db"
    db_url = sqlite_url(db_path)
    child = start_child(db_url, openai_server.base_url, openai_server.model)
    try:
        session_id = read_line(child, timeout=60).split()[1]
        seen: tuple[str, str] | None = None
        deadline = time.monotonic() + 30
        while seen is None or len(seen[0].split()) < 10:
            assert child.poll() is None
            assert time.monotonic() < deadline, f"the reply never grew on disk: {seen}"
            time.sleep(0.05)
            seen = stored_reply(db_path, session_id) or seen
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    # Straight from the file the dead process left: index and rows agree.
    assert index_problems(db_path) == []
    manager = await SessionManager.open(db_url)
    try:
        reply = (await manager.require_session(session_id)).history[1]
        last_word = content_text(reply.content).split()[-2]
        hits = await manager.search(last_word)
        assert [h.message_id for h in hits] == [reply.id]
        assert await manager.search("word299") == []  # never reached the disk
        await manager.add_message(session_id, "user", "after the crash kestrel")
        assert len(await manager.search("kestrel")) == 1
    finally:
        await manager.close()
    assert index_problems(db_path) == []
