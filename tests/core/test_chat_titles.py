"""Chat titles that make sense: never a code block's language, never left at "New chat"
after a first reply that was stopped or failed."""

from __future__ import annotations

import pytest

from chatdesk.chat import ChatEngine
from chatdesk.domain import DEFAULT_TITLE
from chatdesk.providers.base import ProviderError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from tests.openai_test_server import OpenAITestServer


async def test_a_code_answer_to_the_title_prompt_is_not_the_title(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    openai_server.reply = "```python\nprint('hi')\n```"
    await _drain(engine.send(session.id, "Print hi in Python please"))
    await engine.wait_for_titles()
    title = (await manager.require_session(session.id)).title
    assert title == "Print hi in Python please"
    await engine.close()


async def test_a_failed_first_reply_still_names_the_chat(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    openai_server.reply = "A reply that will be cut off before the end"
    openai_server.hang_up_after = 2
    with pytest.raises(ProviderError):
        await _drain(engine.send(session.id, "Tell me about lighthouses"))
    assert (await manager.require_session(session.id)).title == "Tell me about lighthouses"
    await engine.close()


async def test_a_stopped_first_reply_still_names_the_chat(
    manager: SessionManager, provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=True)
    session = await manager.create_session()
    assert session.title == DEFAULT_TITLE
    openai_server.chunk_delay = 0.05
    async for _delta in engine.send(session.id, "Describe the moon"):
        engine.cancel(session.id)
    assert (await manager.require_session(session.id)).title == "Describe the moon"
    await engine.close()


async def _drain(stream):  # type: ignore[no-untyped-def]
    return [delta async for delta in stream]


async def test_a_chat_whose_first_reply_was_interrupted_is_named_when_opened(
    manager: SessionManager, provider: OpenAICompatibleProvider, db_url: str
) -> None:
    # As a killed app leaves it: the question, and a reply marked interrupted at start-up.
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "How do tides work")
    await manager.add_message(session.id, "assistant", "Tides are", status="streaming")
    await manager.close()
    reopened = await SessionManager.open(db_url)
    try:
        engine = ChatEngine(reopened, provider, auto_title=True)
        again = await reopened.require_session(session.id)
        assert again.history[-1].status == "interrupted"
        assert again.title == DEFAULT_TITLE
        await engine.name_if_untitled(session.id)
        assert again.title == "How do tides work"
        await engine.close()
    finally:
        await reopened.close()
