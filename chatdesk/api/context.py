"""What the API's routes work with: the process's one manager, engine, registry and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatdesk.chat import ChatEngine
    from chatdesk.providers.registry import ProviderRegistry
    from chatdesk.sessions import SessionManager
    from chatdesk.storage.api_tokens import TokenStore


@dataclass(eq=False)
class ApiContext:
    """What the routes work with: the process's one manager, engine, registry and tokens."""

    manager: SessionManager
    engine: ChatEngine
    registry: ProviderRegistry
    tokens: TokenStore
    # Sessions with a turn started through the API, so shutting down can stop them.
    turns: set[str] = field(default_factory=set)
    # Set once stopping began: no new turn starts then.
    closing: bool = False

    def cancel_turns(self) -> int:
        """Stop every reply the API is writing (each is stored as cancelled), start no more."""
        self.closing = True
        stopped = 0
        for session_id in list(self.turns):
            stopped += self.engine.cancel(session_id)
        return stopped
