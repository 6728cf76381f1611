"""Tools offered to models: ``manage_session``, run through the SessionManager.

The model sees one function in the OpenAI ``tools`` format. Its actions:

* ``info``: message count, tokens used and the context window;
* ``rename``: a new title;
* ``compact``: summarise the oldest messages now (the originals are kept);
* ``truncate``: keep the first ``keep_count`` messages (default 10), delete the rest.

A call with bad arguments changes nothing and gets a result that says what was wrong,
so the model can try again. Results are JSON text, what the model reads next.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chatdesk.context import ContextBudget
from chatdesk.domain import Message
from chatdesk.sessions import SessionManager

MANAGE_SESSION = "manage_session"
DEFAULT_KEEP_COUNT = 10
ACTIONS = ("info", "rename", "compact", "truncate")
_MAX_TITLE = 200

MANAGE_SESSION_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": MANAGE_SESSION,
        "description": (
            "Manage this chat session. 'info' tells how many messages it holds and how "
            "much of the context window they use; 'rename' sets its title; 'compact' "
            "summarises the oldest messages to free context (nothing is lost: the user "
            "can expand or undo it); 'truncate' keeps only the first keep_count messages "
            "and deletes the rest."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": list(ACTIONS)},
                "title": {"type": "string", "description": "The new title (rename)."},
                "keep_count": {
                    "type": "integer",
                    "minimum": 0,
                    "description": (
                        f"How many of the first messages to keep (truncate; default "
                        f"{DEFAULT_KEEP_COUNT})."
                    ),
                },
            },
            "required": ["action"],
            "additionalProperties": False,
        },
    },
}

_ALLOWED = {"info": set(), "compact": set(), "rename": {"title"}, "truncate": {"keep_count"}}


class ToolArgumentError(ValueError):
    """A tool call's arguments are not what the tool takes; the message says why."""


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A validated ``manage_session`` call."""

    action: str
    title: str | None = None
    keep_count: int = DEFAULT_KEEP_COUNT


def parse_manage_session(arguments: str) -> ToolRequest:
    """The request in a call's JSON ``arguments``; ToolArgumentError says what is wrong."""
    try:
        raw = json.loads(arguments) if arguments.strip() else {}
    except ValueError as exc:
        raise ToolArgumentError(f"the arguments are not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ToolArgumentError("the arguments must be a JSON object")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ToolArgumentError(
            f"'action' must be one of {', '.join(ACTIONS)}, got {json.dumps(action)}"
        )
    unknown = sorted(set(raw) - {"action"} - _ALLOWED[action])
    if unknown:
        raise ToolArgumentError(f"'{action}' does not take {', '.join(unknown)}")
    if action == "rename":
        title = raw.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ToolArgumentError("'rename' needs a non-empty string 'title'")
        if len(title) > _MAX_TITLE:
            raise ToolArgumentError(f"'title' is longer than {_MAX_TITLE} characters")
        return ToolRequest(action, title=" ".join(title.split()))
    if action == "truncate":
        keep = raw.get("keep_count", DEFAULT_KEEP_COUNT)
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ToolArgumentError(
                f"'keep_count' must be a whole number of 0 or more, got {json.dumps(keep)}"
            )
        return ToolRequest(action, keep_count=keep)
    return ToolRequest(action)


@dataclass(slots=True)
class SessionTools:
    """Runs ``manage_session`` calls for one engine; writes go through the manager.

    ``measure`` gives a session's context budget; ``compact`` compacts it now and returns
    the summary (None when there was nothing to compact).
    """

    manager: SessionManager
    measure: Callable[[str], Awaitable[ContextBudget]]
    compact: Callable[[str], Awaitable[Message | None]]

    @staticmethod
    def definitions() -> list[dict[str, Any]]:
        """The ``tools`` list of a request."""
        return [MANAGE_SESSION_TOOL]

    async def run(self, session_id: str, call: dict[str, Any]) -> str:
        """Run one tool call; its result as JSON text (an error result when it is bad)."""
        function = call.get("function") or {}
        name = function.get("name")
        if name != MANAGE_SESSION:
            return _result(error=f"there is no tool called {json.dumps(name)}")
        try:
            request = parse_manage_session(str(function.get("arguments") or ""))
        except ToolArgumentError as exc:
            return _result(error=f"{exc}; nothing was changed")
        session = await self.manager.require_session(session_id)
        if request.action == "info":
            budget = await self.measure(session_id)
            return _result(
                title=session.title,
                messages=session.message_count,
                tokens_used=budget.used,
                context_window=budget.window,
            )
        if request.action == "rename":
            assert request.title is not None
            await self.manager.update_session(session_id, title=request.title)
            return _result(ok=True, title=request.title)
        if request.action == "compact":
            summary = await self.compact(session_id)
            if summary is None:
                return _result(ok=False, note="the chat is too short to compact")
            budget = await self.measure(session_id)
            return _result(
                ok=True,
                summarised_messages=summary.compacted_count,
                tokens_used=budget.used,
                context_window=budget.window,
            )
        kept = await self.manager.truncate_messages(session_id, request.keep_count)
        return _result(ok=True, kept_messages=kept)


def _result(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)
