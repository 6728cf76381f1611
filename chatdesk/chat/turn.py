"""A turn and its rounds: what the engine, the reply writer and the tool rounds share.

A turn owns its session from before anything is changed until its reply has ended; Stop
cancels what it is waiting for at that moment (the request streaming, or the summary
being written before it). A turn is made of rounds, one request each: a reply, or tool
calls answered before the next round.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chatdesk.chat.titles import TitleJob
from chatdesk.domain import Message
from chatdesk.providers.base import Usage


@dataclass(slots=True)
class Turn:
    """One turn owning a session: what cancel() needs to stop it, and what follows it."""

    cancelled: bool = False
    # What Stop cancels: the request streaming, or the summary being written before it.
    pump: asyncio.Future[Any] | None = None
    title: TitleJob | None = None

    def stopped(self) -> bool:
        """Whether Stop was pressed (a call, so a check after an await is not optimised
        away by type narrowing)."""
        return self.cancelled

    def cancel(self) -> None:
        """Stop the turn: mark it, and cancel what it waits for now."""
        self.cancelled = True
        if self.pump is not None:
            self.pump.cancel()


@dataclass(slots=True)
class Round:
    """How one request of a turn ended."""

    status: str = "cancelled"
    error: BaseException | None = None
    reply: Message | None = None
    usage: Usage | None = None
    tool_calls: list[dict[str, Any]] | None = None
    # Whether tools were offered: calls a model makes unasked are dropped, as a call
    # stored without its results would make every later request invalid.
    tools_offered: bool = False
