"""The chat engine: one turn is add the user message, fit the context, stream, persist.

The assistant reply is stored from its first token with status ``streaming``; every token
updates the in-memory copy (so a window redraws just that row) and the text is flushed to
disk at least every ``flush_interval`` seconds. The reply ends ``complete``,
``cancelled`` or ``error`` with whatever text arrived; a reply that was ``streaming``
when the process died is marked ``interrupted`` on the next start. A reply that ends
with no text at all is an EmptyReplyError, unless the context was too long (some servers
stream nothing then): that is found out and handled as context-too-long.

Before each request the context is measured against the model's window
(:mod:`chatdesk.context`) and the oldest messages are compacted into a summary when it
does not fit; a server that still refuses gets one retry after a harder compaction. A
model that takes tools is offered ``manage_session`` (:mod:`chatdesk.tools`): its calls
and results are stored as messages and the turn goes on, at most MAX_TOOL_ROUNDS times.

A turn owns its session from before anything is changed until its reply has ended; Stop
works at any point of it. A new chat's title is made afterwards, in a background task
the engine keeps (``wait_for_titles()``, ``close()``), so the session is free meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chatdesk.context import (
    DEFAULT_REPLY_RESERVE,
    ContextBudget,
    ContextWindows,
    TokenCounter,
    build_context,
    measure,
    model_key,
    plan_compaction,
    reply_reserve,
    summarise,
)
from chatdesk.domain import DEFAULT_TITLE, Content, Message, Session, content_text, new_id
from chatdesk.providers.base import (
    CANCELLED_FINISH,
    ContextTooLongError,
    ImagesNotSupportedError,
    Provider,
    ProviderError,
    ServerError,
    Usage,
    holds_images,
    text_only_messages,
)
from chatdesk.sessions import SessionBusyError as SessionBusyError  # re-exported
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError
from chatdesk.tools import SessionTools

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
    # What Stop cancels: the request streaming, or the summary being written before it.
    pump: asyncio.Future[Any] | None = None
    title: _TitleJob | None = None

    def stopped(self) -> bool:
        """Whether Stop was pressed (a call, so a check after an await is not optimised
        away by type narrowing)."""
        return self.cancelled

    def cancel(self) -> None:
        self.cancelled = True
        if self.pump is not None:
            self.pump.cancel()


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


def _chat_options(session: Session) -> dict[str, Any]:
    """The generation options a chat sets for itself (its temperature, longest reply)."""
    found: dict[str, Any] = {}
    if session.temperature is not None:
        found["temperature"] = session.temperature
    if session.max_tokens is not None:
        found["max_tokens"] = session.max_tokens
    return found


@dataclass(slots=True)
class _Round:
    """How one request of a turn ended."""

    status: str = "cancelled"
    error: BaseException | None = None
    reply: Message | None = None
    usage: Usage | None = None
    tool_calls: list[dict[str, Any]] | None = None
    # Whether tools were offered: calls a model makes unasked are dropped, as a call
    # stored without its results would make every later request invalid.
    tools_offered: bool = False


# The smallest context window a server is likely to run with (llama.cpp's -c 512).
_SMALLEST_WINDOW = 512
# At most this many rounds of tool calls in one turn; then the model must answer.
MAX_TOOL_ROUNDS = 4


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
        context_windows: ContextWindows | None = None,
        tools_enabled: Callable[[Provider, str | None], bool] | None = None,
        reads_images: Callable[[Provider, str | None], bool | None] | None = None,
        on_images_refused: Callable[[str], None] | None = None,
    ) -> None:
        """``provider`` answers sessions with no provider of their own; ``resolve_provider``
        maps a session to its (provider, model) when sessions may choose.

        ``context_windows`` knows each model's window (the app gives it the windows set in
        Settings); ``tools_enabled`` says whether a model may be offered tools (Settings'
        switch; servers that take tools get them by default). ``reads_images`` says
        whether a model sees images (False: images are replaced by a note before sending;
        the window warns first); ``on_images_refused`` hears of a model whose server
        refused images, by its :func:`model_key`.
        """
        self._manager = manager
        self._provider = provider
        self._resolve = resolve_provider or (lambda session: (provider, session.model))
        self._flush_interval = flush_interval
        self._auto_title = auto_title
        self._options = dict(generation_options or {})
        self._turns: dict[str, _Turn] = {}
        # Titles being made in the background, after their turn ended.
        self._titles: set[asyncio.Task[None]] = set()
        self._windows = context_windows or ContextWindows()
        self._tools_enabled = tools_enabled or (lambda provider, model: True)
        self._reads_images = reads_images or (
            lambda provider, model: provider.reported_image_input(model)
        )
        self._on_images_refused = on_images_refused or (lambda key: None)
        # Models whose server refused a request with tools.
        self._no_tools: set[str] = set()
        self._tools = SessionTools(
            manager, measure=self.context_budget, compact=self._compact_for_tool
        )

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

    @property
    def context_windows(self) -> ContextWindows:
        """What the engine knows of each model's context window."""
        return self._windows

    async def context_budget(self, session_id: str) -> ContextBudget:
        """Where the session's context stands against its model's window right now."""
        session = await self._manager.require_session(session_id)
        provider, model = self._resolve(session)
        window, counter, reserve = await self._sizing(provider, model, load=False)
        return await _measure(session, counter, window, reserve)

    async def compact(self, session_id: str) -> Message:
        """Summarise all but the latest exchange of the session now; return the summary.

        The replaced messages are kept (``manager.compacted_messages``) and come back
        with ``manager.undo_compaction``. Raises SessionBusyError while a reply streams,
        ValueError when the chat is too short to compact, and the model's ProviderError
        when it could not write the summary (then nothing changed).
        """
        with self._turn(session_id) as turn:
            session = await self._manager.require_session(session_id)
            provider, model = self._resolve(session)
            summary = await self._compact_now(session, provider, model, turn, everything=True)
        if summary is None:
            raise ValueError("This chat is too short to compact.")
        return summary

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
            # A reply that called tools ends in tool results: they go with it.
            while keep and session.history[keep - 1].role in ("assistant", "tool"):
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

    async def _title_from_question(self, session: Session) -> None:
        """Name a chat whose first reply was stopped or failed after its question's words.

        Written within the turn (no model asked), so a reply cut short does not leave the
        chat called DEFAULT_TITLE.
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
        """Answer the session's history: fit the context, stream, run tools, persist.

        Before each request the context is measured against the model's window and
        compacted when it does not fit. A server that still answers context-too-long (or
        streams nothing because of it) gets one retry after a harder compaction. Tool
        calls are run and answered, up to MAX_TOOL_ROUNDS rounds, then the model answers.
        """
        session = await self._manager.require_session(session_id)
        if turn.cancelled:
            return  # stopped before the model was asked: the user's message stays alone
        provider, model = self._resolve(session)
        key = model_key(provider, model)
        tools = self._offers_tools(provider, model)
        retried = harder = False
        rounds = 0
        while True:
            offered = tools and rounds < MAX_TOOL_ROUNDS
            context, budget = await self._fit_context(
                session, provider, model, harder=harder, tools=tools
            )
            if turn.stopped():
                return  # Stop pressed while the context was being compacted
            if holds_images(context) and self._reads_images(provider, model) is False:
                context = text_only_messages(context)
            options = {**self._options, **_chat_options(session)}
            if offered:
                options["tools"] = self._tools.definitions()
            if provider.name == "local":
                # llama.cpp fails outright when prompt + reply overflow n_ctx: the reply
                # gets what it would (the default reserve) or what is left, if less.
                room = budget.window - budget.used - budget.margin
                wanted = options.get("max_tokens") or DEFAULT_REPLY_RESERVE
                options["max_tokens"] = max(16, min(wanted, room))
            outcome = _Round(tools_offered=offered)
            async for delta in self._stream_round(
                session_id, turn, provider, model, context, options, outcome
            ):
                yield delta
            error = outcome.error
            nothing_sent = outcome.reply is None
            silent = error is None and outcome.status == "complete" and not outcome.tool_calls
            if silent and nothing_sent:
                error = await self._explain_empty_reply(provider, model, context, budget)
            if isinstance(error, ContextTooLongError) and nothing_sent:
                self._windows.learn(key, error.limit)
                if not retried:
                    retried = harder = True
                    continue
                raise ContextTooLongError(
                    f"{error} Even after summarising earlier messages the conversation does "
                    "not fit; shorten your message or start a new chat.",
                    error.limit,
                )
            if offered and nothing_sent and _refuses_tools(error):
                log.info("%s refuses tools; asking without them", key)
                self._no_tools.add(key)
                tools = False
                continue
            if isinstance(error, ImagesNotSupportedError) and holds_images(context):
                self._on_images_refused(key)
            if isinstance(error, ProviderError):
                raise error
            if error is not None:
                raise ProviderError(f"The model failed unexpectedly: {error}") from error
            if outcome.status != "complete":
                return
            if outcome.usage is not None and outcome.usage.prompt_tokens:
                counter = await self._windows.counter(provider, model)
                counter.observe(budget.used, outcome.usage.prompt_tokens)
            if outcome.tool_calls and offered:
                rounds += 1
                if not await self._run_tools(session_id, outcome):
                    return  # the call removed its own request (truncate): the turn is over
                retried = harder = False
                continue
            break
        if self._auto_title and session.title == DEFAULT_TITLE:
            first_user = next((m for m in session.history if m.role == "user"), None)
            if first_user is not None:
                turn.title = _TitleJob(
                    provider,
                    model,
                    session.context_messages(),
                    content_text(first_user.content),
                )

    async def _stream_round(
        self,
        session_id: str,
        turn: _Turn,
        provider: Provider,
        model: str | None,
        context: list[dict[str, Any]],
        options: dict[str, Any],
        outcome: _Round,
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
                    await self._title_from_question(stopped_session)

    async def _sizing(
        self, provider: Provider, model: str | None, *, load: bool = True
    ) -> tuple[int, TokenCounter, int]:
        """The model's window, its token counter, and the reserve kept for a reply.

        ``load`` False: a local model not loaded yet is estimated rather than loaded.
        """
        window = await self._windows.window(provider, model)
        counter = await self._windows.counter(provider, model, load=load)
        return window, counter, reply_reserve(window, self._options.get("max_tokens"))

    async def _fit_context(
        self,
        session: Session,
        provider: Provider,
        model: str | None,
        *,
        harder: bool,
        tools: bool,
    ) -> tuple[list[dict[str, Any]], ContextBudget]:
        """The context to send, compacted first when it does not fit (or ``harder``).

        Tool calls and results go in OpenAI's format to a model that takes ``tools``, as
        text to one that does not (a server may refuse tool messages as it refuses tools).
        """
        window, counter, reserve = await self._sizing(provider, model)
        budget = await _measure(session, counter, window, reserve)
        turn = self._turns.get(session.id)
        for pass_harder in (harder, True):
            if budget.fits and not harder:
                break
            summary = await self._compact_now(
                session, provider, model, turn, budget=budget, harder=pass_harder
            )
            budget = await _measure(session, counter, window, reserve)
            if summary is None or harder:
                break
        return build_context(session, tools=tools), budget

    async def _compact_now(
        self,
        session: Session,
        provider: Provider,
        model: str | None,
        turn: _Turn | None,
        *,
        budget: ContextBudget | None = None,
        harder: bool = False,
        everything: bool = False,
    ) -> Message | None:
        """Fold the oldest messages into a summary by the chat's model; None: nothing to fold.

        ``everything`` folds all but the latest exchange. Stop (the turn's cancel) ends
        the summary request; nothing is changed then.
        """
        window, counter, reserve = await self._sizing(provider, model)
        if budget is None:
            budget = await _measure(session, counter, window, reserve)
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

    async def _compact_for_tool(self, session_id: str) -> Message | None:
        """The tool's ``compact``: inside the running turn, all but its own exchange."""
        session = await self._manager.require_session(session_id)
        provider, model = self._resolve(session)
        turn = self._turns.get(session_id)
        return await self._compact_now(session, provider, model, turn, everything=True)

    async def _explain_empty_reply(
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

    def _offers_tools(self, provider: Provider, model: str | None) -> bool:
        return (
            provider.accepts_tools
            and model_key(provider, model) not in self._no_tools
            and self._tools_enabled(provider, model)
        )

    async def _run_tools(self, session_id: str, outcome: _Round) -> bool:
        """Store the model's tool calls and their results; False when the turn must end.

        A call that removed the message asking for it (truncate) ends the turn: its
        result would answer a call that no longer exists.
        """
        calls = _with_ids(outcome.tool_calls or [])
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

    async def _finish_reply(
        self,
        session_id: str,
        reply: Message,
        text: str,
        status: str,
        error: BaseException | None,
        outcome: _Round | None = None,
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
            outcome.tool_calls = _with_ids(outcome.tool_calls)
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


def _with_ids(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls each with an id (a server that sends none gets one made up)."""
    for call in calls:
        if not call.get("id"):
            call["id"] = f"call_{new_id()[:24]}"
    return calls


def _refuses_tools(error: BaseException | None) -> bool:
    """Whether ``error`` is a server refusing the ``tools`` of a request."""
    return (
        isinstance(error, ServerError)
        and error.status in (400, 422)
        and "tool" in str(error).lower()
    )


async def _measure(
    session: Session, counter: TokenCounter, window: int, reserve: int
) -> ContextBudget:
    """The session's budget; counted on a worker thread when a real tokenizer has many
    messages to count for the first time (about 0.3 ms each), so the loop stays free."""
    if counter.exact and counter.uncached(session.history) >= 256:
        return await asyncio.to_thread(
            measure, session, counter, window, reserve, list(session.history)
        )
    return measure(session, counter, window, reserve)
