"""The chat engine: one turn is add the user message, build the context, stream, persist.

The assistant reply is stored from its first token with status ``streaming``; every token
updates the in-memory copy (so a window redraws just that row) and the text is flushed to
disk at least every ``flush_interval`` seconds. The reply ends ``complete``,
``cancelled`` or ``error`` with whatever text arrived; a reply that was ``streaming``
when the process died is marked ``interrupted`` on the next start. A reply that ends
with no text at all is an EmptyReplyError.

A turn owns its session from before anything is changed until its reply has ended; Stop
works at any point of it. A new chat's title is made afterwards, in a background task
the engine keeps (``wait_for_titles()``, ``close()``), so the session is free meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chatdesk.domain import DEFAULT_TITLE, Content, Message, Session, content_text
from chatdesk.providers.base import CANCELLED_FINISH, Provider, ProviderError, Usage
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError

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


EMPTY_REPLY_MESSAGE = "The model returned an empty reply. Try again, or choose another model."


class EmptyReplyError(ProviderError):
    """The model ended its reply without a single token (and without an error)."""


@dataclass(frozen=True, slots=True)
class _TitleJob:
    """What titling a chat needs, taken when its first reply completed."""

    provider: Provider
    model: str | None
    context: list[dict[str, Any]]
    first_words: str


@dataclass(slots=True)
class _Turn:
    """One turn owning a session: what cancel() needs to stop it, and what follows it."""

    cancelled: bool = False
    pump: asyncio.Task[None] | None = None
    title: _TitleJob | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.pump is not None:
            self.pump.cancel()


_END = object()


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


def _chat_options(session: Session) -> dict[str, Any]:
    """The generation options a chat sets for itself (its temperature, longest reply)."""
    found: dict[str, Any] = {}
    if session.temperature is not None:
        found["temperature"] = session.temperature
    if session.max_tokens is not None:
        found["max_tokens"] = session.max_tokens
    return found


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
        # Titles being made in the background, after their turn ended.
        self._titles: set[asyncio.Task[None]] = set()

    @property
    def manager(self) -> SessionManager:
        """The SessionManager this engine writes into."""
        return self._manager

    def is_streaming(self, session_id: str) -> bool:
        """Whether a turn (a reply, or the steps before it) runs in ``session_id`` now."""
        return session_id in self._turns

    def cancel(self, session_id: str) -> bool:
        """Stop the turn in ``session_id``, keeping the text so far; False if none runs.

        Stopped before the first token arrives, the turn ends with the user's message and
        no reply.
        """
        turn = self._turns.get(session_id)
        if turn is None:
            return False
        turn.cancel()
        return True

    async def wait_for_titles(self) -> None:
        """Wait until every chat title being made has been written or given up."""
        while self._titles:
            await asyncio.wait(set(self._titles))

    async def close(self) -> None:
        """Stop making titles and wait for them to end (call before closing the manager).

        Streaming replies are not touched: cancel() them first to stop them.
        """
        titles = set(self._titles)
        for task in titles:
            task.cancel()
        if titles:
            await asyncio.wait(titles)

    async def send(self, session_id: str, content: Content) -> AsyncIterator[str]:
        """Add ``content`` as the user's message and stream the reply's text deltas.

        Raises ValueError for invalid content (nothing is stored), SessionBusyError if a
        reply is already streaming there, the ProviderError that ended a failed reply
        (after storing its partial text with status ``error``), EmptyReplyError when the
        model answered nothing, and StorageError when the reply could not be written.
        """
        with self._turn(session_id) as turn:
            await self._manager.add_message(session_id, "user", content)
            async for delta in self._stream_reply(session_id, turn):
                yield delta

    async def regenerate(self, session_id: str) -> AsyncIterator[str]:
        """Replace the last assistant reply (or answer a trailing user message) anew."""
        with self._turn(session_id) as turn:
            session = await self._manager.require_session(session_id)
            keep = len(session.history)
            while keep and session.history[keep - 1].role == "assistant":
                keep -= 1
            if keep == 0 or session.history[keep - 1].role != "user":
                raise ValueError("there is no user message to answer")
            if turn.cancelled:
                return  # stopped before anything changed: the old reply stays
            # The replaced reply becomes an earlier version of this turn, never deleted.
            kept = await self._manager.keep_as_version(session_id, keep)
            try:
                async for delta in self._stream_reply(session_id, turn):
                    yield delta
            finally:
                if kept is not None and len(session.history) == keep:
                    # The new attempt wrote nothing (failed or stopped before its first
                    # token): the earlier reply is shown again instead of a blank.
                    await self._restore_quietly(session_id, keep, kept.id)

    async def edit_and_resend(
        self, session_id: str, message_id: str, content: Content
    ) -> AsyncIterator[str]:
        """Replace user message ``message_id`` with ``content``, drop what followed, resend."""
        Message.create("user", content)  # validate before anything is deleted
        with self._turn(session_id) as turn:
            session = await self._manager.require_session(session_id)
            index = next((i for i, m in enumerate(session.history) if m.id == message_id), None)
            if index is None or session.history[index].role != "user":
                raise ValueError("only a user message of this session can be edited")
            # The edited prompt and what followed it stay as an earlier version of the turn.
            await self._manager.keep_as_version(session_id, index)
            await self._manager.add_message(session_id, "user", content)
            async for delta in self._stream_reply(session_id, turn):
                yield delta

    async def name_if_untitled(self, session_id: str) -> None:
        """Name a chat still called DEFAULT_TITLE after its first question (no model asked).

        For a chat whose first reply never finished, e.g. interrupted by a killed app: the
        window calls this when it opens one. A chat with a reply running is left alone.
        """
        session = await self._manager.get_session(session_id)
        making = f"chatdesk-title-{session_id}"
        if session is None or self.is_streaming(session_id):
            return
        if any(task.get_name() == making for task in self._titles):
            return  # the model is naming it right now
        if any(m.role == "user" for m in session.history):
            await self._title_from_question(session)

    async def select_version(self, session_id: str, position: int, number: int) -> None:
        """Show version ``number`` of the turn at ``position``; the model sees it next.

        Raises SessionBusyError while a reply streams in that chat.
        """
        with self._turn(session_id):
            await self._manager.select_version(session_id, position, number)

    # -- internals ----------------------------------------------------------------------

    async def _restore_quietly(self, session_id: str, position: int, version_id: str) -> None:
        try:
            await self._manager.restore_version(session_id, position, version_id)
        except (SessionNotFoundError, StorageError, ValueError) as exc:
            # Still stored as a version: the arrows reach it.
            log.warning("could not show the earlier reply again: %s", exc)

    @contextlib.contextmanager
    def _turn(self, session_id: str) -> Iterator[_Turn]:
        """Own ``session_id`` for one turn: claimed before anything changes, always released.

        A turn whose reply completed in a chat still called DEFAULT_TITLE then gets its
        title made in the background, after the session is free again.
        """
        if session_id in self._turns:
            raise SessionBusyError("a reply is still streaming in this session")
        turn = _Turn()
        self._turns[session_id] = turn
        try:
            yield turn
        finally:
            if self._turns.get(session_id) is turn:
                del self._turns[session_id]
        if turn.title is not None:
            self._start_title(session_id, turn.title)

    async def _stream_reply(self, session_id: str, turn: _Turn) -> AsyncIterator[str]:
        session = await self._manager.require_session(session_id)
        if turn.cancelled:
            return  # stopped before the model was asked: the user's message stays alone
        provider, model = self._resolve(session)
        context = session.context_messages()
        options = {**self._options, **_chat_options(session)}
        facts = _ReplyFacts(model or provider.model, time.monotonic())
        queue: asyncio.Queue[object] = asyncio.Queue()
        pump = asyncio.create_task(_pump(provider, context, model, options, queue, facts))
        # However the pump ends (even cancelled before its first step), the loop wakes up.
        pump.add_done_callback(queue.put_nowait)
        turn.pump = pump
        reply: Message | None = None
        text = ""
        dirty = False
        flusher: asyncio.Task[None] | None = None
        status, error = "cancelled", None

        async def flush_periodically() -> None:
            nonlocal dirty
            failing = False
            while True:
                await asyncio.sleep(self._flush_interval)
                if not dirty or reply is None:
                    continue
                dirty = False
                try:
                    await self._manager.update_message(session_id, reply.id, content=text)
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
                if item is _END:
                    status = "complete"
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
                    break
                yield item
        finally:
            # Runs on normal end, on error, and when the consumer is cancelled or closes us.
            pump.cancel()
            if flusher is not None:
                flusher.cancel()
            await _settle(pump, flusher)
            if reply is not None:
                await self._finish_reply(session_id, reply, text, status, error, facts.meta())
            if status != "complete":
                await self._title_from_question(session)
        if isinstance(error, ProviderError):
            raise error
        if error is not None:
            raise ProviderError(f"The model failed unexpectedly: {error}") from error
        if status != "complete":
            return
        if reply is None:
            raise EmptyReplyError(EMPTY_REPLY_MESSAGE)
        if self._auto_title and session.title == DEFAULT_TITLE:
            first_user = next((m for m in session.history if m.role == "user"), None)
            if first_user is not None:
                turn.title = _TitleJob(
                    provider,
                    model,
                    session.context_messages(),
                    content_text(first_user.content),
                )

    async def _finish_reply(
        self,
        session_id: str,
        reply: Message,
        text: str,
        status: str,
        error: BaseException | None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store the reply's final text, status and facts; in memory at least, if the disk
        fails."""
        final: dict[str, Any] = {
            "content": text,
            "status": status,
            "error": str(error) if error is not None else None,
            "meta": meta,
        }
        try:
            await self._manager.update_message(session_id, reply.id, **final)
        except SessionNotFoundError:
            pass
        except StorageError:
            # The window must not show a reply streaming forever; on disk it stays
            # "streaming" with the last flushed text, and becomes "interrupted" next start.
            with contextlib.suppress(SessionNotFoundError):
                await self._manager.update_message(session_id, reply.id, persist=False, **final)
            raise

    async def _title_from_question(self, session: Session) -> None:
        """Name a chat whose first reply was stopped or failed after its question's words.

        Written within the turn (no model asked), so a reply cut short by closing the app
        does not leave the chat called DEFAULT_TITLE.
        """
        if not self._auto_title or session.title != DEFAULT_TITLE:
            return
        first_user = next((m for m in session.history if m.role == "user"), None)
        title = _title_from_text(content_text(first_user.content)) if first_user else None
        if title:
            try:
                await self._manager.update_session(session.id, title=title)
            except (SessionNotFoundError, StorageError) as exc:
                log.info("could not title session %s: %s", session.id, exc)

    def _start_title(self, session_id: str, job: _TitleJob) -> None:
        task = asyncio.create_task(
            self._title_if_default(session_id, job), name=f"chatdesk-title-{session_id}"
        )
        self._titles.add(task)
        task.add_done_callback(self._titles.discard)

    async def _title_if_default(self, session_id: str, job: _TitleJob) -> None:
        """Give a chat still called DEFAULT_TITLE a title; failures are logged, never raised."""
        try:
            title = await self._title_from_model(job)
            title = title or _title_from_text(job.first_words)
            session = await self._manager.get_session(session_id)
            if title and session is not None and session.title == DEFAULT_TITLE:
                await self._manager.update_session(session_id, title=title)
        except SessionNotFoundError:
            log.info("session %s was deleted before its title was written", session_id)
        except Exception:
            log.exception("could not title session %s", session_id)

    async def _title_from_model(self, job: _TitleJob) -> str | None:
        context = [*job.context, {"role": "user", "content": TITLE_PROMPT}]
        text = ""
        try:
            async with asyncio.timeout(15):
                stream = job.provider.stream(
                    context, model=job.model, max_tokens=TITLE_MAX_TOKENS, temperature=0.2
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
        queue.put_nowait(_END)
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


def _clean_title(text: str) -> str | None:
    """The title in a model's answer, skipping a preamble such as "Here's a title:".

    Code is never a title: a small model that answers with a code block (its fence's
    language would become the title, "python") gets the first words instead.
    """
    in_code = False
    for raw in text.splitlines():
        if raw.strip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
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
