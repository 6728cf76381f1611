"""UI benchmark: start-up to first paint, opening a 10,000-message chat, streamed tokens.

Usage: ``python bench/bench_ui.py [--data-dir DIR]``. Without ``--data-dir`` a temporary
folder is used; with it, a database built by an earlier run is reused. Runs offscreen
unless ``DISPLAY`` is set and ``QT_QPA_PLATFORM`` is not.

Targets on a 2-core machine: first paint < 1.0 s, session switch < 150 ms,
< 2 ms per streamed token update, < 300 MB peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync
from PySide6.QtWidgets import QApplication

from chatdesk.chat import ChatEngine
from chatdesk.providers.base import Provider, StreamEnd
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.sessions import SessionManager
from chatdesk.settings import DATABASE_FILE, Preferences, sqlite_url
from chatdesk.ui.main_window import MainWindow

SESSIONS = 1_000
LONG_SESSION_MESSAGES = 10_000
LONG_SESSION_TITLE = "Ten thousand messages"
TOKENS = 500
STARTS = 3

MARKDOWN_REPLY = (
    "Here is **an answer** with a list:\n\n- first point\n- second point\n\n"
    "```python\nprint('hello')\n```\n"
)


class _UnusedProvider(Provider):
    """Stands in for a model: the benchmark never asks one to answer."""

    name = "unused"

    async def _events(self, messages, model, **options):  # type: ignore[no-untyped-def]
        yield StreamEnd()

    async def list_models(self) -> list[str]:
        return []


async def build_database(data_dir: Path) -> str:
    """Create the sessions (once); returns the id of the long session."""
    manager = await SessionManager.open(sqlite_url(data_dir / DATABASE_FILE))
    try:
        summaries = await manager.list_sessions()
        long_session = next((s for s in summaries if s.title == LONG_SESSION_TITLE), None)
        if long_session is not None and len(summaries) >= SESSIONS:
            return long_session.id
        started = time.perf_counter()
        first_chat = None
        for number in range(SESSIONS - 1):
            session = await manager.create_session(f"Chat number {number}")
            await manager.add_message(session.id, "user", f"Question {number}?")
            first_chat = first_chat or session.id
        session = await manager.create_session(LONG_SESSION_TITLE)
        messages = [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"Question {i}?" if i % 2 == 0 else f"{MARKDOWN_REPLY}(reply {i})",
            }
            for i in range(LONG_SESSION_MESSAGES)
        ]
        await manager.replace_messages(session.id, messages)
        # Another chat is the most recent, so the window opens there and the switch to
        # the long one is measured with it still on disk.
        assert first_chat is not None
        await manager.add_message(first_chat, "user", "hi")
        print(f"built database in {time.perf_counter() - started:.1f} s")
        return session.id
    finally:
        await manager.close()


def measure_first_paint(data_dir: Path) -> list[float]:
    """Seconds from spawning ``python -m chatdesk`` to its first painted window."""
    env = dict(os.environ, CHATDESK_EXIT_AFTER_FIRST_PAINT="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's start uses cached bytecode
    timings = []
    for _ in range(STARTS):
        started = time.time()
        result = subprocess.run(
            [sys.executable, "-m", "chatdesk", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("first-paint")), "")
        if not line:
            raise RuntimeError(f"no first-paint line; stderr:\n{result.stderr}")
        timings.append(float(line.split()[1]) - started)
    return timings


async def settle() -> None:
    """Let the window's own tasks and Qt's events run (on the qasync loop).

    Not ``processEvents()``: called from a coroutine it re-enters the loop, and another
    task's step then fails with "Cannot enter into task … while another task … is being
    executed", leaving that task pending for ever.
    """
    await asyncio.sleep(0.05)


async def measure_window(app: QApplication, data_dir: Path, long_id: str) -> dict[str, float]:
    """Open the window in this process and time a session switch and token updates."""
    manager = await SessionManager.open(sqlite_url(data_dir / DATABASE_FILE))
    preferences = Preferences()
    registry = ProviderRegistry(preferences)
    engine = ChatEngine(manager, _UnusedProvider("unused"), auto_title=False)
    window = MainWindow(manager, engine, registry, preferences)
    window.show()
    await window.load()
    await settle()
    figures: dict[str, float] = {}
    try:
        other = next(
            window.sidebar.model.session_row(row).id
            for row in range(window.sidebar.model.rowCount())
            if window.sidebar.model.session_row(row).id != long_id
        )
        for label in ("switch_cold_ms", "switch_warm_ms"):
            await window.open_session(other)
            await settle()
            started = time.perf_counter()
            await window.open_session(long_id)
            app.sendPostedEvents()  # the layout requests the switch posted
            window.repaint()
            figures[label] = (time.perf_counter() - started) * 1000
        assert window.pane.messages.rowCount() > 0

        reply = await manager.add_message(long_id, "assistant", "Streaming", status="streaming")
        await settle()
        text = "Streaming"
        started = time.perf_counter()
        for number in range(TOKENS):
            text += f" token{number}"
            if number % 40 == 39:
                text += "\n\n"
            await manager.update_message(long_id, reply.id, content=text, persist=False)
            # The view batches updates per frame; force one per token (the worst case).
            window.pane.messages.flush_updates()
            app.sendPostedEvents()
            window.pane.view.viewport().repaint()
        figures["token_ms"] = (time.perf_counter() - started) * 1000 / TOKENS
    finally:
        window.close()
        await window.shutdown()
        await registry.close()
        await manager.close()
    return figures


def main() -> int:
    """Build or reuse the database, run the measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="chatdesk-bench-ui-"))
    data_dir.mkdir(parents=True, exist_ok=True)

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    long_id = loop.run_until_complete(build_database(data_dir))
    starts = measure_first_paint(data_dir)
    figures = loop.run_until_complete(measure_window(app, data_dir, long_id))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"data dir: {data_dir} ({SESSIONS} sessions, one of {LONG_SESSION_MESSAGES} messages)")
    print(
        f"first paint:        median {statistics.median(starts):.3f} s "
        f"(runs: {', '.join(f'{t:.3f}' for t in starts)})   target < 1.0 s"
    )
    print(
        f"switch to long chat: {figures['switch_cold_ms']:.0f} ms first time (loads from disk), "
        f"{figures['switch_warm_ms']:.0f} ms again   target < 150 ms"
    )
    print(
        f"token update:       {figures['token_ms']:.2f} ms per token, laid out and painted "
        "every token   target < 2 ms"
    )
    print(
        f"peak memory:        {peak_mb:.0f} MB (this process), {child_peak_mb:.0f} MB "
        "(start-up child)   target < 300 MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
