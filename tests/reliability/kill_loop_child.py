"""A child for the SIGKILL loop: random chat work on one database until it is killed.

Usage: ``python -m tests.reliability.kill_loop_child DATABASE_URL BASE_URL MODEL SEED``.
It prints one JSON line per fact the parent checks later: ``ready``; ``kept`` for a
message whose write returned (so it is committed), with its content and status; and
``dropping`` with the ids a truncate, regenerate or replace is about to remove (printed
before the call, so a kill in the middle never counts them as kept).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from chatdesk.chat import ChatEngine
from chatdesk.domain import Message
from chatdesk.providers import ProviderError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager


def emit(kind: str, **fields: object) -> None:
    print(json.dumps({"kind": kind, **fields}), flush=True)


def kept(session_id: str, message: Message) -> None:
    emit(
        "kept",
        session=session_id,
        id=message.id,
        content=message.content,
        status=message.status,
    )


async def run(database_url: str, base_url: str, model: str, seed: int) -> None:
    """Work until killed."""
    rng = random.Random(seed)
    manager = await SessionManager.open(database_url)
    provider = OpenAICompatibleProvider(base_url, None, model)
    engine = ChatEngine(manager, provider, flush_interval=0.05, auto_title=False)
    sessions = [s.id for s in await manager.list_sessions()]
    emit("ready")
    step = 0
    while True:
        step += 1
        choice = rng.random()
        if not sessions or choice < 0.08:
            sessions.append((await manager.create_session(f"chat {seed}-{step}")).id)
            continue
        session_id = rng.choice(sessions)
        session = await manager.require_session(session_id)
        history = list(session.history)
        if choice < 0.6:
            try:
                async for _ in engine.send(session_id, f"question {seed}-{step}"):
                    pass
            except ProviderError:
                pass
            for message in (await manager.require_session(session_id)).history[-2:]:
                kept(session_id, message)
        elif choice < 0.72 and history and history[-1].role == "assistant":
            keep = len(history)
            while keep and history[keep - 1].role == "assistant":
                keep -= 1
            if keep == 0:
                continue
            emit("dropping", ids=[m.id for m in history[keep:]])
            try:
                async for _ in engine.regenerate(session_id):
                    pass
            except ProviderError:
                pass
            kept(session_id, (await manager.require_session(session_id)).history[-1])
        elif choice < 0.84 and history:
            keep = rng.randrange(len(history))
            emit("dropping", ids=[m.id for m in history[keep:]])
            await manager.truncate_messages(session_id, keep)
        elif choice < 0.9 and history:
            emit("dropping", ids=[m.id for m in history])
            new = [*history[: len(history) // 2], {"role": "user", "content": f"replaced {step}"}]
            for message in await manager.replace_messages(session_id, new):
                kept(session_id, message)
        else:
            message = await manager.add_message(session_id, "user", f"note {seed}-{step}")
            kept(session_id, message)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
