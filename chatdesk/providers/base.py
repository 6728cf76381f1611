"""The one small interface every model backend implements, and its typed errors.

A provider streams a reply for a list of context messages (the
``SessionManager.get_context_messages`` format, image blocks included) as an async
iterator of text deltas. When the iterator ends, ``finish_reason`` and ``usage`` on the
stream tell how it ended. Closing the stream early (``aclose()``, or cancelling the task
that iterates it) stops generation promptly.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any


class ProviderError(Exception):
    """A model backend failed; ``str(error)`` is a message a person can act on."""


class AuthenticationError(ProviderError):
    """The server rejected the API key (or one is needed and missing)."""


class RateLimitError(ProviderError):
    """The server asks us to slow down; ``retry_after`` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderConnectionError(ProviderError):
    """The server could not be reached (refused, unknown host, no route)."""


class ProviderTimeoutError(ProviderError):
    """The server did not answer in time."""


class ServerError(ProviderError):
    """The server answered with an error of its own (5xx or an unexpected status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ContextTooLongError(ProviderError):
    """The conversation is longer than the model's context window.

    ``limit`` is the window in tokens when the backend said it (e.g. "maximum context
    length is 1024 tokens"), so the caller can remember it for that model.
    """

    def __init__(self, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


# How servers state their window: OpenAI and vLLM ("maximum context length is 1024
# tokens"), llama.cpp ("exceed context window of 1024", "context size (1024)"), others.
_STATED_LIMIT = re.compile(
    r"maximum context length (?:is|of) (\d+)"
    r"|context window of (\d+)"
    r"|context (?:size|length|window)[^0-9]{0,20}\(?(\d+)\)?\s*tokens?"
    r"|n_ctx[^0-9]{0,5}(\d+)",
    re.IGNORECASE,
)


def stated_context_limit(text: str) -> int | None:
    """The context window an error message states, in tokens, or None."""
    found = _STATED_LIMIT.search(text)
    if found is None:
        return None
    value = next(group for group in found.groups() if group)
    return int(value) if int(value) > 0 else None


class ModelNotFoundError(ProviderError):
    """The model asked for does not exist on that server (or the file is missing)."""


class StreamInterruptedError(ProviderError):
    """The connection was lost after the reply had started streaming."""


# The finish reason of a reply the provider itself stopped early (e.g. closed mid-reply).
CANCELLED_FINISH = "cancelled"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one reply, as reported by the backend."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of a provider's raw event stream: how and why it ended."""

    finish_reason: str | None = None
    usage: Usage | None = None
    # The tools the model asked to call, OpenAI format, when it asked for any.
    tool_calls: list[dict[str, Any]] | None = None


class ReplyStream:
    """An async iterator of text deltas; ``finish_reason``/``usage``/``tool_calls`` are set
    once it ends."""

    def __init__(self, events: AsyncIterator[str | StreamEnd]) -> None:
        self._events = events
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tool_calls: list[dict[str, Any]] | None = None

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        while True:
            event = await self._events.__anext__()
            if isinstance(event, StreamEnd):
                self.finish_reason = event.finish_reason
                self.usage = event.usage
                self.tool_calls = event.tool_calls
                continue
            if event:
                return event

    async def aclose(self) -> None:
        """Stop generating and release the connection or worker."""
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


class Provider(ABC):
    """A model backend. ``name`` identifies the kind ("local", "openai"); ``model`` the model."""

    name: str = "provider"

    def __init__(self, model: str) -> None:
        self.model = model

    def stream(
        self, messages: list[dict[str, Any]], *, model: str | None = None, **options: Any
    ) -> ReplyStream:
        """Stream a reply to ``messages`` with ``model`` (default: this provider's model)."""
        return ReplyStream(self._events(messages, model or self.model, **options))

    @abstractmethod
    def _events(
        self, messages: list[dict[str, Any]], model: str, **options: Any
    ) -> AsyncIterator[str | StreamEnd]:
        """The raw events: text deltas, then optionally one StreamEnd."""

    @abstractmethod
    async def list_models(self) -> list[str]:
        """The models this backend can answer with."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release connections or loaded weights."""

    # Optional knowledge a backend may have about its context window; the defaults say
    # "unknown", and the context budget then estimates.

    @property
    def accepts_tools(self) -> bool:
        """Whether the backend takes OpenAI ``tools`` (servers do; the local model does not)."""
        return False

    async def context_window(self, model: str | None) -> int | None:
        """The model's context window in tokens, if the backend can tell."""
        return None

    @property
    def has_tokenizer(self) -> bool:
        """Whether :meth:`tokenizer` can give the model's own tokenizer."""
        return False

    async def tokenizer(
        self, model: str | None, *, load: bool = True
    ) -> Callable[[str], int] | None:
        """A function counting the tokens of a text with the model's own tokenizer, if any.

        With ``load`` False, a backend that would have to load the model first gives None.
        """
        return None

    async def check_request(
        self, messages: list[dict[str, Any]], model: str | None
    ) -> ProviderError | None:
        """Why a request that streamed nothing failed, if the backend can find out.

        Some servers answer a too-long streaming request with an empty 200 response; asked
        again without streaming they give the real error. None: no error found.
        """
        return None
