"""What the first paint waits for: nothing it does not need (issue #13's start-up target).

The window paints from a plain sqlite3 read; the database layer, the model runtimes,
the scheduler's and the API's libraries load after it. A module-level import of one of
them anywhere on the way to the first paint costs a tenth of a second or more, and
bench/bench_startup.py would only show it as a worse ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each is imported after the first paint, when what needs it first runs.
AFTER_FIRST_PAINT = (
    "aiosqlite",
    "apscheduler",
    "cron_descriptor",
    "fastapi",
    "keyring",
    "llama_cpp",
    "openai",
    "pygments",
    "sqlalchemy",
    "uvicorn",
)


def packages_at_first_paint(data_dir: Path) -> set[str]:
    env = dict(os.environ, CHATDESK_EXIT_AFTER_FIRST_PAINT="1", QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "chatdesk", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("first-paint-packages"))
    return set(line.split()[1:])


@pytest.mark.parametrize("start", ["first", "again"])
def test_the_first_paint_loads_no_database_layer_model_runtime_or_server(
    tmp_path: Path, start: str
) -> None:
    data_dir = tmp_path / "data"
    if start == "again":
        packages_at_first_paint(data_dir)  # a data folder with a database and a chat
    loaded = packages_at_first_paint(data_dir)
    assert "PySide6" in loaded and "chatdesk" in loaded
    assert sorted(loaded.intersection(AFTER_FIRST_PAINT)) == []
