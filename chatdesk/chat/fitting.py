"""Fitting a turn's context into the model's window, and explaining an empty reply.

Before each request the context is measured against the model's window
(:mod:`chatdesk.context`) and the oldest messages are folded into a summary, written by
the chat's own model, when it does not fit; ``harder`` folds more, for the one retry a
server that still refuses gets. Stop ends a summary being written, and then nothing
changes. A reply that streamed nothing is explained here: a context over the window is
said so, and a backend whose count is only estimated is asked once more without
streaming, which is how some servers reveal a context-too-long.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatdesk.chat.turn import Turn
from chatdesk.context import (
    ContextBudget,
    ContextWindows,
    TokenCounter,
    build_context,
    measure,
    plan_compaction,
    reply_reserve,
    summarise,
)
from chatdesk.domain import Message, Session
from chatdesk.providers.base import ContextTooLongError, Provider, ProviderError
from chatdesk.sessions import SessionManager

log = logging.getLogger(__name__)

EMPTY_REPLY_MESSAGE = "The model returned an empty reply. Try again, or choose another model."
# The smallest context window a server is likely to run with (llama.cpp's -c 512).
_SMALLEST_WINDOW = 512


class EmptyReplyError(ProviderError):
    """The model ended its reply without a single token (and without an error)."""


class ContextFitter:
    """Measures and compacts the contexts of one engine's turns."""

    def __init__(
        self, manager: SessionManager, windows: ContextWindows, reply_max_tokens: int | None
    ) -> None:
        """Compact through ``manager``; ``reply_max_tokens`` is the engine's longest reply."""
        self._manager = manager
        self._windows = windows
        self._reply_max_tokens = reply_max_tokens

    async def sizing(
        self, provider: Provider, model: str | None, *, load: bool = True
    ) -> tuple[int, TokenCounter, int]:
        """The model's window, its token counter, and the reserve kept for a reply.

        ``load`` False: a local model not loaded yet is estimated rather than loaded.
        """
        window = await self._windows.window(provider, model)
        counter = await self._windows.counter(provider, model, load=load)
        return window, counter, reply_reserve(window, self._reply_max_tokens)

    async def budget(
        self, session: Session, provider: Provider, model: str | None
    ) -> ContextBudget:
        """Where the session's context stands now (a local model is not loaded for it)."""
        window, counter, reserve = await self.sizing(provider, model, load=False)
        return await measure_session(session, counter, window, reserve)

    async def fit(
        self,
        session: Session,
        provider: Provider,
        model: str | None,
        turn: Turn | None,
        *,
        harder: bool,
        tools: bool,
    ) -> tuple[list[dict[str, Any]], ContextBudget]:
        """The context to send, compacted first when it does not fit (or ``harder``).

        Tool calls and results go in OpenAI's format to a model that takes ``tools``, as
        text to one that does not (a server may refuse tool messages as it refuses tools).
        """
        window, counter, reserve = await self.sizing(provider, model)
        budget = await measure_session(session, counter, window, reserve)
        for pass_harder in (harder, True):
            if budget.fits and not harder:
                break
            summary = await self.compact_now(
                session, provider, model, turn, budget=budget, harder=pass_harder
            )
            budget = await measure_session(session, counter, window, reserve)
            if summary is None or harder:
                break
        return build_context(session, tools=tools), budget

    async def compact_now(
        self,
        session: Session,
        provider: Provider,
        model: str | None,
        turn: Turn | None,
        *,
        budget: ContextBudget | None = None,
        harder: bool = False,
        everything: bool = False,
    ) -> Message | None:
        """Fold the oldest messages into a summary by the chat's model; None: nothing to fold.

        ``everything`` folds all but the latest exchange. Stop (the turn's cancel) ends
        the summary request; nothing is changed then.
        """
        window, counter, reserve = await self.sizing(provider, model)
        if budget is None:
            budget = await measure_session(session, counter, window, reserve)
        folded = plan_compaction(session, counter, budget, harder=harder, everything=everything)
        if not folded:
            return None
        task = asyncio.ensure_future(summarise(folded, provider, model, counter, window))
        if turn is not None:
            turn.pump = task  # Stop cancels the summary too
        try:
            text = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if turn is not None and turn.cancelled and not (current and current.cancelling()):
                return None
            raise
        log.info("compacting %d messages of session %s", len(folded), session.id)
        return await self._manager.compact_messages(session.id, [m.id for m in folded], text)

    async def explain_empty_reply(
        self,
        provider: Provider,
        model: str | None,
        context: list[dict[str, Any]],
        budget: ContextBudget,
    ) -> ProviderError:
        """Why a request streamed nothing: the context did not fit, or really no answer.

        A context over the window is said so. Where the count is only an estimate and
        could be wrong, the backend is asked once more without streaming, which is how
        llama-cpp-python's server reveals a context-too-long it streams as an empty 200.
        """
        if budget.used > budget.window - budget.margin:
            return ContextTooLongError(
                f"The conversation ({budget.used} tokens) is longer than the model's context "
                f"window ({budget.window} tokens)."
            )
        counter = await self._windows.counter(provider, model)
        # An estimate can be off by a factor of several (code, other scripts); and an
        # unknown window may be as small as a few hundred tokens. Below that, a prompt
        # cannot be the reason, and the check (a whole prompt to read) is not worth it.
        if self._windows.is_known(provider, model):
            suspicious = budget.used * 4 >= budget.window
        else:
            suspicious = budget.used >= _SMALLEST_WINDOW // 2
        if not counter.exact and suspicious:
            found = await provider.check_request(context, model)
            if found is not None:
                return found
        return EmptyReplyError(EMPTY_REPLY_MESSAGE)


async def measure_session(
    session: Session, counter: TokenCounter, window: int, reserve: int
) -> ContextBudget:
    """The session's budget; counted on a worker thread when a real tokenizer has many
    messages to count for the first time (about 0.3 ms each), so the loop stays free."""
    if counter.exact and counter.uncached(session.history) >= 256:
        return await asyncio.to_thread(
            measure, session, counter, window, reserve, list(session.history)
        )
    return measure(session, counter, window, reserve)
