"""``/v1/models`` and ``/v1/chat/completions``: any OpenAI client can use ChatDesk's models.

Completions here are stateless, as in OpenAI's API: nothing is stored; a client that
wants a stored conversation uses ``/api/sessions``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from chatdesk.api.auth import Caller
from chatdesk.api.catalog import ModelRef, model_catalog
from chatdesk.domain import validate_content, validate_role
from chatdesk.providers.base import ModelNotFoundError, Provider, ProviderError, ReplyStream
from chatdesk.settings import LOCAL_PROVIDER

router = APIRouter(prefix="/v1", tags=["openai"])


class ChatMessageIn(BaseModel):
    """One message of the conversation sent for completion."""

    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]]


class ChatCompletionRequest(BaseModel):
    """The parts of OpenAI's chat completion request ChatDesk honours (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None


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
    """A completion of ``messages`` by ``model``, streamed as OpenAI chunks when asked."""
    context = request.app.state.context
    ref = model_catalog(context.registry).get(body.model)
    if ref is None:
        raise HTTPException(status_code=404, detail=f"The model {body.model!r} does not exist.")
    messages = []
    for index, message in enumerate(body.messages):
        try:
            validate_role(message.role)
            validate_content(message.content)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"messages[{index}]: {exc}") from None
        messages.append({"role": message.role, "content": message.content})
    provider = context.registry.provider(ref.provider_id, ref.model)
    model = None if ref.provider_id == LOCAL_PROVIDER else ref.model
    options = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_tokens or body.max_completion_tokens,
        "stop": body.stop,
    }
    options = {k: v for k, v in options.items() if v is not None}
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        return StreamingResponse(
            _chunks(provider, messages, model, options, completion_id, body.model),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    stream = provider.stream(messages, model=model, **options)
    text = ""
    try:
        async for delta in stream:
            text += delta
    except ModelNotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ProviderError as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from None
    finally:
        await stream.aclose()
    usage = stream.usage
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": stream.finish_reason or "stop",
            }
        ],
        "usage": _usage(usage),
    }


async def _chunks(
    provider: Provider,
    messages: list[dict[str, Any]],
    model: str | None,
    options: dict[str, Any],
    completion_id: str,
    model_id: str,
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    stream: ReplyStream = provider.stream(messages, model=model, **options)
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for delta in stream:
            yield chunk({"content": delta})
        yield chunk({}, stream.finish_reason or "stop")
    except ProviderError as exc:
        error = {"error": {"message": str(exc), "type": "server_error", "code": None}}
        yield f"data: {json.dumps(error)}\n\n"
    finally:
        await stream.aclose()
    yield "data: [DONE]\n\n"


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
