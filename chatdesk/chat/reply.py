"""One request streamed into a stored reply: stored from its first token, flushed, ended.

The assistant reply is stored from its first token with status ``streaming``; every token
updates the in-memory copy (so a window redraws just that row) and the text is flushed to
disk at least every ``flush_interval`` seconds, retried while the disk fails. The reply
ends ``complete``, ``cancelled`` or ``error`` with whatever text arrived, and with the
facts shown under it (model, time, speed); when the disk fails at the end, the reply in
memory says how much of it is saved. How the request ended goes to the turn's ``Round``.

The provider's stream is read by a separate task (the pump) that Stop can cancel at any
await, while this side stores what it put in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from chatdesk.chat.titles import ChatTitles
from chatdesk.chat.tool_rounds import with_ids
from chatdesk.chat.turn import Round, Turn
from chatdesk.domain import Message
from chatdesk.providers.base import CANCELLED_FINISH, Provider, Usage
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _End:
    """A reply stream ended normally: the usage reported and the tools it called."""

    usage: Usage | None = None
    tool_calls: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class _ReplyFacts:
    """What is shown under a reply: the model, the time it took and its speed."""

    model: str | None
    started: float
    deltas: int = 0
    ended: float | None = None
    tokens: int | None = None

    def end(self, usage: Usage | None) -> None:
        self.ended = time.monotonic()
        self.tokens = usage.completion_tokens if usage is not None else None

    def meta(self) -> dict[str, Any]:
        """The facts as stored with the reply (tokens counted by the server when it says)."""
        seconds = (self.ended or time.monotonic()) - self.started
        found: dict[str, Any] = {"model": self.model, "seconds": round(seconds, 2)}
        tokens = self.tokens if self.tokens is not None else self.deltas
        found["tokens"] = tokens
        if self.tokens is None:
            found["tokens_estimated"] = True  # one streamed piece is about one token
        if seconds > 0 and tokens:
            found["tokens_per_second"] = round(tokens / seconds, 1)
        return found


class ReplyWriter:
    """Streams the requests of one engine's turns into stored replies."""

    def __init__(self, manager: SessionManager, flush_interval: float, titles: ChatTitles) -> None:
        """Store replies through ``manager``, flushing at least every ``flush_interval``
        seconds; a first reply stopped or failed names its chat through ``titles``."""
        self._manager = manager
        self._flush_interval = flush_interval
        self._titles = titles

    async def stream_round(
        self,
        session_id: str,
        turn: Turn,
        provider: Provider,
        model: str | None,
        context: list[dict[str, Any]],
        options: dict[str, Any],
        outcome: Round,
    ) -> AsyncIterator[str]:
        """One request: stream its text into a stored reply; how it ended goes to ``outcome``."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        facts = _ReplyFacts(model or provider.model, time.monotonic())
        pump = asyncio.create_task(_pump(provider, context, model, options, queue, facts))
        # However the pump ends (even cancelled before its first step), the loop wakes up.
        pump.add_done_callback(queue.put_nowait)
        turn.pump = pump
        reply: Message | None = None
        text = ""
        # How much of the text is on disk: the window must not show more without saying so.
        saved_chars = 0
        dirty = False
        flusher: asyncio.Task[None] | None = None
        status, error = "cancelled", None
        end: _End | None = None

        async def flush_periodically() -> None:
            nonlocal dirty, saved_chars
            failing = False
            while True:
                await asyncio.sleep(self._flush_interval)
                if not dirty or reply is None:
                    continue
                dirty = False
                try:
                    flushed = text
                    await self._manager.update_message(session_id, reply.id, content=flushed)
                    saved_chars = len(flushed)
                except StorageError as exc:
                    dirty = True  # try again at the next interval
                    if not failing:
                        log.warning("could not save the streaming reply (will retry): %s", exc)
                    failing = True
                except SessionNotFoundError:
                    return  # deleted while streaming; the turn notices on its own
                else:
                    if failing:
                        log.info("saving the streaming reply works again")
                    failing = False

        try:
            while True:
                item = await queue.get()
                if isinstance(item, _End):
                    status, end = "complete", item
                    break
                if item is pump:
                    break  # it ended without an end or an error: cancelled
                if isinstance(item, BaseException):
                    status, error = "error", item
                    break
                assert isinstance(item, str)
                text += item
                facts.deltas += 1
                try:
                    if reply is None:
                        adding = asyncio.ensure_future(
                            self._manager.add_message(
                                session_id, "assistant", text, status="streaming"
                            )
                        )
                        try:
                            reply = await asyncio.shield(adding)
                            saved_chars = len(text)
                        except asyncio.CancelledError:
                            # Stored all the same: keep it, so it ends as "cancelled" below
                            # instead of staying "streaming".
                            reply = await adding
                            raise
                        flusher = asyncio.create_task(flush_periodically())
                    else:
                        dirty = True
                        await self._manager.update_message(
                            session_id, reply.id, content=text, persist=False
                        )
                except SessionNotFoundError:
                    log.info("session %s was deleted while its reply streamed", session_id)
                    reply = None
                    status = "gone"
                    break
                yield item
        finally:
            # Runs on normal end, on error, and when the consumer is cancelled or closes us.
            pump.cancel()
            if flusher is not None:
                flusher.cancel()
            await _settle(pump, flusher)
            outcome.status, outcome.error, outcome.reply = status, error, reply
            if end is not None:
                outcome.usage = end.usage
                outcome.tool_calls = end.tool_calls if outcome.tools_offered else None
            if reply is not None:
                await self._finish_reply(
                    session_id, reply, text, status, error, outcome, saved_chars, meta=facts.meta()
                )
            if status in ("cancelled", "error"):
                stopped_session = await self._manager.get_session(session_id)
                if stopped_session is not None:
                    await self._titles.from_question(stopped_session)

    async def _finish_reply(
        self,
        session_id: str,
        reply: Message,
        text: str,
        status: str,
        error: BaseException | None,
        outcome: Round | None = None,
        saved_chars: int = 0,
        *,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store the reply's final text and status; in memory at least, if the disk fails.

        When the disk fails, the reply in memory says so: it ends as an error naming how
        much of its text is saved, never as a complete reply only memory holds.
        """
        final: dict[str, Any] = {
            "content": text,
            "status": status,
            "error": str(error) if error is not None else None,
            "meta": meta,
        }
        if outcome is not None and outcome.tool_calls and status == "complete":
            outcome.tool_calls = with_ids(outcome.tool_calls)
            final["tool_calls"] = outcome.tool_calls
        try:
            await self._manager.update_message(session_id, reply.id, **final)
        except SessionNotFoundError:
            pass
        except StorageError as exc:
            # The window must not show a reply streaming forever; on disk it stays
            # "streaming" with the last flushed text, and becomes "interrupted" next start.
            saved = (
                "Its text is saved, but not that it ended."
                if saved_chars >= len(text)
                else f"Only the first {saved_chars} of {len(text)} characters of this reply "
                "are saved."
            )
            final["status"] = "error"
            final["error"] = f"{exc} {saved}"
            final.pop("tool_calls", None)
            with contextlib.suppress(SessionNotFoundError):
                await self._manager.update_message(session_id, reply.id, persist=False, **final)
            raise


async def _pump(
    provider: Provider,
    context: list[dict[str, Any]],
    model: str | None,
    options: dict[str, Any],
    queue: asyncio.Queue[object],
    facts: _ReplyFacts | None = None,
) -> None:
    """Move the provider's deltas into ``queue``, ending with _END or an error.

    A cancelled pump puts nothing more; the done callback the caller adds wakes it.
    """
    stream = None
    try:
        stream = provider.stream(context, model=model, **options)
        async for delta in stream:
            queue.put_nowait(delta)
        if facts is not None:
            facts.end(stream.usage)
        if stream.finish_reason == CANCELLED_FINISH:
            return  # stopped by the provider (it was closed): a cancelled reply
        queue.put_nowait(_End(stream.usage, stream.tool_calls))
    except Exception as exc:
        queue.put_nowait(exc)
    finally:
        if stream is not None:
            await stream.aclose()


async def _settle(*tasks: asyncio.Task[None] | None) -> None:
    """Wait for finished or cancelled helper tasks; their failures are logged, not raised."""
    for task in tasks:
        if task is None:
            continue
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("a streaming helper task failed")
