"""Any server that speaks the OpenAI chat completions API: OpenAI, Ollama, LM Studio, vLLM…

Built on the official ``openai`` SDK with retries off (the user presses Retry; the app
never hammers a failing server). Every failure becomes one of the typed errors of
:mod:`chatdesk.providers.base` with a message a person can act on, and the API key never
appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai
from openai import AsyncOpenAI

try:  # openai >= 3 talks through httpx2, earlier releases through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[no-redef]

from chatdesk.providers.base import (
    AuthenticationError,
    ContextTooLongError,
    ImagesNotSupportedError,
    ModelNotFoundError,
    Provider,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    StreamEnd,
    StreamInterruptedError,
    Usage,
    images_refused,
    stated_context_limit,
)
from chatdesk.providers.server_probe import ModelFacts, probe_model
from chatdesk.settings import split_url_secret

log = logging.getLogger(__name__)

# The SDK refuses to run without a key; servers such as Ollama ignore whatever is sent.
_PLACEHOLDER_KEY = "not-needed"
_MAX_SERVER_MESSAGE = 300
# How much of a body that is not a stream is read to say what it was.
_MAX_BODY_PEEK = 64 * 1024
_CONTEXT_PATTERN = re.compile(
    r"context[_ ]length|maximum context|context window|context size|token limit"
    r"|too many tokens|maximum number of tokens|prompt is too long",
    re.IGNORECASE,
)


class OpenAICompatibleProvider(Provider):
    """Streams replies from an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        inactivity_timeout: float | None = None,
    ) -> None:
        """``timeout`` bounds every wait for the server; ``inactivity_timeout`` (default:
        ``timeout``) the wait for the next part of a reply, keep-alive comments or not."""
        super().__init__(model)
        # A key typed into the URL (user:KEY@host, ?api-key=KEY) is sent as the key and
        # never appears in a message or log line with the URL.
        base_url, url_key = split_url_secret(base_url)
        self._url_key = url_key
        api_key = api_key or url_key
        self.base_url = base_url
        self._api_key = api_key or None
        self._timeout = timeout
        self._inactivity_timeout = timeout if inactivity_timeout is None else inactivity_timeout
        self._send_stream_options = True
        # What the server reported about each model, asked once per model.
        self._facts: dict[str, ModelFacts] = {}
        self._probes: dict[str, asyncio.Future[ModelFacts]] = {}
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_KEY,
            max_retries=0,
            timeout=openai.Timeout(timeout, connect=connect_timeout),
        )

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider({self.base_url!r}, model={self.model!r})"

    # -- Provider -----------------------------------------------------------------------

    async def _events(
        self, messages: list[dict[str, Any]], model: str, **options: Any
    ) -> AsyncIterator[str | StreamEnd]:
        model = model or await self._server_default_model()
        stream = await self._open_stream(messages, model, options)
        received = 0
        finish_reason: str | None = None
        usage: Usage | None = None
        calls: dict[int, dict[str, Any]] = {}
        try:
            not_a_stream = await self._not_a_stream(stream)
            if not_a_stream is not None:
                # A server that ignored stream=true and answered with the whole completion.
                yield not_a_stream
                yield StreamEnd("stop", None)
                return
            while True:
                # The HTTP read timeout restarts with every byte, so a server sending only
                # keep-alive comments would hold the reply forever; this bounds the wait
                # for the next real chunk.
                try:
                    async with asyncio.timeout(self._inactivity_timeout):
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise self._timeout_error(mid_reply=True) from None
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage is not None:
                    usage = Usage(
                        _count(getattr(chunk_usage, "prompt_tokens", None)),
                        _count(getattr(chunk_usage, "completion_tokens", None)),
                    )
                choices = getattr(chunk, "choices", None)
                if not choices or not isinstance(choices, list):
                    continue
                choice = choices[0]
                reason = getattr(choice, "finish_reason", None)
                if reason:
                    finish_reason = str(reason)
                delta = getattr(choice, "delta", None)
                content = getattr(delta, "content", None) if delta is not None else None
                for piece in getattr(delta, "tool_calls", None) or ():
                    _add_tool_call_piece(calls, piece)
                if content is None or content == "":
                    continue
                if not isinstance(content, str):
                    raise self._not_text_error(content)
                received += 1
                yield content
        except (httpx.TimeoutException, openai.APITimeoutError):
            raise self._timeout_error(mid_reply=True) from None
        except (httpx.TransportError, httpx.StreamError, openai.APIConnectionError) as exc:
            cause = f"{exc!r} ({exc.__cause__!r})" if exc.__cause__ is not None else repr(exc)
            log.info("stream from %s broke: %s", self.base_url, self._scrub(cause))
            raise self._interrupted_error() from None
        except openai.OpenAIError as exc:
            raise self._map_error(exc, model) from None
        finally:
            # Closing the response drops the connection, which stops the server generating.
            with contextlib.suppress(Exception):
                await stream.close()
        log.debug("reply from %s ended: %s after %d deltas", self.base_url, finish_reason, received)
        tool_calls = [calls[index] for index in sorted(calls)] or None
        if finish_reason is None and (received or tool_calls):
            # Complete only when the server said so: a body that just ends was cut short.
            # (One that ends before any part is an empty reply, which the engine reports.)
            raise StreamInterruptedError(
                f"The server at {self._where()} ended the reply without saying it was "
                "finished; the partial reply was kept. Press Retry to try again."
            )
        yield StreamEnd(finish_reason, usage, tool_calls)

    async def _not_a_stream(self, stream: Any) -> str | None:
        """The text of a whole completion sent instead of a stream; raises for anything else
        that is not a Server-Sent Events stream (a web page, other JSON), saying what came."""
        response = getattr(stream, "response", None)
        if response is None:
            return None
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in ("", "text/event-stream"):
            return None
        body = (await response.aread())[:_MAX_BODY_PEEK].decode("utf-8", "replace")
        snippet = self._scrub(" ".join(body.split()))[:_MAX_SERVER_MESSAGE]
        if kind == "application/json" or kind.endswith("+json"):
            text = _completion_text(body)
            if text is not None:
                log.info("%s answered with one JSON completion instead of a stream", self.base_url)
                return text
            raise ServerError(
                f"The server at {self._where()} answered with JSON instead of a reply "
                f"stream: {snippet or 'an empty body'}"
            )
        if kind == "text/html":
            raise ServerError(
                f"The server at {self._where()} answered with a web page (text/html) instead "
                "of a reply stream. Check the server URL; it usually ends in /v1."
            )
        raise ServerError(
            f"The server at {self._where()} answered with {kind} instead of a reply stream: "
            f"{snippet or 'an empty body'}"
        )

    def _not_text_error(self, content: object) -> ServerError:
        kind = {int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
            type(content), type(content).__name__
        )
        return ServerError(
            f"The server at {self._where()} sent a reply part that is {kind}, not text; "
            "the reply so far was kept."
        )

    async def list_models(self) -> list[str]:
        """The ids of the models the server offers, sorted."""
        try:
            page = await self._client.models.list()
            ids = [item.id for item in page.data]
        except (httpx.TimeoutException, openai.APITimeoutError):
            raise self._timeout_error(mid_reply=False) from None
        except httpx.TransportError:
            raise self._connection_error() from None
        except openai.NotFoundError:
            raise ServerError(
                f"The server at {self._where()} has no model list (HTTP 404). "
                "Check the server URL; it usually ends in /v1.",
                404,
            ) from None
        except openai.OpenAIError as exc:
            raise self._map_error(exc, None) from None
        return sorted(ids)

    async def default_model(self) -> str | None:
        """The model named at start, else the server's first (None when it cannot say)."""
        try:
            return await self._server_default_model()
        except ProviderError as exc:
            log.info("could not name the default model of %s: %s", self.base_url, exc)
            return None

    async def _server_default_model(self) -> str:
        """The server's first model, for a provider started without one (e.g. --base-url
        alone): Ollama or a llama.cpp server usually has exactly one."""
        if not self.model:
            models = await self.list_models()
            if not models:
                raise ModelNotFoundError(
                    f"The server at {self._where()} lists no models. Name one with --model "
                    "or choose one in the model selector."
                )
            self.model = models[0]
        return self.model

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    @property
    def accepts_tools(self) -> bool:
        """OpenAI-compatible servers take ``tools`` (one that refuses them is remembered
        by the engine)."""
        return True

    async def context_window(self, model: str | None) -> int | None:
        """The window the server reports for ``model`` (see :mod:`.server_probe`)."""
        return (await self.model_facts(model)).context_window

    async def reads_images(self, model: str | None) -> bool | None:
        """Whether the server reports that ``model`` sees images (None: it does not say)."""
        return (await self.model_facts(model)).sees_images

    def reported_image_input(self, model: str | None) -> bool | None:
        """What :meth:`reads_images` found, if the server was asked already."""
        facts = self._facts.get(model or self.model)
        return facts.sees_images if facts is not None else None

    async def model_facts(self, model: str | None) -> ModelFacts:
        """What the server reports about ``model``, asked once per model (callers asking
        while it is being asked share that one probe)."""
        model = model or self.model
        if model in self._facts:
            return self._facts[model]
        probe = self._probes.get(model)
        if probe is None:
            probe = self._probes[model] = asyncio.ensure_future(self._probe(model))
        return await asyncio.shield(probe)

    async def _probe(self, model: str) -> ModelFacts:
        found = ModelFacts()
        try:
            found = await probe_model(self.base_url, self._api_key, model)
        except Exception as exc:  # a probe is only a hint; any failure means "unknown"
            log.info("could not learn about %s from %s: %r", model, self.base_url, exc)
        self._facts[model] = found
        self._probes.pop(model, None)
        return found

    @property
    def checks_requests(self) -> bool:
        """A server is asked again, without streaming."""
        return True

    async def check_request(
        self,
        messages: list[dict[str, Any]],
        model: str | None,
        *,
        tools: list[dict[str, Any]] | None = None,
    ) -> ProviderError | None:
        """Ask once more without streaming (one token): servers such as llama-cpp-python's
        answer a too-long streaming request with an empty 200, but this one with the error."""
        try:
            request: dict[str, Any] = {
                "model": model or self.model,
                "messages": messages,
                "max_tokens": 1,
                "stream": False,
            }
            if tools:
                request["tools"] = tools
            try:
                await self._client.chat.completions.create(**request)
            except openai.APITimeoutError:
                raise  # a slow server is not a dropped connection: no second wait
            except openai.APIConnectionError:
                # Such a server also drops the kept-alive connection the empty stream came
                # on, and the check may be sent on it before its close is seen: once more,
                # on a fresh connection.
                await self._client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            return self._map_error(exc, model)
        return None

    # -- internals ----------------------------------------------------------------------

    async def _open_stream(
        self, messages: list[dict[str, Any]], model: str, options: dict[str, Any]
    ) -> Any:
        request: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        request.update(model=model, messages=messages, stream=True)
        if self._send_stream_options:
            try:
                return await self._client.chat.completions.create(
                    **request, stream_options={"include_usage": True}
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                # Some servers refuse fields they do not know (400, or 422 from validation).
                if "stream_options" not in _error_text(exc):
                    raise self._map_error(exc, model) from None
                log.info("%s does not accept stream_options; asking without", self.base_url)
                self._send_stream_options = False
            except openai.OpenAIError as exc:
                raise self._map_error(exc, model) from None
        try:
            return await self._client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise self._map_error(exc, model) from None

    def _map_error(self, exc: openai.OpenAIError, model: str | None) -> ProviderError:
        """Our typed error for an SDK exception, in words, with the API key scrubbed."""
        where = self._where()
        log.info("request to %s failed: %s", self.base_url, self._scrub(repr(exc)))
        if isinstance(exc, openai.APITimeoutError):
            return self._timeout_error(mid_reply=False)
        if isinstance(exc, openai.APIConnectionError):
            return self._connection_error()
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            if self._api_key is None:
                return AuthenticationError(
                    f"The server at {where} needs an API key. Add one in Settings."
                )
            return AuthenticationError(
                f"The server at {where} rejected the API key. Check the key in Settings."
            )
        if isinstance(exc, openai.RateLimitError):
            retry_after = _retry_after(exc.response)
            when = (
                f"try again in {_seconds(retry_after)} s"
                if retry_after is not None
                else "try again in a moment"
            )
            return RateLimitError(
                f"The server at {where} is rate limiting requests; {when}.", retry_after
            )
        if isinstance(exc, openai.NotFoundError):
            if model:
                return ModelNotFoundError(
                    f"Model '{self._scrub(model)}' was not found on {where}. "
                    "Choose another model in the model selector."
                )
            return ModelNotFoundError(f"The server at {where} answered HTTP 404 (not found).")
        detail = self._server_message(exc)
        if isinstance(exc, openai.APIStatusError) and images_refused(_error_text(exc)):
            return ImagesNotSupportedError(
                f"Model {self._scrub(model or self.model)} on {where} cannot see images "
                f"(the server said: {detail}). Remove the images, or choose a model that "
                "sees images; ChatDesk will warn before sending images to this one again."
            )
        if isinstance(exc, openai.BadRequestError):
            if _CONTEXT_PATTERN.search(_error_text(exc)):
                return ContextTooLongError(
                    f"The conversation is too long for model {self._scrub(model or self.model)}. "
                    "Start a new chat or remove earlier messages.",
                    stated_context_limit(_error_text(exc)),
                )
            return ServerError(
                f"The server at {where} refused the request (HTTP 400): {detail}", 400
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            return ServerError(f"The server at {where} failed with HTTP {status}: {detail}", status)
        return ServerError(f"The server at {where} reported an error: {detail}")

    def _server_message(self, exc: openai.OpenAIError) -> str:
        body = getattr(exc, "body", None)
        message: Any = None
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or json.dumps(body)
        elif isinstance(body, str):
            message = body
        if not message:
            response = getattr(exc, "response", None)
            with contextlib.suppress(Exception):
                message = response.text if response is not None else None
        if not message:
            message = getattr(exc, "message", None) or str(exc)
        text = " ".join(str(message).split())
        if len(text) > _MAX_SERVER_MESSAGE:
            text = text[: _MAX_SERVER_MESSAGE - 1] + "…"
        return self._scrub(text) or "no details given"

    def _timeout_error(self, *, mid_reply: bool) -> ProviderTimeoutError:
        if mid_reply:
            return ProviderTimeoutError(
                f"The server at {self._where()} stopped sending the reply for "
                f"{_seconds(self._inactivity_timeout)} s; the partial reply was kept. "
                "Press Retry to try again."
            )
        return ProviderTimeoutError(
            f"The server at {self._where()} did not answer within "
            f"{_seconds(self._timeout)} s. Press Retry to try again."
        )

    def _connection_error(self) -> ProviderConnectionError:
        return ProviderConnectionError(
            f"Could not connect to {self._where()}. Is the server running?"
        )

    def _interrupted_error(self) -> StreamInterruptedError:
        return StreamInterruptedError(
            f"The connection to {self._where()} was lost mid-reply; the partial reply was "
            "kept. Press Retry to try again."
        )

    def _where(self) -> str:
        return self._scrub(self.base_url.rstrip("/"))

    def _scrub(self, text: str) -> str:
        """``text`` with the API key (and a key that was in the URL) replaced by ``***``."""
        for secret in (self._api_key, self._url_key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _error_text(exc: openai.OpenAIError) -> str:
    """Everything an error says (message, code, body), for matching against."""
    parts = [str(exc), str(getattr(exc, "code", "") or "")]
    body = getattr(exc, "body", None)
    if body is not None:
        parts.append(json.dumps(body, default=str) if not isinstance(body, str) else body)
    return " ".join(parts)


def _count(value: object) -> int | None:
    """A token count as reported, or None when the server sent something else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _completion_text(body: str) -> str | None:
    """The reply text of a non-streamed chat completion body, if that is what it is."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        return None
    return content if isinstance(content, str) and content else None


def _retry_after(response: httpx.Response | None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    if response is None:
        return None
    headers = response.headers
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _seconds(value: float) -> str:
    """``7`` for 7.0, ``0.5`` for 0.5."""
    return f"{value:g}" if value < 10 else str(round(value))


def _add_tool_call_piece(calls: dict[int, dict[str, Any]], piece: Any) -> None:
    """Merge one streamed fragment of a tool call into ``calls`` (keyed by its index)."""
    index = getattr(piece, "index", None) or 0
    call = calls.setdefault(
        index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if getattr(piece, "id", None):
        call["id"] = piece.id
    function = getattr(piece, "function", None)
    if function is not None:
        if getattr(function, "name", None):
            call["function"]["name"] = _merged_name(call["function"]["name"], function.name)
        if getattr(function, "arguments", None):
            call["function"]["arguments"] += function.arguments


def _merged_name(so_far: str, piece: str) -> str:
    """A tool call's name after one more streamed piece of it.

    OpenAI sends the name once; llama-cpp-python's server repeats it whole in every
    chunk, and a server that sent it growing would send each longer form: a piece equal
    to the name so far, or extending it, replaces it; any other piece is appended.
    """
    if not so_far or piece.startswith(so_far):
        return piece
    return so_far + piece
