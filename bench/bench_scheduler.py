"""Figures for scheduled tasks: 100 tasks due at the same moment against a local server.

Adds ``--tasks`` tasks whose single run is due at the same second, then prints the time
from that second until every reply is stored, per-task latency (median and slowest), and
the longest event-loop stall meanwhile (how late a 5 ms heartbeat woke up: what a window
on this loop would feel). The server is the project's OpenAI test server on 127.0.0.1,
streaming ``--words`` words ``--chunk-delay`` seconds apart.
Run: ``python bench/bench_scheduler.py [--tasks 100] [--words 30] [--chunk-delay 0.01]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatdesk.chat import ChatEngine
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.scheduler import (
    MAX_PARALLEL_RUNS,
    RUN_FINISHED,
    RUN_STARTED,
    TaskEvent,
    TaskScheduler,
)
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.openai_test_server import OpenAITestServer

HEARTBEAT = 0.005


async def heartbeat(stalls: list[float], stop: asyncio.Event) -> None:
    """Record how late each HEARTBEAT sleep wakes up."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(HEARTBEAT)
        stalls.append(loop.time() - before - HEARTBEAT)


async def bench(folder: Path, tasks: int, words: int, chunk_delay: float, parallel: int) -> None:
    """Run the benchmark in ``folder`` and print its figures."""
    with OpenAITestServer() as server:
        server.reply = " ".join(f"word{i}" for i in range(words))
        server.chunk_delay = chunk_delay
        manager = await SessionManager.open(sqlite_url(folder / "bench.db"))
        provider = OpenAICompatibleProvider(server.base_url, None, server.model)
        engine = ChatEngine(manager, provider, auto_title=False)
        scheduler = TaskScheduler(manager, engine, max_parallel_runs=parallel)
        await scheduler.start()

        due = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        started: dict[str, float] = {}
        finished: dict[str, float] = {}
        all_done = asyncio.Event()

        def listener(event: TaskEvent) -> None:
            if event.kind == RUN_STARTED:
                started[event.task_id] = time.time()
            elif event.kind == RUN_FINISHED:
                finished[event.task_id] = time.time()
                if len(finished) == tasks:
                    all_done.set()

        # One run first, so the figures leave out one-off costs (the HTTP client's lazy
        # imports, SQLAlchemy's statement cache) that any first chat reply pays as well.
        warm_up = await scheduler.add_task(name="warm-up", prompt="hi", schedule="every 1 d")
        await scheduler.run_now(warm_up.id)
        await scheduler.delete_task(warm_up.id)
        scheduler.add_listener(listener)
        for index in range(tasks):
            await scheduler.add_task(
                name=f"Task {index}", prompt=f"Report {index}", schedule=due.isoformat()
            )
        if datetime.now(UTC) >= due:
            raise SystemExit("adding the tasks took longer than the 3 s lead; use fewer tasks")

        stalls: list[float] = []
        stop = asyncio.Event()
        beating = asyncio.create_task(heartbeat(stalls, stop))
        await asyncio.wait_for(all_done.wait(), 600)
        stop.set()
        await beating

        due_at = due.timestamp()
        latencies = sorted(finished[t] - due_at for t in finished)
        statuses = [t.last_status for t in scheduler.list_tasks()]
        rows = await manager.list_sessions()
        await scheduler.stop()
        await engine.close()
        await provider.close()
        await manager.close()

    complete = statuses.count("complete")
    print(f"tasks due at once:                 {tasks} ({parallel} run at a time)")
    print(f"reply: {words} words, {chunk_delay * 1000:.0f} ms apart (local test server)")
    print(f"replies stored complete:           {complete}/{tasks}")
    print(f"task sessions:                     {sum(r.kind == 'task' for r in rows)}")
    print(f"first run started after due time:  {min(started.values()) - due_at:.3f} s")
    print(f"all replies stored after due time: {latencies[-1]:.3f} s")
    print(f"per-task time to stored reply:     median {statistics.median(latencies):.3f} s")
    print(f"longest event-loop stall:          {max(stalls) * 1000:.1f} ms")
    print(
        "event-loop stall p99:              "
        f"{statistics.quantiles(stalls, n=100)[98] * 1000:.1f} ms ({len(stalls)} heartbeats)"
    )


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--chunk-delay", type=float, default=0.01)
    parser.add_argument("--parallel", type=int, default=MAX_PARALLEL_RUNS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(bench(Path(folder), args.tasks, args.words, args.chunk_delay, args.parallel))


if __name__ == "__main__":
    main()
