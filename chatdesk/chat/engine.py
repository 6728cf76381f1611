"""The chat engine: one turn is add the user message, fit the context, stream, persist.

A turn owns its session from before anything is changed until its reply has ended; Stop
works at any point of it. The turn is this module: claiming the session, the public
turns (send, regenerate, edit and resend, compact, switch version) and the loop of
rounds that answers a history. Each step of a round is a part of its own, which the
engine holds: ``fitting`` (measure the context against the model's window and compact
it; explain an empty reply), ``reply`` (stream one request into a stored reply),
``tool_rounds`` (offer tools, run their calls) and ``titles`` (name a new chat
afterwards, in a background task, so the session is free meanwhile).

A reply that ends with no text at all is an EmptyReplyError, unless the context was too
long (some servers stream nothing then): that is found out and handled as
context-too-long, with one retry after a harder compaction. Tool calls are run and
answered, at most MAX_TOOL_ROUNDS rounds, then the model must answer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from chatdesk.chat.fitting import ContextFitter
from chatdesk.chat.reply import ReplyWriter
from chatdesk.chat.titles import ChatTitles
from chatdesk.chat.tool_rounds import MAX_TOOL_ROUNDS, ToolRounds, refuses_tools
from chatdesk.chat.turn import Round, Turn
from chatdesk.context import DEFAULT_REPLY_RESERVE, ContextBudget, ContextWindows, model_key
from chatdesk.domain import Content, Message, Session
from chatdesk.providers.base import (
    ContextTooLongError,
    ImagesNotSupportedError,
    Provider,
    ProviderError,
    ServerError,
    holds_images,
    text_only_messages,
)
from chatdesk.sessions import SessionBusyError, SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError
from chatdesk.tools import SessionTools

log = logging.getLogger(__name__)

ProviderResolver = Callable[[Session], tuple[Provider, str | None]]


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
        self._resolve = resolve_provider or (lambda session: (provider, session.model))
        self._options = dict(generation_options or {})
        self._turns: dict[str, Turn] = {}
        self._windows = context_windows or ContextWindows()
        self._reads_images = reads_images or (
            lambda provider, model: provider.reported_image_input(model)
        )
        self._on_images_refused = on_images_refused or (lambda key: None)
        self._fitter = ContextFitter(manager, self._windows, self._options.get("max_tokens"))
        self._titles = ChatTitles(manager, enabled=auto_title)
        self._replies = ReplyWriter(manager, flush_interval, self._titles)
        tools = SessionTools(manager, measure=self.context_budget, compact=self._compact_for_tool)
        self._tool_rounds = ToolRounds(
            manager, tools, tools_enabled or (lambda provider, model: True)
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
        await self._titles.wait()

    async def close(self) -> None:
        """Stop making titles and wait for them to end (call before closing the manager).

        Streaming replies are not touched: cancel() them first to stop them.
        """
        await self._titles.close()

    @property
    def context_windows(self) -> ContextWindows:
        """What the engine knows of each model's context window."""
        return self._windows

    async def context_budget(self, session_id: str) -> ContextBudget:
        """Where the session's context stands against its model's window right now."""
        session = await self._manager.require_session(session_id)
        provider, model = self._resolve(session)
        return await self._fitter.budget(session, provider, model)

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
            summary = await self._fitter.compact_now(
                session, provider, model, turn, everything=True
            )
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
        if session is None or self.is_streaming(session_id):
            return
        if self._titles.is_making(session_id):
            return  # the model is naming it right now
        if any(m.role == "user" for m in session.history):
            await self._titles.from_question(session)

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
    def _turn(self, session_id: str) -> Iterator[Turn]:
        """Own ``session_id`` for one turn: claimed before anything changes, always released.

        A turn whose reply completed in a chat still called DEFAULT_TITLE then gets its
        title made in the background, after the session is free again.
        """
        if session_id in self._turns:
            raise SessionBusyError("a reply is still streaming in this session")
        turn = Turn()
        self._turns[session_id] = turn
        try:
            yield turn
        finally:
            if self._turns.get(session_id) is turn:
                del self._turns[session_id]
        if turn.title is not None:
            self._titles.start(session_id, turn.title)

    async def _stream_reply(self, session_id: str, turn: Turn) -> AsyncIterator[str]:
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

        # Named when something is learned, not before: a server chosen without a model
        # names its first model only once it is asked.
        def key() -> str:
            return model_key(provider, model)

        tools = self._tool_rounds.offered_to(provider, model)
        retried = harder = False
        rounds = 0
        while True:
            offered = tools and rounds < MAX_TOOL_ROUNDS
            context, budget = await self._fitter.fit(
                session, provider, model, self._turns.get(session.id), harder=harder, tools=tools
            )
            if turn.stopped():
                return  # Stop pressed while the context was being compacted
            if holds_images(context) and self._reads_images(provider, model) is False:
                context = text_only_messages(context)
            options = {**self._options, **_chat_options(session)}
            if offered:
                options["tools"] = self._tool_rounds.definitions()
            if provider.name == "local":
                # llama.cpp fails outright when prompt + reply overflow n_ctx: the reply
                # gets what it would (the default reserve) or what is left, if less.
                room = budget.window - budget.used - budget.margin
                wanted = options.get("max_tokens") or DEFAULT_REPLY_RESERVE
                options["max_tokens"] = max(16, min(wanted, room))
            outcome = Round(tools_offered=offered)
            async for delta in self._replies.stream_round(
                session_id, turn, provider, model, context, options, outcome
            ):
                yield delta
            error = outcome.error
            nothing_sent = outcome.reply is None
            silent = error is None and outcome.status == "complete" and not outcome.tool_calls
            if silent and nothing_sent:
                error = await self._fitter.explain_empty_reply(provider, model, context, budget)
            if isinstance(error, ContextTooLongError) and nothing_sent:
                self._windows.learn(key(), error.limit)
                if not retried:
                    retried = harder = True
                    continue
                raise ContextTooLongError(
                    f"{error} Even after summarising earlier messages the conversation does "
                    "not fit; shorten your message or start a new chat.",
                    error.limit,
                )
            if offered and nothing_sent and refuses_tools(error):
                log.info("%s refuses tools; asking without them", key())
                self._tool_rounds.refused_by(key())
                tools = False
                continue
            if isinstance(error, ServerError) and nothing_sent and holds_images(context):
                error = await self._blame_images(
                    provider, model, context, error, tools=options.get("tools")
                )
            if isinstance(error, ImagesNotSupportedError) and holds_images(context):
                self._on_images_refused(key())
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
                if not await self._tool_rounds.run(session_id, outcome):
                    return  # the call removed its own request (truncate): the turn is over
                retried = harder = False
                continue
            break
        job = self._titles.job_for(session, provider, model)
        if job is not None:
            turn.title = job

    async def _blame_images(
        self,
        provider: Provider,
        model: str | None,
        context: list[dict[str, Any]],
        error: ServerError,
        *,
        tools: list[dict[str, Any]] | None = None,
    ) -> ProviderError:
        """``error``, or ImagesNotSupportedError when the images caused it.

        Servers without vision often fail on image blocks with an error of their own
        (llama-cpp-python's chat template: HTTP 500 "can only concatenate str (not
        "list") to str"). Asked the same chat once more without the images, one that then
        answers has shown what it cannot take.
        """
        if self._reads_images(provider, model) is not None or not provider.checks_requests:
            return error
        # The same request but for the images (tools too: they could be what failed).
        found = await provider.check_request(text_only_messages(context), model, tools=tools)
        if found is not None:
            return error
        return ImagesNotSupportedError(
            f"This model cannot see images: its server failed on them ({error}) but answers "
            "the same chat without them. Remove the images, or choose a model that sees "
            "images; ChatDesk will warn before sending images to this one again."
        )

    async def _compact_for_tool(self, session_id: str) -> Message | None:
        """The tool's ``compact``: inside the running turn, all but its own exchange."""
        session = await self._manager.require_session(session_id)
        provider, model = self._resolve(session)
        turn = self._turns.get(session_id)
        return await self._fitter.compact_now(session, provider, model, turn, everything=True)


def _chat_options(session: Session) -> dict[str, Any]:
    """The generation options a chat sets for itself (its temperature, longest reply)."""
    found: dict[str, Any] = {}
    if session.temperature is not None:
        found["temperature"] = session.temperature
    if session.max_tokens is not None:
        found["max_tokens"] = session.max_tokens
    return found
