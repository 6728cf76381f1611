"""Sessions: the one SessionManager that owns every session and its persistence.

Callers import from here (``from chatdesk.sessions import SessionManager``); the modules
of this package are the manager's parts, one idea each:

- ``manager``: SessionManager, the core (sessions, life cycle) and the one flat API;
- ``state``: what the manager and its parts share (sessions in memory, lock, database);
- ``opening``: the database, opened at once or on first use; its transactions;
- ``writes``: how a write runs (whole or not at all; heavy work off the loop);
- ``preparing``: messages validated and encoded before any write;
- ``messages``: adding, streaming, replacing and truncating messages;
- ``versions``: turn versions (Regenerate and Edit keep what they replace);
- ``compaction``: summaries in place of archived originals, and undoing them;
- ``keeping``: trash, pin, archive and branches; ``importing``: whole chats from files;
- ``tasks``: the sessions of scheduled tasks; ``owners``: the HTTP API's access rules;
- ``events`` and ``errors``: what listeners are told, and what callers may catch.
"""

from __future__ import annotations

from chatdesk.sessions.errors import SessionBusyError, SessionChangedError, SessionNotFoundError
from chatdesk.sessions.events import (
    HISTORY_REPLACED,
    MESSAGE_ADDED,
    MESSAGE_UPDATED,
    SESSION_CREATED,
    SESSION_DELETED,
    SESSION_UPDATED,
    SessionEvent,
    SessionListener,
)
from chatdesk.sessions.keeping import TRASH_RETENTION
from chatdesk.sessions.manager import SessionManager

__all__ = [
    "HISTORY_REPLACED",
    "MESSAGE_ADDED",
    "MESSAGE_UPDATED",
    "SESSION_CREATED",
    "SESSION_DELETED",
    "SESSION_UPDATED",
    "TRASH_RETENTION",
    "SessionBusyError",
    "SessionChangedError",
    "SessionEvent",
    "SessionListener",
    "SessionManager",
    "SessionNotFoundError",
]
