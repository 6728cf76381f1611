"""Generation speed of the bundled SmolLM2 model: through ChatDesk versus llama.cpp directly.

Loads the model once (before any timing), then alternates runs of

* ChatDesk: ``ChatEngine.send`` on a new session of a real SQLite file in a temporary
  folder, i.e. LocalModelProvider's worker thread, the engine's queue and persistence;
* direct: ``Llama.create_chat_completion(stream=True)`` on the same Llama object,

with the same prompt and settings (temperature 0, the same max_tokens, n_ctx and
n_threads). Tokens are counted the same way for both: the number of non-empty text
deltas. Prints the median tokens/s of each, their ratio (target: ChatDesk >= 0.95 of
direct) and the median time to first token through ChatEngine (target: < 0.5 s).
Run: ``python bench/bench_local_model.py [--runs N] [--max-tokens N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chatdesk.chat import ChatEngine
from chatdesk.providers.local import LocalModelProvider, completion_options
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def run_direct(llm: Any, max_tokens: int) -> tuple[int, float, float]:
    """One reply straight from llama.cpp: (tokens, seconds, seconds to first token)."""
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        # The same keyword arguments the provider passes (e.g. its repeat penalty).
        **completion_options({"max_tokens": max_tokens, "temperature": 0.0}),
    ):
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            if tokens == 1:
                first = time.perf_counter() - start
    return tokens, time.perf_counter() - start, first


async def run_engine(engine: ChatEngine, manager: SessionManager) -> tuple[int, float, float]:
    """One reply through ChatEngine.send: (tokens, seconds, seconds to first token)."""
    session = await manager.create_session()
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    async for _delta in engine.send(session.id, PROMPT):
        tokens += 1
        if tokens == 1:
            first = time.perf_counter() - start
    return tokens, time.perf_counter() - start, first


async def main(runs: int, max_tokens: int, n_ctx: int, n_threads: int | None) -> None:
    provider = LocalModelProvider(n_ctx=n_ctx, n_threads=n_threads)
    started = time.perf_counter()
    await provider.load()
    print(f"model: {provider.model_path.name}, loaded in {time.perf_counter() - started:.2f} s")
    llm = provider._llm  # the same Llama object for both paths
    assert llm is not None
    print(f"n_ctx={llm.n_ctx()}, n_threads={llm.n_threads}, max_tokens={max_tokens}")

    with tempfile.TemporaryDirectory(prefix="chatdesk-bench-") as folder:
        manager = await SessionManager.open(sqlite_url(Path(folder) / "chat.db"))
        engine = ChatEngine(
            manager,
            provider,
            auto_title=False,
            generation_options={"max_tokens": max_tokens, "temperature": 0.0},
        )
        try:
            # The first reply after loading evaluates the whole prompt (a cold start);
            # it also warms up and fills llama.cpp's prompt cache, then both paths reuse it.
            cold = await run_engine(engine, manager)
            run_direct(llm, max_tokens)
            direct: list[tuple[int, float, float]] = []
            chatdesk: list[tuple[int, float, float]] = []
            for _ in range(runs):
                direct.append(run_direct(llm, max_tokens))
                chatdesk.append(await run_engine(engine, manager))
        finally:
            await manager.close()
            await provider.close()

    def rate(result: tuple[int, float, float]) -> float:
        return result[0] / result[1]

    direct_rate = statistics.median(rate(r) for r in direct)
    engine_rate = statistics.median(rate(r) for r in chatdesk)
    print(f"tokens per reply: direct {[r[0] for r in direct]}, ChatDesk {[r[0] for r in chatdesk]}")
    print(f"direct llama_cpp:      {direct_rate:7.1f} tokens/s (median of {runs})")
    print(f"ChatDesk (ChatEngine): {engine_rate:7.1f} tokens/s (median of {runs})")
    print(f"ratio ChatDesk/direct: {engine_rate / direct_rate:7.3f} (target >= 0.95)")
    print(
        f"time to first token:   ChatDesk {statistics.median(r[2] for r in chatdesk):.3f} s, "
        f"direct {statistics.median(r[2] for r in direct):.3f} s (target < 0.5 s)"
    )
    print(f"first reply after load: ChatDesk time to first token {cold[2]:.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None, help="default: llama.cpp's")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.max_tokens, args.n_ctx, args.threads))
