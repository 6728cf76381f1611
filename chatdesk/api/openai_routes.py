"""``/v1/models`` and ``/v1/chat/completions``: any OpenAI client can use ChatDesk's models.

Completions here are stateless, as in OpenAI's API: nothing is stored; a client that
wants a stored conversation uses ``/api/sessions``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from chatdesk.api.auth import Caller
from chatdesk.api.catalog import ModelRef, model_catalog
from chatdesk.api.openai_requests import (
    ChatCompletionRequest,
    OpenAIRequestError,
    ProviderRequest,
    provider_request,
)
from chatdesk.providers.base import (
    ContextTooLongError,
    ModelNotFoundError,
    Provider,
    ProviderError,
    RateLimitError,
    ReplyStream,
    ServerError,
)
from chatdesk.settings import LOCAL_PROVIDER

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models")
async def list_models(request: Request, owner: Caller) -> dict[str, Any]:
    """The models ChatDesk can use, the embedded one included."""
    catalog = model_catalog(request.app.state.context.registry)
    data = [
        {"id": model_id, "object": "model", "created": 0, "owned_by": _owned_by(ref)}
        for model_id, ref in catalog.items()
    ]
    return {"object": "list", "data": data}


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatCompletionRequest, owner: Caller) -> Any:
    """A completion of ``messages`` by ``model``, streamed as OpenAI chunks when asked.

    The client's ``tools`` reach the model and its calls come back as OpenAI's
    ``tool_calls`` (``finish_reason`` "tool_calls"); ChatDesk never runs them: the client
    does, and sends the results in its next request. The embedded model cannot call tools:
    with ``tool_choice`` "auto" (or none) it answers in text, the tools unseen and earlier
    tool calls and results given to it as text; a ``tool_choice`` demanding a call is a
    400. In a stream, a call arrives whole after the text: one chunk with its id and name,
    then one with all its arguments. The last chunk reports the usage when
    ``stream_options.include_usage`` asks (null for the embedded model, which does not
    count the prompt's tokens).
    """
    context = request.app.state.context
    ref = model_catalog(context.registry).get(body.model)
    if ref is None:
        raise HTTPException(status_code=404, detail=f"The model {body.model!r} does not exist.")
    provider = context.registry.provider(ref.provider_id, ref.model)
    asked = provider_request(body, provider)
    model = None if ref.provider_id == LOCAL_PROVIDER else ref.model
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            _chunks(provider, asked, model, completion_id, body.model, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    stream = provider.stream(asked.messages, model=model, **asked.options)
    text = ""
    try:
        async for delta in stream:
            text += delta
    except ProviderError as exc:
        raise _failure(exc) from None
    finally:
        await stream.aclose()
    calls = _tool_calls(stream, asked)
    if not text and not calls and stream.finish_reason is None:
        found = await _why_nothing(provider, asked.messages, model)
        if found is not None:
            raise _failure(found)
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    elif not text:
        message["content"] = ""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(stream, calls),
            }
        ],
        "usage": _usage(stream.usage),
    }


async def _chunks(
    provider: Provider,
    asked: ProviderRequest,
    model: str | None,
    completion_id: str,
    model_id: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    created = int(time.time())

    def event(choices: list[dict[str, Any]], **fields: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = None  # as OpenAI: null on every chunk but the last
        body.update(fields)
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

    stream: ReplyStream = provider.stream(asked.messages, model=model, **asked.options)
    try:
        yield chunk({"role": "assistant", "content": ""})
        sent = False
        async for delta in stream:
            sent = True
            yield chunk({"content": delta})
        calls = _tool_calls(stream, asked)
        if not sent and not calls and stream.finish_reason is None:
            found = await _why_nothing(provider, asked.messages, model)
            if found is not None:
                raise found
        for index, call in enumerate(calls or ()):
            # As OpenAI streams a call: its id, type and name first, then the arguments.
            function = call["function"]
            head = {**call, "function": {"name": function["name"], "arguments": ""}}
            yield chunk({"tool_calls": [{"index": index, **head}]})
            if function["arguments"]:
                arguments = {"arguments": function["arguments"]}
                yield chunk({"tool_calls": [{"index": index, "function": arguments}]})
        yield chunk({}, _finish_reason(stream, calls))
        if include_usage:
            yield event([], usage=_usage(stream.usage))
    except ProviderError as exc:
        error = {
            "error": {"message": str(exc), "type": "server_error", "param": None, "code": None}
        }
        yield f"data: {json.dumps(error)}\n\n"
    finally:
        await stream.aclose()
    yield "data: [DONE]\n\n"


def _tool_calls(stream: ReplyStream, asked: ProviderRequest) -> list[dict[str, Any]] | None:
    """The calls the model made, each with an id; None when none were made or none were
    offered (a call made unasked is dropped, as the engine drops one)."""
    if not asked.tools_offered or not stream.tool_calls:
        return None
    calls = []
    for call in stream.tool_calls:
        function = call.get("function") or {}
        calls.append(
            {
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": function.get("name") or "",
                    "arguments": function.get("arguments") or "",
                },
            }
        )
    return calls


def _finish_reason(stream: ReplyStream, calls: list[dict[str, Any]] | None) -> str:
    """OpenAI's finish reason: "tool_calls" whenever calls are returned (some servers say
    "stop" then, and agent clients look for "tool_calls")."""
    if calls:
        return "tool_calls"
    reason = stream.finish_reason
    return reason if reason in ("stop", "length", "content_filter") else "stop"


async def _why_nothing(
    provider: Provider, messages: list[dict[str, Any]], model: str | None
) -> ProviderError | None:
    """Why a stream ended with no text and no finish reason: llama-cpp-python's server,
    for one, streams an empty 200 for a request longer than its window."""
    return await provider.check_request(messages, model)


def _failure(error: ProviderError) -> HTTPException:
    """The HTTP error for a model's failure, as OpenAI clients tell them apart: the request
    itself refused (400: too long, or a server refusing e.g. the tools) is not retried by
    them, a rate limit (429) waits, a server failing (502) may be tried again."""
    if isinstance(error, ModelNotFoundError):
        return HTTPException(status_code=404, detail=str(error))
    if isinstance(error, ContextTooLongError):
        return OpenAIRequestError(str(error), "messages", "context_length_exceeded")
    if isinstance(error, ServerError) and error.status in (400, 422):
        return OpenAIRequestError(str(error))
    if isinstance(error, RateLimitError):
        headers = None
        if error.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
        return HTTPException(status_code=429, detail=str(error), headers=headers)
    return HTTPException(status_code=502, detail=str(error))


def _owned_by(ref: ModelRef) -> str:
    return "chatdesk-local" if ref.provider_id == LOCAL_PROVIDER else ref.provider_id


def _usage(usage: Any) -> dict[str, int] | None:
    if usage is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
