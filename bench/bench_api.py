"""Figures for the local HTTP API, served by a real ``chatdesk serve`` process.

Fills a fresh data folder with 1,000 sessions of one token's owner (plus 1,000 of another
owner, which the list must skip), starts ``chatdesk serve`` on 127.0.0.1, then prints:
the latency of ``GET /api/sessions`` (median and p95 of sequential requests) and the
requests per second 20 concurrent clients get from it.
Run: ``python bench/bench_api.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from chatdesk.domain import new_id, utcnow
from chatdesk.settings import sqlite_url
from chatdesk.storage import open_database, tables
from chatdesk.storage.api_tokens import TokenStore

SESSIONS = 1_000
CLIENTS = 20
SEQUENTIAL = 300
REPO_ROOT = Path(__file__).resolve().parents[1]


async def fill(database_url: str) -> str:
    """1,000 sessions of ``bench`` and 1,000 of ``other``; returns bench's token."""
    engine = await open_database(database_url)
    start = utcnow() - timedelta(days=30)
    rows = []
    for owner in ("bench", "other"):
        for index in range(SESSIONS):
            at = start + timedelta(minutes=index)
            rows.append(
                {
                    "id": new_id(),
                    "owner": owner,
                    "title": f"{owner} session {index}",
                    "kind": "chat",
                    "created_at": at,
                    "updated_at": at,
                    "message_count": 10,
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(tables.sessions), rows)
    token = await TokenStore(engine).create("bench")
    await engine.dispose()
    return token


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """``chatdesk serve`` on a free port; the process and its URL."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "chatdesk", "serve", "--port", "0", "--data-dir", str(data_dir)],
        cwd=REPO_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"ChatDesk API serving on (http://\S+)", line)
        if found:
            # The access log goes on: a thread drains the pipe so the server never blocks.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found.group(1)
    raise RuntimeError("chatdesk serve did not start")


async def measure(url: str, token: str, seconds: float) -> None:
    """Print the latency and throughput figures."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        first = await client.get("/api/sessions")
        assert first.status_code == 200 and len(first.json()) == SESSIONS, first.status_code
        timings = []
        for _ in range(SEQUENTIAL):
            began = time.perf_counter()
            response = await client.get("/api/sessions")
            timings.append(time.perf_counter() - began)
            assert response.status_code == 200
    timings.sort()
    size = len(first.content) / 1e3
    print(f"GET /api/sessions, {SESSIONS:,} sessions ({size:.0f} kB of JSON)")
    print(f"  latency median of {SEQUENTIAL}     {statistics.median(timings) * 1e3:7.1f} ms")
    print(f"  latency p95                 {timings[int(len(timings) * 0.95)] * 1e3:7.1f} ms")

    done = 0
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as own:
            while time.perf_counter() < deadline:
                response = await own.get("/api/sessions")
                assert response.status_code == 200
                done += 1

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - began
    rate = done / elapsed
    print(f"  {CLIENTS} concurrent clients      {rate:7.1f} requests/s ({done} in {elapsed:.1f} s)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the load run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatdesk-bench-api-") as folder:
        data_dir = Path(folder)
        token = await fill(sqlite_url(data_dir / "chat.db"))
        process, url = start_server(data_dir)
        try:
            await measure(url, token, args.seconds)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
