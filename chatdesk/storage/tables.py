"""The SQLAlchemy tables ChatDesk stores its sessions, messages and images in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)


class UTCTimestamp(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime stored as epoch seconds: compact, and sorts as a number."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> float | None:
        return None if value is None else value.timestamp()

    def process_result_value(self, value: float | None, dialect: object) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, UTC)


metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", String, primary_key=True),
    Column("owner", String, nullable=False, server_default="local"),
    Column("title", String, nullable=False),
    Column("kind", String, nullable=False, server_default="chat"),
    Column("task_id", String),
    Column("system_prompt", Text),
    Column("provider", String),
    Column("model", String),
    Column("created_at", UTCTimestamp, nullable=False),
    Column("updated_at", UTCTimestamp, nullable=False),
    Column("message_count", Integer, nullable=False, server_default="0"),
    # Per-chat generation settings (None: the app's defaults) and the unsent draft.
    Column("temperature", Float),
    Column("max_tokens", Integer),
    Column("draft", Text),
    Index("ix_sessions_updated_at", "updated_at"),
    Index("ix_sessions_owner_updated_at", "owner", "updated_at"),
    # At most one session per scheduled task, enforced by the database itself.
    Index(
        "ux_sessions_task_id",
        "task_id",
        unique=True,
        sqlite_where=text("kind = 'task' AND task_id IS NOT NULL"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("role", String, nullable=False),
    # "text": content is the string itself; "blocks": a JSON list of blocks whose images
    # are references into the images table.
    Column("content_type", String, nullable=False, server_default="text"),
    Column("content", Text, nullable=False),
    Column("status", String, nullable=False, server_default="complete"),
    Column("error", Text),
    Column("created_at", UTCTimestamp, nullable=False),
    # A reply's facts as JSON: the model that wrote it, seconds taken, tokens written.
    Column("meta", Text),
    Index("ux_messages_session_position", "session_id", "position", unique=True),
)

# Image bytes are kept once per content hash, so a session full of images lists and opens
# as fast as one without, and the same picture sent twice is stored once.
images = Table(
    "images",
    metadata,
    Column("sha256", String, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
)

message_images = Table(
    "message_images",
    metadata,
    Column("message_id", String, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("sha256", String, nullable=False),
    Index("ix_message_images_message", "message_id"),
    Index("ix_message_images_sha256", "sha256"),
)

# Tokens of the local HTTP API: only a hash of each token is kept; ``name`` is the owner
# of every session made through that token.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String, primary_key=True),
    Column("token_hash", String, nullable=False),
    Column("created_at", UTCTimestamp, nullable=False),
    Index("ux_api_tokens_hash", "token_hash", unique=True),
)

# Earlier versions of a turn: the reply a Regenerate replaced, or the prompt and replies
# an Edit replaced. A version is the tail of the history that followed the message
# ``after_message_id`` ("" for the start of the chat), kept as the rows it had.
turn_versions = Table(
    "turn_versions",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("after_message_id", String, nullable=False),
    # When the version's first message was made: versions of a turn are shown in this order.
    Column("first_created_at", UTCTimestamp, nullable=False),
    Column("messages", Text, nullable=False),
    Index("ix_turn_versions_session", "session_id", "after_message_id"),
)

# Images the messages of a stored version refer to, so they outlive their messages' rows.
turn_version_images = Table(
    "turn_version_images",
    metadata,
    Column(
        "version_id", String, ForeignKey("turn_versions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("sha256", String, nullable=False),
    Index("ix_turn_version_images_version", "version_id"),
    Index("ix_turn_version_images_sha256", "sha256"),
)
