"""A bounded SIGKILL loop: a process doing random chat work (streaming, regenerating,
truncating, replacing) is killed at random moments, over and over, on one database.

After every kill nothing committed is lost, no reply is left streaming, every partial
reply keeps its text, and each session's message count matches its rows.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import query
from tests.openai_test_server import OpenAITestServer
from tests.reliability.processes import OutputLines, start

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# Bounded so the suite stays quick; raise it to attack harder (e.g. 200).
KILLS = int(os.environ.get("CHATDESK_KILL_LOOP", "12"))


async def check_database(db_path: Path, known: dict[str, dict[str, Any]]) -> int:
    """Open the database as the next start would and check it; the rows checked."""
    manager = await SessionManager.open(sqlite_url(db_path))
    try:
        for summary in await manager.list_sessions():
            session = await manager.require_session(summary.id)
            assert summary.message_count == len(session.history)
            for message in session.history:
                assert message.status != "streaming"
                if message.role == "assistant":
                    assert message.content, "a partial reply lost its text"
    finally:
        await manager.close()
    rows = {
        row[0]: (row[1], row[2])
        for row in query(db_path, "SELECT id, content, status FROM messages")
    }
    for message_id, fact in known.items():
        assert message_id in rows, f"committed message {fact} was lost"
        assert rows[message_id] == (fact["content"], fact["status"]), (
            f"committed message {fact} changed to {rows[message_id]}"
        )
    counts = query(
        db_path,
        "SELECT s.id, s.message_count, count(m.id) FROM sessions s "
        "LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id",
    )
    assert all(stored == real for _, stored, real in counts), counts
    return len(rows)


async def test_random_sigkills_lose_nothing_committed(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    openai_server.reply = " ".join(f"word{i}" for i in range(50))
    openai_server.chunk_delay = 0.005
    db_path = tmp_path / "chat.db"
    rng = random.Random(12)
    known: dict[str, dict[str, Any]] = {}
    kills = facts = 0
    for seed in range(KILLS):
        child = start(
            "-m",
            "tests.reliability.kill_loop_child",
            sqlite_url(db_path),
            openai_server.base_url,
            openai_server.model,
            str(seed),
        )
        output = OutputLines(child)
        assert json.loads(output.wait_for_first(60))["kind"] == "ready"
        time.sleep(rng.uniform(0.05, 2.0))
        child.kill()
        lines = output.finish()
        assert child.returncode == -signal.SIGKILL, (
            f"the child stopped before it was killed:\n{''.join(output.stderr)}"
        )
        kills += 1
        for line in lines:
            try:
                fact = json.loads(line)
            except ValueError:
                break  # the line the kill cut in half
            if fact["kind"] == "dropping":
                for message_id in fact["ids"]:
                    known.pop(message_id, None)
            elif fact["kind"] == "kept":
                known[fact["id"]] = fact
                facts += 1
        await check_database(db_path, known)
    rows = query(db_path, "SELECT count(*) FROM messages")[0][0]
    print(f"kill loop: {kills} SIGKILLs survived, {facts} committed writes checked, {rows} rows")
