"""A child process for the crash test: sends one message and streams the reply until killed.

Usage: ``python -m tests.e2e.streaming_child DATABASE_URL BASE_URL MODEL``. It prints
``session <id>`` once the session exists, then streams with a short flush interval.
"""

from __future__ import annotations

import asyncio
import sys

from chatdesk.chat import ChatEngine
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager


async def run(database_url: str, base_url: str, model: str) -> None:
    """Stream one reply into a new session of the database at ``database_url``."""
    manager = await SessionManager.open(database_url)
    provider = OpenAICompatibleProvider(base_url, None, model)
    engine = ChatEngine(manager, provider, flush_interval=0.1, auto_title=False)
    session = await manager.create_session("crash test")
    print(f"session {session.id}", flush=True)
    async for _delta in engine.send(session.id, "Tell me a long story."):
        pass
    await manager.close()


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:4]))
