"""Running ``chatdesk serve`` and ``chatdesk token`` as real processes, for the API tests."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_SERVING = re.compile(r"ChatDesk API serving on (http://\S+)")


def child_env() -> dict[str, str]:
    """This environment, with this repository importable first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("CHATDESK_DATABASE_URL", None)
    return env


def chatdesk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m chatdesk ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "chatdesk", *args],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def create_token(data_dir: Path, name: str) -> str:
    """A new token called ``name``, made with ``chatdesk token create``."""
    done = chatdesk("token", "create", name, "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and "\n" not in token
    return token


class ServeProcess:
    """``chatdesk serve --port 0`` in a child process; its log is collected line by line."""

    def __init__(self, *args: str) -> None:
        """Start serving with ``args`` (data folder, provider options...)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatdesk", "serve", "--port", "0", *args],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for_url(timeout=60)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    "chatdesk serve did not start:\n" + "".join(self.log)
                ) from None
            if line is None:
                self.process.wait(timeout=10)
                raise AssertionError(
                    f"chatdesk serve exited with {self.process.returncode}:\n" + "".join(self.log)
                )
            found = _SERVING.search(line)
            if found:
                return found.group(1)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to end; its exit code."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        """End the process at once, if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        """Stop it (SIGTERM, then SIGKILL if it lingers) and release its pipe."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
