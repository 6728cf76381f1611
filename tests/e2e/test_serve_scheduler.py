"""``chatdesk serve`` runs the scheduled tasks too: a real process over a real database."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from chatdesk.chat import ChatEngine
from chatdesk.domain import utcnow
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.scheduler import TaskScheduler
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import query
from tests.e2e.api_process import ServeProcess
from tests.openai_test_server import DEFAULT_REPLY, OpenAITestServer


async def add_task(db_path: Path, server: OpenAITestServer) -> str:
    """Store an hourly task the way the window does; its id."""
    manager = await SessionManager.open(sqlite_url(db_path))
    provider = OpenAICompatibleProvider(server.base_url, None, server.model)
    engine = ChatEngine(manager, provider, auto_title=False)
    scheduler = TaskScheduler(manager, engine)
    await scheduler.start()
    task = await scheduler.add_task(
        name="Hourly check", prompt="Anything new?", schedule="every 1 h"
    )
    await scheduler.stop()
    await provider.close()
    await manager.close()
    return task.id


def test_serve_runs_a_task_that_came_due_while_nothing_ran(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    db_path = tmp_path / "chat.db"
    task_id = asyncio.run(add_task(db_path, openai_server))
    an_hour_ago = (utcnow() - timedelta(minutes=61)).timestamp()
    query(db_path, "UPDATE tasks SET next_run_at = ?", (an_hour_ago,))

    serve = ServeProcess(
        "--data-dir",
        str(tmp_path),
        "--base-url",
        openai_server.base_url,
        "--model",
        openai_server.model,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if query(db_path, "SELECT 1 FROM tasks WHERE last_status = 'complete'"):
                break
            time.sleep(0.2)
    finally:
        serve.close()
    assert serve.process.returncode == 0, "".join(serve.log)
    assert query(
        db_path,
        "SELECT m.role, m.content, m.status FROM messages m JOIN sessions s ON s.id = m.session_id "
        "WHERE s.kind = 'task' AND s.task_id = ? ORDER BY m.position",
        (task_id,),
    ) == [("user", "Anything new?", "complete"), ("assistant", DEFAULT_REPLY, "complete")]
    (next_run,) = query(db_path, "SELECT next_run_at FROM tasks")[0]
    assert next_run > utcnow().timestamp()
