"""Request and response bodies of the sessions API (validated by pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatdesk.domain import Message, Session, SessionSummary

# Text content, or OpenAI-style blocks: {"type": "text", "text"} / {"type": "image_url", ...}.
ContentIn = str | list[dict[str, Any]]


class SessionCreate(BaseModel):
    """POST /api/sessions."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    system_prompt: str | None = None
    model: str | None = Field(default=None, description="An id from GET /v1/models.")


class MessageCreate(BaseModel):
    """POST /api/sessions/{id}/messages: one turn."""

    model_config = ConfigDict(extra="forbid")

    content: ContentIn
    stream: bool = Field(default=False, description="Send the reply as server-sent events.")


class TruncateRequest(BaseModel):
    """POST /api/sessions/{id}/truncate."""

    model_config = ConfigDict(extra="forbid")

    keep_count: int = Field(ge=0, description="How many of the first messages to keep.")


class TruncateResult(BaseModel):
    """How many messages the session holds now."""

    message_count: int


class MessageOut(BaseModel):
    """A stored message; ``content`` is a string or a list of blocks, never flattened."""

    id: str
    role: str
    content: ContentIn
    status: str
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        """The API form of ``message``."""
        return cls(
            id=message.id,
            role=message.role,
            content=message.content,
            status=message.status,
            error=message.error,
            created_at=message.created_at,
        )


class SessionOut(BaseModel):
    """A session without its messages."""

    id: str
    owner: str
    title: str
    kind: str
    message_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of_summary(cls, summary: SessionSummary) -> SessionOut:
        """The API form of a listed session."""
        return cls(
            id=summary.id,
            owner=summary.owner,
            title=summary.title,
            kind=summary.kind,
            message_count=summary.message_count,
            created_at=summary.created_at,
            updated_at=summary.updated_at,
        )


class SessionDetail(SessionOut):
    """A session with its settings and every message."""

    system_prompt: str | None
    provider: str | None
    model: str | None
    messages: list[MessageOut]

    @classmethod
    def of(cls, session: Session) -> SessionDetail:
        """The API form of ``session``, messages included."""
        return cls(
            id=session.id,
            owner=session.owner,
            title=session.title,
            kind=session.kind,
            message_count=session.message_count,
            created_at=session.created_at,
            updated_at=session.updated_at,
            system_prompt=session.system_prompt,
            provider=session.provider,
            model=session.model,
            messages=[MessageOut.of(m) for m in session.history],
        )
