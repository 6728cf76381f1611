"""Figures for the SessionManager over a large database.

Fills a fresh database with 1,000 sessions of 100 messages plus one session of 10,000
messages, then prints: time to open the manager, to list all sessions, to load the
10,000-message session, to add one message (median), and sustained add_message
throughput, and the memory held after visiting every session once.
Run: ``python bench/bench_sessions.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from chatdesk.domain import new_id, utcnow
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage import open_database, tables

SESSIONS = 1_000
MESSAGES_PER_SESSION = 100
LARGE_SESSION_MESSAGES = 10_000
TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4


async def fill(database_url: str) -> str:
    """Write the benchmark data in bulk; returns the id of the 10,000-message session."""
    engine = await open_database(database_url)
    start = utcnow() - timedelta(days=30)
    large_id = new_id()
    specs = [(new_id(), MESSAGES_PER_SESSION) for _ in range(SESSIONS)]
    specs.append((large_id, LARGE_SESSION_MESSAGES))
    async with engine.begin() as conn:
        for index, (session_id, count) in enumerate(specs):
            created = start + timedelta(minutes=index)
            await conn.execute(
                insert(tables.sessions).values(
                    id=session_id,
                    owner="local",
                    title=f"Session {index}",
                    kind="chat",
                    created_at=created,
                    updated_at=created,
                    message_count=count,
                )
            )
            await conn.execute(
                insert(tables.messages),
                [
                    {
                        "id": new_id(),
                        "session_id": session_id,
                        "position": position,
                        "role": "user" if position % 2 == 0 else "assistant",
                        "content_type": "text",
                        "content": f"{position}: {TEXT}",
                        "status": "complete",
                        "created_at": created,
                    }
                    for position in range(count)
                ],
            )
    await engine.dispose()
    return large_id


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


async def measure(database_url: str, large_id: str) -> None:
    began = time.perf_counter()
    manager = await SessionManager.open(database_url)
    print(f"open manager                 {ms(time.perf_counter() - began)}")

    timings = []
    for _ in range(5):
        began = time.perf_counter()
        listed = await manager.list_sessions()
        timings.append(time.perf_counter() - began)
    assert len(listed) == SESSIONS + 1
    print(f"list {len(listed)} sessions (median of 5) {ms(statistics.median(timings))}")

    began = time.perf_counter()
    large = await manager.get_session(large_id)
    print(f"get 10,000-message session    {ms(time.perf_counter() - began)}")
    assert large is not None and large.message_count == LARGE_SESSION_MESSAGES

    target = listed[-1].id
    await manager.get_session(target)
    timings = []
    for index in range(200):
        began = time.perf_counter()
        await manager.add_message(target, "user", f"new message {index}")
        timings.append(time.perf_counter() - began)
    print(f"add_message (median of 200)   {ms(statistics.median(timings))}")
    print(f"add_message (p95)             {ms(sorted(timings)[int(len(timings) * 0.95)])}")

    count = 2_000
    began = time.perf_counter()
    for index in range(count):
        await manager.add_message(large_id, "assistant", f"sustained {index}")
    elapsed = time.perf_counter() - began
    print(f"sustained add_message         {count / elapsed:8.0f} messages/s")

    # What a long-running process (serve) holds after touching every session once.
    del large
    before = resident_mib()
    began = time.perf_counter()
    for summary in listed:
        await manager.get_session(summary.id)
    gc.collect()
    print(
        f"visit all {len(listed):,} sessions          {ms(time.perf_counter() - began)}; "
        f"{manager.sessions_in_memory} kept in memory, resident memory "
        f"{before:.0f} -> {resident_mib():.0f} MiB"
    )
    await manager.close()


def resident_mib() -> float:
    """This process's resident memory now, in MiB (Linux; peak elsewhere)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="chatdesk-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "chat.db"
    if database.exists():
        database.unlink()
    began = time.perf_counter()
    large_id = await fill(sqlite_url(database))
    size = database.stat().st_size / 1e6
    print(
        f"filled {SESSIONS:,} x {MESSAGES_PER_SESSION} + {LARGE_SESSION_MESSAGES:,} messages "
        f"in {time.perf_counter() - began:.1f} s ({size:.0f} MB)"
    )
    await measure(sqlite_url(database), large_id)


if __name__ == "__main__":
    asyncio.run(main())
