"""``/api/sessions``: a caller's own sessions, turns through the chat engine, truncate, delete.

Every route that names a session answers 404 with one and the same body whether the
session does not exist or belongs to another owner (in the database or only in memory),
so a caller cannot learn that someone else's session exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from chatdesk.api.auth import Caller
from chatdesk.api.catalog import model_catalog
from chatdesk.api.context import ApiContext
from chatdesk.api.schemas import (
    MessageCreate,
    MessageOut,
    SessionCreate,
    SessionDetail,
    SessionOut,
    TruncateRequest,
    TruncateResult,
)
from chatdesk.chat import SessionBusyError
from chatdesk.domain import Message, Session, SessionSummary, content_text, validate_content
from chatdesk.providers.base import ProviderError
from chatdesk.sessions import SessionNotFoundError
from chatdesk.storage.errors import StorageError

log = logging.getLogger(__name__)

NOT_FOUND = "Session not found."
BUSY = "A reply is still being written in this session."
# Content this large is validated on a worker thread (image data is decoded to check it).
_OFFLOAD_CHARS = 256 * 1024

router = APIRouter(prefix="/api", tags=["sessions"])
_SUMMARIES = TypeAdapter(list[SessionSummary])


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def _owned(request: Request, session_id: str, owner: str) -> Session:
    session = await _context(request).manager.get_owned_session(session_id, owner)
    if session is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return session


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(request: Request, owner: Caller) -> Response:
    """The caller's sessions, most recent first, including any that live only in memory."""
    summaries = await _context(request).manager.list_owned_sessions(owner)
    # Serialised straight from the summaries (pydantic's Rust encoder): building a model
    # per session and validating the list again would double the time for a long list.
    return Response(_SUMMARIES.dump_json(summaries), media_type="application/json")


@router.post("/sessions", status_code=201, response_model=SessionDetail)
async def create_session(request: Request, body: SessionCreate, owner: Caller) -> SessionDetail:
    """A new session owned by the caller."""
    context = _context(request)
    provider_id = model = None
    if body.model is not None:
        ref = model_catalog(context.registry).get(body.model)
        if ref is None:
            raise HTTPException(status_code=400, detail=f"Unknown model {body.model!r}.")
        provider_id, model = ref.provider_id, ref.model
    if body.title is not None and not body.title.strip():
        raise HTTPException(status_code=400, detail="A session title cannot be empty.")
    session = await context.manager.create_session(
        body.title,
        owner=owner,
        system_prompt=body.system_prompt,
        provider=provider_id,
        model=model,
    )
    return SessionDetail.of(session)


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(request: Request, session_id: str, owner: Caller) -> SessionDetail:
    """The session with every message."""
    return SessionDetail.of(await _owned(request, session_id, owner))


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(request: Request, session_id: str, owner: Caller) -> Response:
    """Delete the session (also one whose row is gone and that lives only in memory)."""
    context = _context(request)
    await _owned(request, session_id, owner)
    context.engine.cancel(session_id)
    if not await context.manager.delete_session(session_id):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return Response(status_code=204)


@router.post("/sessions/{session_id}/truncate", response_model=TruncateResult)
async def truncate_session(
    request: Request, session_id: str, body: TruncateRequest, owner: Caller
) -> TruncateResult:
    """Keep the first ``keep_count`` messages; the count kept never exceeds what exists."""
    context = _context(request)
    await _owned(request, session_id, owner)
    if context.engine.is_streaming(session_id):
        raise HTTPException(status_code=409, detail=BUSY)
    try:
        kept = await context.manager.truncate_messages(session_id, body.keep_count)
    except SessionNotFoundError:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from None
    return TruncateResult(message_count=kept)


@router.post(
    "/sessions/{session_id}/messages",
    response_model=MessageOut,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def send_message(
    request: Request, session_id: str, body: MessageCreate, owner: Caller
) -> Any:
    """Run one turn: store the user's message, answer it, return the stored reply.

    With ``stream: true`` the reply comes as server-sent events: ``delta`` events with
    ``{"text"}``, then one ``message`` event with the stored reply (or ``error``).
    """
    context = _context(request)
    session = await _owned(request, session_id, owner)
    await _check_content(body.content)
    if context.engine.is_streaming(session_id):
        raise HTTPException(status_code=409, detail=BUSY)
    if context.closing:
        raise HTTPException(status_code=503, detail="ChatDesk's API is shutting down.")
    if body.stream:
        return StreamingResponse(
            _stream_turn(context, session, body.content),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    context.turns.add(session_id)
    try:
        async with _closing(context.engine.send(session_id, body.content)) as deltas:
            async for _delta in deltas:
                pass
    except SessionBusyError:
        raise HTTPException(status_code=409, detail=BUSY) from None
    except SessionNotFoundError:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from None
    except ProviderError as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from None
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    finally:
        context.turns.discard(session_id)
    reply = _reply_of(session)
    if reply is None:
        raise HTTPException(status_code=503, detail="The reply was stopped before it began.")
    return MessageOut.of(reply)


async def _stream_turn(context: ApiContext, session: Session, content: Any) -> AsyncIterator[str]:
    """The turn as server-sent events; the reply is stored whatever the client does."""
    context.turns.add(session.id)
    try:
        async with _closing(context.engine.send(session.id, content)) as deltas:
            async for delta in deltas:
                yield _event("delta", {"text": delta})
        reply = _reply_of(session)
        if reply is None:
            yield _event("error", {"detail": "The reply was stopped before it began."})
        else:
            yield _event("message", MessageOut.of(reply).model_dump(mode="json"))
    except (SessionBusyError, ProviderError, StorageError, SessionNotFoundError) as exc:
        detail = NOT_FOUND if isinstance(exc, SessionNotFoundError) else str(exc)
        reply = _reply_of(session)
        stored = MessageOut.of(reply).model_dump(mode="json") if reply else None
        yield _event("error", {"detail": detail, "message": stored})
    finally:
        context.turns.discard(session.id)


@contextlib.asynccontextmanager
async def _closing(deltas: AsyncIterator[str]) -> AsyncIterator[AsyncIterator[str]]:
    """Close the engine's reply stream however the route ends, so its turn ends now.

    (A client going away cancels the route between two deltas; left to the garbage
    collector, the turn would keep the session busy until then.)
    """
    try:
        yield deltas
    finally:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()


def _reply_of(session: Session) -> Message | None:
    """The reply the turn that just ended stored (None if it stopped before one)."""
    last = session.history[-1] if session.history else None
    return last if last is not None and last.role == "assistant" else None


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _check_content(content: Any) -> None:
    """400 with the reason when ``content`` is not valid message content."""
    heavy = not isinstance(content, str) and len(json.dumps(content)) > _OFFLOAD_CHARS
    try:
        if heavy:
            await asyncio.to_thread(validate_content, content)
        else:
            validate_content(content)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"Invalid content: {exc}") from None
    # The window sends nothing for an empty box; a turn with no text and no image would
    # be stored and answered.
    has_image = not isinstance(content, str) and any(
        block.get("type") == "image_url" for block in content
    )
    if not has_image and not content_text(content).strip():
        raise HTTPException(status_code=400, detail="The message is empty.")
