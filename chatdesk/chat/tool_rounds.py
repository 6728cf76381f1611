"""Tool rounds: a model that takes tools is offered ``manage_session``, and its calls run.

The calls and their results are stored as messages and the turn goes on with another
request, at most MAX_TOOL_ROUNDS times; then the model must answer. A server that
refuses a request with tools is remembered and asked without them from then on. A call
that removed the very message asking for it (truncate) ends the turn, as its result
would answer a call that no longer exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chatdesk.chat.turn import Round
from chatdesk.context import model_key
from chatdesk.domain import new_id
from chatdesk.providers.base import Provider, ProviderError, ServerError
from chatdesk.sessions import SessionManager
from chatdesk.storage.errors import StorageError
from chatdesk.tools import SessionTools

# At most this many rounds of tool calls in one turn; then the model must answer.
MAX_TOOL_ROUNDS = 4


class ToolRounds:
    """Which models are offered tools, and running the calls a reply makes."""

    def __init__(
        self,
        manager: SessionManager,
        tools: SessionTools,
        enabled: Callable[[Provider, str | None], bool],
    ) -> None:
        """Store calls and results through ``manager``; ``enabled`` is Settings' switch."""
        self._manager = manager
        self._tools = tools
        self._enabled = enabled
        # Models whose server refused a request with tools.
        self._refused: set[str] = set()

    def offered_to(self, provider: Provider, model: str | None) -> bool:
        """Whether ``model`` is offered tools: it takes them, is allowed, never refused."""
        return (
            provider.accepts_tools
            and model_key(provider, model) not in self._refused
            and self._enabled(provider, model)
        )

    def definitions(self) -> list[dict[str, Any]]:
        """The tools as a request offers them."""
        return self._tools.definitions()

    def refused_by(self, key: str) -> None:
        """Offer the model ``key`` no tools from now on (its server refused them)."""
        self._refused.add(key)

    async def run(self, session_id: str, outcome: Round) -> bool:
        """Store the model's tool calls and their results; False when the turn must end.

        A call that removed the message asking for it (truncate) ends the turn: its
        result would answer a call that no longer exists.
        """
        calls = with_ids(outcome.tool_calls or [])
        request = outcome.reply
        if request is None:
            request = await self._manager.add_message(session_id, "assistant", "", tool_calls=calls)
        for call in calls:
            try:
                result = await self._tools.run(session_id, call)
            except (ValueError, ProviderError, StorageError) as exc:
                result = json.dumps({"error": f"the action failed: {exc}"}, ensure_ascii=False)
            session = await self._manager.require_session(session_id)
            if not any(m.id == request.id for m in session.history):
                return False
            await self._manager.add_message(session_id, "tool", result, tool_call_id=call["id"])
        return True


def with_ids(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls each with an id (a server that sends none gets one made up)."""
    for call in calls:
        if not call.get("id"):
            call["id"] = f"call_{new_id()[:24]}"
    return calls


def refuses_tools(error: BaseException | None) -> bool:
    """Whether ``error`` is a server refusing the ``tools`` of a request."""
    return (
        isinstance(error, ServerError)
        and error.status in (400, 422)
        and "tool" in str(error).lower()
    )
