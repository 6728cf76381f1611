"""The chat engine: one turn is add the user message, build the context, stream, persist.

The assistant reply is stored from its first token with status ``streaming``; every token
updates the in-memory copy (so a window redraws just that row) and the text is flushed to
disk at least every ``flush_interval`` seconds. The reply ends ``complete``,
``cancelled`` or ``error`` with whatever text arrived; a reply that was ``streaming``
when the process died is marked ``interrupted`` on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from chatdesk.domain import DEFAULT_TITLE, Content, Message, Session, content_text
from chatdesk.providers.base import Provider, ProviderError
from chatdesk.sessions import SessionManager, SessionNotFoundError

log = logging.getLogger(__name__)

ProviderResolver = Callable[[Session], tuple[Provider, str | None]]

TITLE_PROMPT = (
    "Write a short title (at most six words) for the conversation above. "
    "Reply with the title only, no quotes."
)
# Room for a short preamble line before the title itself (see _TITLE_PREAMBLE).
TITLE_MAX_TOKENS = 32
_TITLE_MAX_CHARS = 60
_TITLE_FALLBACK_WORDS = 6
# Small models often introduce the title instead of giving just the title.
_TITLE_PREAMBLE = re.compile(
    r"^(here('s| is| are)|sure|certainly|of course|okay|ok)\b|:$", re.IGNORECASE
)


class SessionBusyError(RuntimeError):
    """A reply is already streaming in that session."""


@dataclass(slots=True)
class _Turn:
    """One reply being streamed: what cancel() needs to stop it."""

    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


_END = object()


class ChatEngine:
    """Runs chat turns for the SessionManager's sessions against model providers."""

    def __init__(
        self,
        manager: SessionManager,
        provider: Provider,
        *,
        resolve_provider: ProviderResolver | None = None,
        flush_interval: float = 0.5,
        auto_title: bool = True,
        generation_options: dict[str, Any] | None = None,
    ) -> None:
        """``provider`` answers sessions with no provider of their own; ``resolve_provider``
        maps a session to its (provider, model) when sessions may choose."""
        self._manager = manager
        self._provider = provider
        self._resolve = resolve_provider or (lambda session: (provider, session.model))
        self._flush_interval = flush_interval
        self._auto_title = auto_title
        self._options = dict(generation_options or {})
        self._turns: dict[str, _Turn] = {}

    @property
    def manager(self) -> SessionManager:
        """The SessionManager this engine writes into."""
        return self._manager

    def is_streaming(self, session_id: str) -> bool:
        """Whether a reply is streaming into ``session_id`` right now."""
        return session_id in self._turns

    def cancel(self, session_id: str) -> bool:
        """Stop the reply streaming into ``session_id``, keeping its text; False if none."""
        turn = self._turns.get(session_id)
        if turn is None:
            return False
        turn.cancelled.set()
        if turn.pump is not None:
            turn.pump.cancel()
        return True

    async def send(self, session_id: str, content: Content) -> AsyncIterator[str]:
        """Add ``content`` as the user's message and stream the reply's text deltas.

        Raises ValueError for invalid content (nothing is stored), SessionBusyError if a
        reply is already streaming there, and the ProviderError that ended a failed reply
        (after storing its partial text with status ``error``).
        """
        self._claim(session_id)
        try:
            await self._manager.add_message(session_id, "user", content)
            async for delta in self._stream_reply(session_id):
                yield delta
        finally:
            self._turns.pop(session_id, None)

    async def regenerate(self, session_id: str) -> AsyncIterator[str]:
        """Replace the last assistant reply (or answer a trailing user message) anew."""
        self._claim(session_id)
        try:
            session = await self._manager.require_session(session_id)
            keep = len(session.history)
            while keep and session.history[keep - 1].role == "assistant":
                keep -= 1
            if keep == 0 or session.history[keep - 1].role != "user":
                raise ValueError("there is no user message to answer")
            await self._manager.truncate_messages(session_id, keep)
            async for delta in self._stream_reply(session_id):
                yield delta
        finally:
            self._turns.pop(session_id, None)

    async def edit_and_resend(
        self, session_id: str, message_id: str, content: Content
    ) -> AsyncIterator[str]:
        """Replace user message ``message_id`` with ``content``, drop what followed, resend."""
        Message.create("user", content)  # validate before anything is deleted
        session = await self._manager.require_session(session_id)
        index = next((i for i, m in enumerate(session.history) if m.id == message_id), None)
        if index is None or session.history[index].role != "user":
            raise ValueError("only a user message of this session can be edited")
        if self.is_streaming(session_id):
            raise SessionBusyError("a reply is still streaming in this session")
        await self._manager.truncate_messages(session_id, index)
        async for delta in self.send(session_id, content):
            yield delta

    # -- internals ----------------------------------------------------------------------

    def _claim(self, session_id: str) -> _Turn:
        if session_id in self._turns:
            raise SessionBusyError("a reply is still streaming in this session")
        turn = _Turn()
        self._turns[session_id] = turn
        return turn

    async def _stream_reply(self, session_id: str) -> AsyncIterator[str]:
        turn = self._turns[session_id]
        session = await self._manager.require_session(session_id)
        provider, model = self._resolve(session)
        context = session.context_messages()
        queue: asyncio.Queue[object] = asyncio.Queue()
        turn.pump = asyncio.create_task(_pump(provider, context, model, self._options, queue))
        reply: Message | None = None
        text = ""
        dirty = False
        flusher: asyncio.Task[None] | None = None
        status, error = "cancelled", None

        async def flush_periodically() -> None:
            nonlocal dirty
            while True:
                await asyncio.sleep(self._flush_interval)
                if dirty and reply is not None:
                    dirty = False
                    await self._manager.update_message(session_id, reply.id, content=text)

        try:
            while True:
                item = await queue.get()
                if item is _END:
                    status = "complete"
                    break
                if isinstance(item, asyncio.CancelledError):
                    break
                if isinstance(item, BaseException):
                    status, error = "error", item
                    break
                assert isinstance(item, str)
                text += item
                try:
                    if reply is None:
                        reply = await self._manager.add_message(
                            session_id, "assistant", text, status="streaming"
                        )
                        flusher = asyncio.create_task(flush_periodically())
                    else:
                        dirty = True
                        await self._manager.update_message(
                            session_id, reply.id, content=text, persist=False
                        )
                except SessionNotFoundError:
                    log.info("session %s was deleted while its reply streamed", session_id)
                    reply = None
                    break
                yield item
        finally:
            # Runs on normal end, on error, and when the consumer is cancelled or closes us.
            turn.pump.cancel()
            if flusher is not None:
                flusher.cancel()
            await _settle(turn.pump, flusher)
            if reply is not None:
                with contextlib.suppress(SessionNotFoundError):
                    await self._manager.update_message(
                        session_id,
                        reply.id,
                        content=text,
                        status=status,
                        error=str(error) if error is not None else None,
                    )
        if isinstance(error, ProviderError):
            raise error
        if error is not None:
            raise ProviderError(f"The model failed unexpectedly: {error}") from error
        if status == "complete" and self._auto_title:
            await self._title_if_default(session, provider, model)

    async def _title_if_default(
        self, session: Session, provider: Provider, model: str | None
    ) -> None:
        if session.title != DEFAULT_TITLE:
            return
        first_user = next((m for m in session.history if m.role == "user"), None)
        if first_user is None:
            return
        title = await self._title_from_model(session, provider, model)
        title = title or _title_from_text(content_text(first_user.content))
        if title and session.title == DEFAULT_TITLE:
            await self._manager.update_session(session.id, title=title)

    async def _title_from_model(
        self, session: Session, provider: Provider, model: str | None
    ) -> str | None:
        context = [*session.context_messages(), {"role": "user", "content": TITLE_PROMPT}]
        text = ""
        try:
            async with asyncio.timeout(15):
                stream = provider.stream(
                    context, model=model, max_tokens=TITLE_MAX_TOKENS, temperature=0.2
                )
                try:
                    async for delta in stream:
                        text += delta
                finally:
                    await stream.aclose()
        except (ProviderError, TimeoutError) as exc:
            log.info("no title from the model (%s); using the first words", exc)
            return None
        return _clean_title(text)


async def _pump(
    provider: Provider,
    context: list[dict[str, Any]],
    model: str | None,
    options: dict[str, Any],
    queue: asyncio.Queue[object],
) -> None:
    """Move the provider's deltas into ``queue``, ending with _END, an error or a cancel."""
    stream = provider.stream(context, model=model, **options)
    try:
        async for delta in stream:
            queue.put_nowait(delta)
        queue.put_nowait(_END)
    except asyncio.CancelledError as exc:
        queue.put_nowait(exc)
        raise
    except Exception as exc:
        queue.put_nowait(exc)
    finally:
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


def _clean_title(text: str) -> str | None:
    """The title in a model's answer, skipping a preamble such as "Here's a title:"."""
    for raw in text.splitlines():
        line = re.sub(r"^(title\s*:\s*)", "", raw.strip(), flags=re.IGNORECASE)
        line = line.strip(" \"'`*#.").strip()
        if not line or _TITLE_PREAMBLE.search(line):
            continue
        return _shorten(line) if len(line) <= _TITLE_MAX_CHARS * 2 else None
    return None


def _title_from_text(text: str) -> str | None:
    words = text.split()
    if not words:
        return None
    title = " ".join(words[:_TITLE_FALLBACK_WORDS])
    if len(words) > _TITLE_FALLBACK_WORDS:
        title += "…"
    return _shorten(title)


def _shorten(title: str) -> str:
    return title if len(title) <= _TITLE_MAX_CHARS else title[: _TITLE_MAX_CHARS - 1] + "…"
