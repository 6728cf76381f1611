"""Figures for the context budget and compaction.

Prints: the cost of budgeting a 10,000-message chat before a send (first measure, then
the median of later ones, counts cached; target under 20 ms), the same with the
embedded model's own tokenizer, and one compaction round (summary by the embedded
SmolLM2 at n_ctx 512 plus the archive write) of a 60-message chat.
Run: ``python bench/bench_context.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from chatdesk.chat import ChatEngine
from chatdesk.context import ContextWindows, TokenCounter, measure, reply_reserve
from chatdesk.domain import Message, Session
from chatdesk.providers.local import LocalModelProvider
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url

LARGE_CHAT = 10_000
TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4
REPEATS = 25


def _large_session() -> Session:
    session = Session(title="large", system_prompt="You are a helpful assistant.")
    for i in range(LARGE_CHAT):
        role = "user" if i % 2 == 0 else "assistant"
        session.history.append(Message(role=role, content=f"{i} {TEXT}"))
    return session


def _time_budget(session: Session, counter: TokenCounter, window: int) -> tuple[float, float]:
    reserve = reply_reserve(window)
    start = time.perf_counter()
    measure(session, counter, window, reserve)
    first = time.perf_counter() - start
    later = []
    for _ in range(REPEATS):
        session.history.append(Message(role="user", content="one more message"))
        start = time.perf_counter()
        measure(session, counter, window, reserve)
        later.append(time.perf_counter() - start)
    return first * 1000, statistics.median(later) * 1000


async def main() -> None:
    """Run the benchmarks and print their figures."""
    session = _large_session()
    first, later = _time_budget(session, TokenCounter(), 8192)
    print(
        f"budget of a {LARGE_CHAT:,}-message chat, estimated counts: first {first:.1f} ms, "
        f"then {later:.2f} ms per send (median of {REPEATS}; target < 20 ms)"
    )

    model = LocalModelProvider(n_ctx=512)
    await model.load(warm_up=False)
    try:
        tokenize = await model.tokenizer(None)
        session = _large_session()
        first, later = _time_budget(session, TokenCounter(tokenize), 512)
        print(
            f"budget of a {LARGE_CHAT:,}-message chat, llama.cpp tokenizer: first {first:.1f} ms "
            f"(every message tokenized once), then {later:.2f} ms per send"
        )

        with tempfile.TemporaryDirectory() as folder:
            manager = await SessionManager.open(sqlite_url(Path(folder) / "chat.db"))
            chat = await manager.create_session("facts")
            for i in range(30):
                await manager.add_message(chat.id, "user", f"Remember fact {i}: box {i} is blue.")
                await manager.add_message(chat.id, "assistant", f"Noted: box {i} is blue.")
            await manager.add_message(chat.id, "user", "What colour is box 29?")
            engine = ChatEngine(manager, model, auto_title=False, context_windows=ContextWindows())
            start = time.perf_counter()
            summary = await engine.compact(chat.id)
            took = time.perf_counter() - start
            print(
                f"one compaction round on the embedded model (n_ctx 512): {took:.1f} s for "
                f"{summary.compacted_count} messages -> a {len(str(summary.content))}-character "
                "summary"
            )
            start = time.perf_counter()
            await manager.undo_compaction(chat.id)
            print(f"undo of that compaction: {(time.perf_counter() - start) * 1000:.1f} ms")
            await engine.close()
            await manager.close()
    finally:
        await model.close()


if __name__ == "__main__":
    asyncio.run(main())
