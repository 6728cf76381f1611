"""The SQLAlchemy tables ChatDesk stores its sessions, messages and images in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
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
    # Find and keep (schema v2): pinned chats sort first; archived and trashed chats
    # leave the main list (the Trash is purged after 30 days); a branch points at the
    # chat and message it was made from; an imported chat remembers where it came from,
    # so importing the same file again adds nothing.
    Column("pinned", Integer, nullable=False, server_default="0"),
    Column("archived_at", UTCTimestamp),
    Column("trashed_at", UTCTimestamp),
    Column("parent_session_id", String),
    Column("parent_message_id", String),
    Column("import_key", String),
    # Per-chat generation settings (None: the app's defaults) and the unsent draft.
    Column("temperature", Float),
    Column("max_tokens", Integer),
    Column("draft", Text),
    Index("ix_sessions_updated_at", "updated_at"),
    Index("ix_sessions_trashed_at", "trashed_at"),
    Index("ux_sessions_import_key", "import_key", unique=True),
    Index("ix_sessions_parent_session_id", "parent_session_id"),
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
    # An assistant's tool calls (JSON list), or the call a role "tool" message answers.
    Column("tool_calls", Text),
    Column("tool_call_id", String),
    # Set on a compaction's summary: which compaction, and how many messages it replaced.
    Column("compaction_id", String),
    Column("compacted_count", Integer, nullable=False, server_default="0"),
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

# Messages a compaction replaced by its summary: kept, never deleted, so the chat can show
# them and Undo compaction can put them back. The columns mirror ``messages``.
compacted_messages = Table(
    "compacted_messages",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("archived_by", String, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("role", String, nullable=False),
    Column("content_type", String, nullable=False, server_default="text"),
    Column("content", Text, nullable=False),
    Column("status", String, nullable=False, server_default="complete"),
    Column("error", Text),
    Column("created_at", UTCTimestamp, nullable=False),
    Column("tool_calls", Text),
    Column("tool_call_id", String),
    Column("compaction_id", String),
    Column("compacted_count", Integer, nullable=False, server_default="0"),
    Index("ix_compacted_messages_archived_by", "archived_by", "ordinal"),
    Index("ix_compacted_messages_session", "session_id"),
)

# The images of compacted messages (the images table keeps their bytes while referenced).
compacted_message_images = Table(
    "compacted_message_images",
    metadata,
    Column(
        "message_id",
        String,
        ForeignKey("compacted_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sha256", String, nullable=False),
    Index("ix_compacted_message_images_message", "message_id"),
    Index("ix_compacted_message_images_sha256", "sha256"),
)

# Scheduled tasks. Each one's runs go into its one session (sessions.kind = 'task' and
# sessions.task_id = tasks.id); next_run_at is kept so a run due while ChatDesk was
# closed is made up at the next start.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("schedule", String, nullable=False),
    Column("provider", String),
    Column("model", String),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", UTCTimestamp, nullable=False),
    Column("next_run_at", UTCTimestamp),
    Column("last_run_at", UTCTimestamp),
    # "complete", "error", "cancelled", "skipped" or "missed", and the words for it.
    Column("last_status", String),
    Column("last_note", Text),
    # A run finished since the user last opened the task's session.
    Column("unread", Boolean, nullable=False, server_default="0"),
)

# The rows the full-text index (search_fts, an FTS5 table that SQLAlchemy does not
# describe) is built over: one per message (its text) and one per session (its title).
# Kept by triggers; see chatdesk.storage.search.
search_docs = Table(
    "search_docs",
    metadata,
    Column("rowid", Integer, primary_key=True),
    Column("doc_id", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("body", Text, nullable=False, server_default=""),
    Index("ux_search_docs_doc_id", "doc_id", unique=True),
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
