"""Starting real child processes with this repository importable, and reading them."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this repository first on the path, Qt offscreen."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.update(extra)
    return env


def start(*args: str, **extra_env: str) -> subprocess.Popen[str]:
    """``python <args>`` in the repository, output piped as text."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=child_env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's next line of output, or a failure (with its stderr) after ``timeout``."""
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    stdout = child.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        child.kill()
        _, stderr = child.communicate(timeout=10)
        raise AssertionError(f"no output in {timeout} s; stderr:\n{stderr}") from None


class OutputLines:
    """Every line a child prints, read by one thread until the child's output ends.

    One reader for the whole output: mixing readline() with communicate() loses the lines
    readline() had already buffered.
    """

    def __init__(self, child: subprocess.Popen[str]) -> None:
        """Start reading ``child``'s stdout (and draining its stderr)."""
        assert child.stdout is not None and child.stderr is not None
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._child = child
        self._readers = [
            threading.Thread(target=self._read, args=(child.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(child.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def wait_for_first(self, timeout: float) -> str:
        """The first line, or a failure (with the child's stderr) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.lines:
            if time.monotonic() > deadline or self._child.poll() is not None:
                self._child.kill()
                self.finish()
                raise AssertionError(f"no output; stderr:\n{''.join(self.stderr)}")
            time.sleep(0.01)
        return self.lines[0]

    def finish(self) -> list[str]:
        """Every line, once the child has ended and its output is read to the end."""
        self._child.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=30)
        return self.lines


def kill(child: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it."""
    child.kill()
    child.communicate(timeout=10)
