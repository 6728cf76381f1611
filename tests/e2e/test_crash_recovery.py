"""A process killed mid-reply loses at most the last flush: the reply comes back interrupted."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatdesk.domain import content_text
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import query
from tests.openai_test_server import OpenAITestServer

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG_REPLY = " ".join(f"word{i}" for i in range(300))

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def start_child(db_url: str, base_url: str, model: str) -> subprocess.Popen[str]:
    """The streaming child process, with this repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.streaming_child", db_url, base_url, model],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's next line of output, or a failure after ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(child.stdout.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        child.kill()
        _, stderr = child.communicate(timeout=10)
        raise AssertionError(
            f"the child printed nothing in {timeout} s; stderr:\n{stderr}"
        ) from None


def stored_reply(db_path: Path, session_id: str) -> tuple[str, str] | None:
    """(content, status) of the stored assistant reply, None while there is none."""
    try:
        rows = query(
            db_path,
            "SELECT content, status FROM messages WHERE session_id = ? AND role = 'assistant'",
            (session_id,),
        )
    except sqlite3.OperationalError:  # the child holds a write lock this very moment
        return None
    return rows[0] if rows else None


async def test_a_reply_streaming_when_the_process_dies_comes_back_interrupted(
    openai_server: OpenAITestServer, tmp_path: Path
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.03  # about nine seconds for the whole reply
    db_path = tmp_path / "chat.db"
    db_url = sqlite_url(db_path)

    child = start_child(db_url, openai_server.base_url, openai_server.model)
    try:
        line = read_line(child, timeout=60).strip()
        assert line.startswith("session "), line
        session_id = line.split()[1]

        # Wait until a few flushes put a good part of the reply on disk.
        seen: tuple[str, str] | None = None
        deadline = time.monotonic() + 30
        while seen is None or len(seen[0].split()) < 10:
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, f"the reply never grew on disk: {seen}"
            time.sleep(0.05)
            seen = stored_reply(db_path, session_id) or seen
        assert seen[1] == "streaming"

        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()

    # The dead child left the reply half-written and marked streaming.
    on_disk = stored_reply(db_path, session_id)
    assert on_disk is not None and on_disk[1] == "streaming"

    manager = await SessionManager.open(db_url)
    try:
        session = await manager.require_session(session_id)
        user, reply = session.history
        assert (user.role, user.content, user.status) == (
            "user",
            "Tell me a long story.",
            "complete",
        )
        text = content_text(reply.content)
        assert reply.role == "assistant"
        assert reply.status == "interrupted"
        assert text and LONG_REPLY.startswith(text) and text != LONG_REPLY
        assert text.startswith(seen[0])
    finally:
        await manager.close()
    assert stored_reply(db_path, session_id) == (text, "interrupted")
    # The server noticed its client was gone.
    deadline = time.monotonic() + 10
    while not openai_server.client_disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert openai_server.client_disconnects == 1
