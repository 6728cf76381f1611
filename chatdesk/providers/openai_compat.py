"""Any server that speaks the OpenAI chat completions API: OpenAI, Ollama, LM Studio, vLLM…

Built on the official ``openai`` SDK with retries off (the user presses Retry; the app
never hammers a failing server). Every failure becomes one of the typed errors of
:mod:`chatdesk.providers.base` with a message a person can act on, and the API key never
appears in a message or a log line.
"""

from __future__ import annotations

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
    stated_context_limit,
)

log = logging.getLogger(__name__)

# The SDK refuses to run without a key; servers such as Ollama ignore whatever is sent.
_PLACEHOLDER_KEY = "not-needed"
_MAX_SERVER_MESSAGE = 300
# Asking a server about its context window is a hint, worth a short wait only.
_PROBE_TIMEOUT = 3.0
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
    ) -> None:
        """``timeout`` bounds every wait for the server (also between two chunks)."""
        super().__init__(model)
        self.base_url = base_url
        self._api_key = api_key or None
        self._timeout = timeout
        self._send_stream_options = True
        self._windows: dict[str, int | None] = {}
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
            async for chunk in stream:
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage is not None:
                    usage = Usage(
                        getattr(chunk_usage, "prompt_tokens", None),
                        getattr(chunk_usage, "completion_tokens", None),
                    )
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
                delta = getattr(choice, "delta", None)
                content = getattr(delta, "content", None) if delta is not None else None
                for piece in getattr(delta, "tool_calls", None) or ():
                    _add_tool_call_piece(calls, piece)
                if content:
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
        yield StreamEnd(finish_reason, usage, tool_calls)

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
        """The window the server reports for ``model``, asked once per model.

        Tried in turn: the model list's own fields (vLLM ``max_model_len``,
        ``context_length``), llama.cpp server's ``/props``, LM Studio's
        ``/api/v0/models/<model>`` and Ollama's ``/api/show``. None when none answers.
        """
        model = model or self.model
        if model in self._windows:
            return self._windows[model]
        found = None
        try:
            found = await self._probe_context_window(model)
        except Exception as exc:  # a probe is only a hint; any failure means "unknown"
            log.info("could not learn the context window from %s: %r", self.base_url, exc)
        self._windows[model] = found
        return found

    async def check_request(
        self, messages: list[dict[str, Any]], model: str | None
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
            await self._client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            return self._map_error(exc, model)
        return None

    async def _probe_context_window(self, model: str) -> int | None:
        root = self.base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        async with httpx.AsyncClient(timeout=_PROBE_TIMEOUT, headers=headers) as client:

            async def get_json(method: str, url: str, **kwargs: Any) -> Any:
                try:
                    response = await client.request(method, url, **kwargs)
                except httpx.HTTPError:
                    return None
                if response.status_code != 200:
                    return None
                try:
                    return response.json()
                except ValueError:
                    return None

            listing = await get_json("GET", f"{self.base_url.rstrip('/')}/models")
            entries = listing.get("data") if isinstance(listing, dict) else None
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict) and entry.get("id") == model:
                    for name in ("max_model_len", "context_length", "max_context_length"):
                        found = _positive_int(entry.get(name))
                        if found:
                            return found
            props = await get_json("GET", f"{root}/props")
            if isinstance(props, dict):
                settings = props.get("default_generation_settings")
                for source in (settings, props):
                    if isinstance(source, dict):
                        found = _positive_int(source.get("n_ctx"))
                        if found:
                            return found
            lm_studio = await get_json("GET", f"{root}/api/v0/models/{model}")
            if isinstance(lm_studio, dict):
                for name in ("loaded_context_length", "max_context_length"):
                    found = _positive_int(lm_studio.get(name))
                    if found:
                        return found
            ollama = await get_json("POST", f"{root}/api/show", json={"model": model})
            if isinstance(ollama, dict):
                return _ollama_window(ollama)
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
                f"{_seconds(self._timeout)} s; the partial reply was kept. "
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
        """``text`` with the API key replaced by ``***``."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text


def _error_text(exc: openai.OpenAIError) -> str:
    """Everything an error says (message, code, body), for matching against."""
    parts = [str(exc), str(getattr(exc, "code", "") or "")]
    body = getattr(exc, "body", None)
    if body is not None:
        parts.append(json.dumps(body, default=str) if not isinstance(body, str) else body)
    return " ".join(parts)


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
            call["function"]["name"] += function.name
        if getattr(function, "arguments", None):
            call["function"]["arguments"] += function.arguments


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _ollama_window(info: dict[str, Any]) -> int | None:
    """Ollama's runtime window: ``num_ctx`` when the model sets it, else its trained one."""
    for line in str(info.get("parameters") or "").splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "num_ctx":
            found = _positive_int(value.strip())
            if found:
                return found
    model_info = info.get("model_info")
    if isinstance(model_info, dict):
        for key, value in model_info.items():
            if str(key).endswith(".context_length"):
                return _positive_int(value)
    return None
