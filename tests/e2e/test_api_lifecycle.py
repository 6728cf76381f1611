"""``chatdesk serve`` starting, stopping and refusing: signals, remote hosts, revoked tokens."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.conftest import query
from tests.e2e.api_process import ServeProcess, chatdesk, child_env, create_token
from tests.openai_test_server import OpenAITestServer

LONG_REPLY = " ".join(f"word{i}" for i in range(400))


def stored_reply(db_path: Path, session_id: str) -> tuple[str, str] | None:
    """(content, status) of the session's assistant reply, None while there is none."""
    rows = query(
        db_path,
        "SELECT content, status FROM messages WHERE session_id = ? AND role = 'assistant'",
        (session_id,),
    )
    return rows[0] if rows else None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_reply_keeps_the_partial_reply_and_exits_cleanly(
    openai_server: OpenAITestServer, tmp_path: Path, signum: int
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.03  # twelve seconds for the whole reply
    token = create_token(tmp_path, "alice")
    serve = ServeProcess(
        "--data-dir", str(tmp_path), "--base-url", openai_server.base_url, "--model", "test-model"
    )
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=serve.url, headers=headers, timeout=60) as client:
            session_id = client.post("/api/sessions", json={}).json()["id"]
            deltas: list[str] = []
            outcome: dict[str, Any] = {}

            def stream_reply() -> None:
                try:
                    with client.stream(
                        "POST",
                        f"/api/sessions/{session_id}/messages",
                        json={"content": "Tell me a long story.", "stream": True},
                    ) as response:
                        for line in response.iter_lines():
                            if line.startswith("event: "):
                                deltas.append(line)
                    outcome["status"] = response.status_code
                except httpx.HTTPError as exc:
                    outcome["error"] = exc

            reader = threading.Thread(target=stream_reply, daemon=True)
            reader.start()
            deadline = time.monotonic() + 30
            while len(deltas) < 20:
                assert time.monotonic() < deadline, "the reply never started streaming"
                assert serve.process.poll() is None, "".join(serve.log)
                time.sleep(0.02)
            serve.process.send_signal(signum)
            assert serve.wait(timeout=30) == 0, "".join(serve.log)
            reader.join(timeout=30)
    finally:
        serve.close()
    content, status = stored_reply(tmp_path / "chat.db", session_id) or ("", "missing")
    assert status == "cancelled"
    assert content and LONG_REPLY.startswith(content) and content != LONG_REPLY
    assert len(content.split()) >= 19
    # The stream told the client how the reply ended.
    assert deltas[-1] == "event: message"
    log = "".join(serve.log)
    assert "replies in flight are stored as cancelled" in log and "stopped" in log


def test_a_host_other_machines_can_reach_needs_allow_remote(tmp_path: Path) -> None:
    refused = chatdesk("serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path))
    assert refused.returncode == 2
    assert "--allow-remote" in refused.stderr
    assert not (tmp_path / "chat.db").exists()
    serve = ServeProcess("--host", "0.0.0.0", "--allow-remote", "--data-dir", str(tmp_path))
    try:
        assert "other machines can reach the API" in "".join(serve.log)
        port = serve.url.rsplit(":", 1)[1]
        with httpx.Client(timeout=30) as client:
            assert client.get(f"http://127.0.0.1:{port}/api/sessions").status_code == 403
    finally:
        serve.close()
    assert serve.process.returncode == 0


def test_a_token_revoked_while_serving_stops_working_at_once(tmp_path: Path) -> None:
    token = create_token(tmp_path, "dave")
    serve = ServeProcess("--data-dir", str(tmp_path))
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=serve.url, headers=headers, timeout=30) as client:
            assert client.get("/api/sessions").status_code == 200
            revoked = chatdesk("token", "revoke", "dave", "--data-dir", str(tmp_path))
            assert revoked.returncode == 0, revoked.stderr
            assert client.get("/api/sessions").status_code == 403
    finally:
        serve.close()


def test_token_commands_keep_only_a_hash_and_refuse_the_desktop_owner(tmp_path: Path) -> None:
    token = create_token(tmp_path, "erin")
    assert token.startswith("cd_") and len(token) > 40
    database = (tmp_path / "chat.db").read_bytes()
    assert token.encode() not in database
    assert create_token(tmp_path, "frank") != token
    listed = chatdesk("token", "list", "--data-dir", str(tmp_path))
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["erin", "frank"]
    for name in ("local", "LOCAL", "erin", "bad name", ""):
        refused = chatdesk("token", "create", name, "--data-dir", str(tmp_path))
        assert refused.returncode == 1 and refused.stdout == "", name
        assert refused.stderr.strip(), name
    missing = chatdesk("token", "revoke", "nobody", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_the_window_loads_no_web_framework_and_the_subcommands_no_qt() -> None:
    check = (
        "import sys, chatdesk.app, chatdesk.ui.main_window, chatdesk.ui.local_api_settings; "
        "web = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette')]; "
        "assert not web, web"
    )
    window = subprocess.run(
        [sys.executable, "-c", check], env=child_env(), capture_output=True, text=True
    )
    assert window.returncode == 0, window.stderr
    check = (
        "import sys, chatdesk.cli, chatdesk.api.app, chatdesk.api.server, chatdesk.runtime; "
        "qt = [m for m in sys.modules if m.startswith('PySide6')]; assert not qt, qt"
    )
    headless = subprocess.run(
        [sys.executable, "-c", check], env=child_env(), capture_output=True, text=True
    )
    assert headless.returncode == 0, headless.stderr
