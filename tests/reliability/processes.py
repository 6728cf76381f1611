"""Starting real child processes with this repository importable, and reading them."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
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


def kill(child: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it."""
    child.kill()
    child.communicate(timeout=10)
