"""The real embedded SmolLM2 at a small window: a long chat is compacted and answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.context import build_context
from chatdesk.providers.local import LocalModelProvider
from chatdesk.sessions import SessionManager
from tests.core.conftest import db_path, db_url, manager  # noqa: F401

SMALL_WINDOW = 512


@pytest.fixture(scope="module")
def small_model() -> Iterator[LocalModelProvider]:
    """The bundled model with a 512-token window, loaded once for the module."""
    loaded = LocalModelProvider(n_ctx=SMALL_WINDOW)
    asyncio.run(loaded.load(warm_up=False))
    yield loaded
    asyncio.run(loaded.close())


async def test_a_sixty_message_chat_is_answered_within_a_512_token_window(
    manager: SessionManager,  # noqa: F811
    small_model: LocalModelProvider,
) -> None:
    session = await manager.create_session("Facts")
    for i in range(30):
        await manager.add_message(session.id, "user", f"Remember fact {i}: the box {i} is blue.")
        await manager.add_message(session.id, "assistant", f"Noted: box {i} is blue.")
    originals = {m.id for m in session.history}
    engine = ChatEngine(
        manager, small_model, auto_title=False, generation_options={"max_tokens": 48}
    )

    reply = "".join([d async for d in engine.send(session.id, "What colour is box 29?")])

    assert reply.strip()
    history = (await manager.require_session(session.id)).history
    assert history[-1].role == "assistant" and history[-1].status == "complete"
    assert history[0].is_summary
    # What was sent fits: counted with llama.cpp's own tokenizer, through the chat template.
    tokenize = await small_model.tokenizer(None)
    assert tokenize is not None
    sent = build_context(session, tools=False)[:-1]  # without the reply
    prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in sent)
    assert tokenize(prompt) + 48 <= SMALL_WINDOW
    budget = await engine.context_budget(session.id)
    assert budget.window == SMALL_WINDOW and budget.fits
    # No original lost: each is in the history or among the compacted messages.
    kept = {m.id for m in history} | {m.id for m in await manager.compacted_messages(session.id)}
    assert originals <= kept


async def test_the_meter_never_loads_the_model_to_measure(
    manager: SessionManager,  # noqa: F811
    small_model: LocalModelProvider,
) -> None:
    cold = LocalModelProvider(n_ctx=SMALL_WINDOW)
    engine = ChatEngine(manager, cold, auto_title=False)
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "hello there")

    budget = await engine.context_budget(session.id)

    assert not cold.loaded and not budget.exact and budget.window == SMALL_WINDOW
    # Once the model is loaded (the module's loaded one here), counts are exact.
    warm = ChatEngine(manager, small_model, auto_title=False)
    assert (await warm.context_budget(session.id)).exact
    await cold.close()
