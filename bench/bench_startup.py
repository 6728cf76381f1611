"""Start-up benchmark: ChatDesk's process start -> first paint against a bare PySide6 window.

Usage: ``python bench/bench_startup.py [--runs N] [--data-dir DIR]``. Both programs are
started as fresh processes, alternately, in the same run (so a busy machine slows both
alike); the figures are medians. ChatDesk opens a data folder holding 1,000 chats (built
on first use), so its sidebar lists as many rows as the bare window does.

The target (issue #13): ChatDesk's first paint within 2.5 times the bare window's.
Runs offscreen unless ``DISPLAY`` is set and ``QT_QPA_PLATFORM`` is not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.5
CHATS = 1_000


def first_paint(command: list[str]) -> float:
    """Seconds from spawning ``command`` to the ``first-paint`` line it prints."""
    env = dict(os.environ, CHATDESK_EXIT_AFTER_FIRST_PAINT="1")
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # An installed ChatDesk starts from cached bytecode after its first run; where writing
    # it is switched off (some CI and sandboxes), every start would compile ~90 modules
    # first (about 0.16 s here), which is no user's start-up.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("first-paint")), "")
    if not line:
        raise RuntimeError(f"{command}: no first-paint line; stderr:\n{result.stderr}")
    return float(line.split()[1]) - started


async def _fill(data_dir: Path) -> None:
    from chatdesk.sessions import SessionManager
    from chatdesk.settings import DATABASE_FILE, sqlite_url

    manager = await SessionManager.open(sqlite_url(data_dir / DATABASE_FILE))
    try:
        if len(await manager.list_sessions()) < CHATS:
            for n in range(CHATS):
                session = await manager.create_session(f"Chat {n}")
                await manager.add_message(session.id, "user", f"Question {n}")
                await manager.add_message(session.id, "assistant", f"Answer {n}")
    finally:
        await manager.close()


def main() -> int:
    """Measure both programs alternately and print medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="chatdesk-startup-"))
    asyncio.run(_fill(data_dir))
    bare_command = [sys.executable, str(ROOT / "bench" / "bare_window.py")]
    chatdesk_command = [sys.executable, "-m", "chatdesk", "--data-dir", str(data_dir)]
    first_paint(bare_command)  # warm the file cache for both before measuring
    first_paint(chatdesk_command)
    bare, chatdesk = [], []
    for _ in range(args.runs):
        bare.append(first_paint(bare_command))
        chatdesk.append(first_paint(chatdesk_command))
    bare_median, chatdesk_median = statistics.median(bare), statistics.median(chatdesk)
    ratio = chatdesk_median / bare_median
    print(f"bare PySide6 window, 1,000 rows: median {bare_median:.3f} s  {_spread(bare)}")
    print(
        f"ChatDesk, {CHATS:,} chats:          median {chatdesk_median:.3f} s  {_spread(chatdesk)}"
    )
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"ratio: {ratio:.2f} (target <= {TARGET_RATIO}) {verdict}")
    return 0


def _spread(values: list[float]) -> str:
    return f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


if __name__ == "__main__":
    raise SystemExit(main())
