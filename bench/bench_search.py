"""Figures for search, trash-aware title filtering, index cost on writes, and import.

Builds (with bulk SQL, the index triggers active) a database of 10,000 chats of 100
messages each (one million messages) whose words follow a Zipf distribution over a
20,000-word vocabulary, then prints:

* search: median / p95 / max of ``manager.search`` for queries a person might type
  (one or two words of varied frequency, the last one often unfinished);
* title filter: median / max of ``manager.search(..., titles_only=True)``;
* add_message: median with the index triggers and without them, on the same database;
* import: time to import a generated ChatGPT export of about 100 MB into a fresh database.

Run: ``python bench/bench_search.py [--keep DIR] [--sessions N] [--import-mb MB]``.
``--sidebar-only`` times only the sidebar's title filter, over chats made in memory
(same title words and typed queries, no database built): seconds instead of minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from chatdesk.domain import new_id
from chatdesk.interchange import import_file
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage import open_database
from chatdesk.storage.search import SEARCH_SCHEMA

VOCABULARY = 20_000
SEED = 11


def vocabulary(rng: random.Random) -> list[str]:
    """Pronounceable made-up words, distinct."""
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        length = rng.randint(2, 5)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(length)))
    ordered = sorted(words)  # a set's order changes from run to run; the shuffle must not
    rng.shuffle(ordered)
    return ordered


class Writer:
    """Zipf-distributed text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
        total = 0.0
        self.cumulative = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)

    def text(self, count: int) -> str:
        """``count`` words."""
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=count))


def build(db_path: Path, sessions: int, messages: int, writer: Writer) -> float:
    """Fill the database with bulk inserts (triggers keep the index); returns seconds."""
    asyncio.run(_create(db_path))
    started = time.perf_counter()
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    base = time.time() - 86400 * 365
    rng = writer.rng
    for first in range(0, sessions, 500):
        with connection:
            for index in range(first, min(first + 500, sessions)):
                session_id = new_id()
                created = base + index * 3000
                connection.execute(
                    "INSERT INTO sessions (id, owner, title, kind, created_at, updated_at, "
                    "message_count) VALUES (?, 'local', ?, 'chat', ?, ?, ?)",
                    (session_id, writer.text(rng.randint(2, 6)), created, created + 60, messages),
                )
                connection.executemany(
                    "INSERT INTO messages (id, session_id, position, role, content_type, "
                    "content, status, created_at) VALUES (?, ?, ?, ?, 'text', ?, 'complete', ?)",
                    [
                        (
                            new_id(),
                            session_id,
                            position,
                            "user" if position % 2 == 0 else "assistant",
                            writer.text(rng.randint(10, 25) if position % 2 == 0 else 60),
                            created + position,
                        )
                        for position in range(messages)
                    ],
                )
        print(f"  built {min(first + 500, sessions)}/{sessions} chats", end="\r", flush=True)
    connection.execute("INSERT INTO search_fts (search_fts) VALUES ('optimize')")
    connection.close()
    print()
    return time.perf_counter() - started


async def _create(db_path: Path) -> None:
    engine = await open_database(sqlite_url(db_path))
    await engine.dispose()


def queries(writer: Writer, count: int) -> list[str]:
    """What people type: words of every frequency band, some pairs, unfinished last words."""
    rng = random.Random(SEED + 1)
    found = []
    for i in range(count):
        # Ranks spread over the vocabulary on a log scale: common, middling and rare words.
        rank = int(10 ** rng.uniform(1, 4.3)) % VOCABULARY
        word = writer.words[rank]
        if i % 3 == 1:
            word = f"{writer.words[int(10 ** rng.uniform(1, 4.3)) % VOCABULARY]} {word}"
        if i % 4 == 2:
            word = word[: max(3, len(word) - 2)]
        found.append(word)
    return found


async def time_calls(calls: list[object], clock: Any = time.perf_counter) -> list[float]:
    """Milliseconds of each awaited call, by ``clock`` (wall time unless told)."""
    times = []
    for call in calls:
        started = clock()
        await call  # type: ignore[misc]
        times.append((clock() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    """Median, p95 and max of ``times`` in milliseconds."""
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


async def measure(db_path: Path, writer: Writer) -> None:
    """Search, title filtering and add_message with and without the index."""
    manager = await SessionManager.open(sqlite_url(db_path))
    try:
        asked = queries(writer, 200)
        await manager.search(asked[0])  # warm the page cache once
        times = await time_calls([manager.search(q) for q in asked])
        print(f"search ({len(asked)} queries, best 50 by bm25): {summary(times)}")
        common = await time_calls([manager.search(w) for w in writer.words[:5]])
        print(f"search for the 5 most common words: {summary(common)}")
        titles = await time_calls([manager.search(q, titles_only=True) for q in asked])
        print(f"title search in the index ({len(asked)} queries): {summary(titles)}")
        sidebar_filter(await manager.list_sessions(archived=False), asked)

        session = await manager.create_session("bench")
        triggers = [s for s in SEARCH_SCHEMA if s.startswith("CREATE TRIGGER messages_search")]
        # CPU time of the process (the database thread included): the index's cost, which
        # wall time on a machine shared with other work hides under waiting.
        for label, clock in (("CPU time", time.process_time), ("wall time", time.perf_counter)):
            with_index: list[float] = []
            without_index: list[float] = []
            # Alternating rounds, so a busy machine weighs on both sides alike.
            for _ in range(8):
                with_index += await time_calls(
                    [manager.add_message(session.id, "user", writer.text(40)) for _ in range(40)],
                    clock,
                )
                await _run(manager, [f"DROP TRIGGER {t}" for t in MESSAGE_TRIGGERS])
                without_index += await time_calls(
                    [manager.add_message(session.id, "user", writer.text(40)) for _ in range(40)],
                    clock,
                )
                await _run(manager, triggers)
            slower = statistics.median(with_index) / statistics.median(without_index) - 1
            print(f"add_message with the index ({label}): {summary(with_index)}")
            print(f"add_message without it ({label}):     {summary(without_index)}")
            print(f"add_message cost of the index ({label}): {slower * 100:+.0f}% (median)")
        await manager.delete_session(session.id)
    finally:
        await manager.close()


def sidebar_only(sessions: int, writer: Writer) -> None:
    """Time the sidebar filter over ``sessions`` chats titled as the database build does."""
    from chatdesk.domain import SessionSummary

    rng = writer.rng
    base = time.time() - 86400 * 365
    summaries = []
    for index in range(sessions):
        created = datetime.fromtimestamp(base + index * 3000, UTC)
        title = writer.text(rng.randint(2, 6))
        summaries.append(SessionSummary(new_id(), title, "chat", "local", 100, created, created))
    sidebar_filter(summaries, queries(writer, 200))


def sidebar_filter(summaries: list[Any], asked: list[str]) -> None:
    """Time the sidebar's title filter (what typing in the search box does at once)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    # The offscreen platform says it cannot resize windows to their hints, on every show.
    qInstallMessageHandler(lambda *_args: None)

    from chatdesk.ui.session_list import SessionSidebar

    app = QApplication.instance() or QApplication([])
    sidebar = SessionSidebar()
    sidebar.resize(270, 700)
    sidebar.model.set_sessions(summaries)
    sidebar.show()
    app.processEvents()
    for label, repaint in (("filtering", False), ("filtering, layout and paint", True)):
        times = []
        for wanted in asked[:100]:
            typed = ""
            for char in wanted:  # as typed, one key at a time
                typed += char
                started = time.perf_counter()
                sidebar.filter.setText(typed)
                if repaint:
                    sidebar.list.viewport().repaint()
                    app.processEvents()
                times.append((time.perf_counter() - started) * 1000)
            sidebar.filter.setText("")
            app.processEvents()
        print(
            f"sidebar title filter over {len(summaries)} chats, {label} "
            f"({len(times)} keystrokes): {summary(times)}"
        )
    sidebar.close()


MESSAGE_TRIGGERS = ("messages_search_ai", "messages_search_ad", "messages_search_au")


async def _run(manager: SessionManager, statements: list[str]) -> None:
    # Through the manager's own connection: a schema change made on another connection
    # while the manager holds its pool open is not what is being measured.
    async with manager.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


def chatgpt_export(path: Path, megabytes: int, writer: Writer) -> int:
    """Write a ChatGPT-format conversations.json of about ``megabytes``; returns its chats."""
    target = megabytes * 1024 * 1024
    rng = random.Random(SEED + 2)
    written = 0
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        while written < target:
            mapping: dict[str, dict[str, object]] = {}
            parent = None
            created = 1.7e9 + count * 1000
            for turn in range(rng.randint(6, 30)):
                node = new_id()
                role = "user" if turn % 2 == 0 else "assistant"
                mapping[node] = {
                    "id": node,
                    "message": {
                        "id": node,
                        "author": {"role": role, "name": None, "metadata": {}},
                        "create_time": created + turn,
                        "update_time": None,
                        "content": {
                            "content_type": "text",
                            "parts": [writer.text(20 if role == "user" else 150)],
                        },
                        "status": "finished_successfully",
                        "end_turn": role == "assistant" or None,
                        "weight": 1.0,
                        "metadata": {},
                        "recipient": "all",
                        "channel": None,
                    },
                    "parent": parent,
                    "children": [],
                }
                if parent is not None:
                    mapping[parent]["children"] = [node]  # type: ignore[index]
                parent = node
            conversation = {
                "title": writer.text(4),
                "create_time": created,
                "update_time": created + 60,
                "mapping": mapping,
                "moderation_results": [],
                "current_node": parent,
                "plugin_ids": None,
                "conversation_id": new_id(),
                "conversation_template_id": None,
                "gizmo_id": None,
                "is_archived": False,
                "safe_urls": [],
                "default_model_slug": "gpt-4o",
                "id": new_id(),
            }
            chunk = ("," if count else "") + json.dumps(conversation)
            out.write(chunk)
            written += len(chunk)
            count += 1
        out.write("]")
    return count


async def measure_import(folder: Path, megabytes: int, writer: Writer) -> None:
    """Time importing a generated ChatGPT export into a fresh database, then again."""
    export = folder / "conversations.json"
    chats = chatgpt_export(export, megabytes, writer)
    size = export.stat().st_size / 1024 / 1024
    manager = await SessionManager.open(sqlite_url(folder / "import.db"))
    try:
        started = time.perf_counter()
        result = await import_file(manager, export)
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = await import_file(manager, export)
        second = time.perf_counter() - started
    finally:
        await manager.close()
    print(
        f"import of a {size:.0f} MB ChatGPT export ({chats} chats): {first:.1f} s "
        f"({len(result.added)} added); again: {second:.1f} s ({len(again.added)} added)"
    )


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder to build in (reused if it has a DB)")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--import-mb", type=int, default=100)
    parser.add_argument(
        "--sidebar-only", action="store_true", help="time only the sidebar's title filter"
    )
    args = parser.parse_args()
    if args.sidebar_only:
        sidebar_only(args.sessions, Writer(random.Random(SEED)))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="chatdesk-bench-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "search.db"
    writer = Writer(random.Random(SEED))
    if not db_path.exists():
        print(f"building {args.sessions} chats x {args.messages} messages in {db_path} ...")
        seconds = build(db_path, args.sessions, args.messages, writer)
        print(f"built in {seconds:.0f} s; file {db_path.stat().st_size / 1024 / 1024:.0f} MB")
    asyncio.run(measure(db_path, writer))
    if args.import_mb > 0:
        asyncio.run(measure_import(folder, args.import_mb, writer))


if __name__ == "__main__":
    main()
