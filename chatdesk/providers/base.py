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


def model_key(provider: Provider, model: str | None) -> str:
    """One name for a provider's model, for remembering what was learned about it.

    The same as the Settings' ``model_settings_key(provider id, model)``: a server's
    base URL and model name, or ``local`` and the .gguf path (none for the bundled one).
    """
    where = getattr(provider, "base_url", None) or provider.name
    return f"{where} {model or provider.model or ''}".strip()


class ImagesNotSupportedError(ProviderError):
    """The model cannot see images and its server refused a request that held some."""


# How servers refuse images: llama.cpp ("image input is not supported"), LM Studio ("does
# not support images"), vLLM ("is not a multimodal model"), OpenAI ("image_url is only
# supported by certain models").
_IMAGES_REFUSED = re.compile(
    r"(image|vision)[^.]{0,40}(not supported|unsupported|only supported|does not support)"
    r"|(does not|doesn't|cannot) (support|accept|process|see) (image|vision)"
    r"|not a multimodal model|does not support multimodal",
    re.IGNORECASE,
)


def images_refused(text: str) -> bool:
    """Whether a server's error message says the model cannot take images."""
    return _IMAGES_REFUSED.search(text) is not None


# What a text-only model reads in place of each image it was sent.
IMAGE_OMITTED = "[image omitted: this model cannot see images]"


def text_only_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with every list content turned into text, as a text-only model needs.

    Text blocks are joined with newlines; each image becomes :data:`IMAGE_OMITTED` so the
    model (and the user reading its reply) knows something was left out. Other fields
    (tool calls, their ids) are kept.
    """
    converted: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts: list[str] = []
            for block in content:
                kind = block.get("type") if isinstance(block, dict) else None
                if kind == "text":
                    parts.append(str(block.get("text", "")))
                elif kind in ("image_url", "image"):
                    parts.append(IMAGE_OMITTED)
            content = "\n".join(parts)
        elif content is None and not message.get("tool_calls"):
            content = ""
        converted.append({**message, "content": content})
    return converted


def holds_images(messages: list[dict[str, Any]]) -> bool:
    """Whether any of ``messages`` has an image block."""
    return any(
        isinstance(block, dict) and block.get("type") in ("image_url", "image")
        for message in messages
        if isinstance(message.get("content"), list)
        for block in message["content"]
    )


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


# A surrogate with no partner next to it; a pair is kept (and joined into one character).
_LONE_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)


def _is_high_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


def valid_text(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, unpaired ones replaced by U+FFFD."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


class ReplyStream:
    """An async iterator of text deltas; ``finish_reason``/``usage``/``tool_calls`` are set
    once it ends.

    Every delta is valid Unicode: an emoji whose two UTF-16 halves arrive in two deltas
    (JSON escapes such as ``\\ud83d`` then ``\\ude00``) is joined, and a half with no
    partner becomes U+FFFD, so a reply can always be stored.
    """

    def __init__(self, events: AsyncIterator[str | StreamEnd]) -> None:
        self._events = events
        self._pending = ""  # a high surrogate waiting for its low half in the next delta
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tool_calls: list[dict[str, Any]] | None = None

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                event = await self._events.__anext__()
            except StopAsyncIteration:
                if self._pending:
                    self._pending = ""
                    return "\ufffd"
                raise
            if isinstance(event, StreamEnd):
                self.finish_reason = event.finish_reason
                self.usage = event.usage
                self.tool_calls = event.tool_calls
                continue
            if not event:
                continue
            text, self._pending = self._pending + event, ""
            if _is_high_surrogate(text[-1]):
                text, self._pending = text[:-1], text[-1]
            if text:
                return valid_text(text)

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

    async def default_model(self) -> str | None:
        """The name of the model that answers when none is named, if it can be told."""
        return self.model or None

    async def reads_images(self, model: str | None) -> bool | None:
        """Whether the model sees images, if the backend can tell (None: not reported)."""
        return None

    def reported_image_input(self, model: str | None) -> bool | None:
        """What :meth:`reads_images` found, without asking (None: not known yet)."""
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

    @property
    def checks_requests(self) -> bool:
        """Whether :meth:`check_request` really asks the backend (else it finds nothing)."""
        return False

    async def check_request(
        self,
        messages: list[dict[str, Any]],
        model: str | None,
        *,
        tools: list[dict[str, Any]] | None = None,
    ) -> ProviderError | None:
        """Why a request that streamed nothing failed, if the backend can find out.

        Some servers answer a too-long streaming request with an empty 200 response; asked
        again without streaming they give the real error. ``tools`` go with the request
        when the original had them. None: no error found.
        """
        return None
