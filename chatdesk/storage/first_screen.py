"""The chat list for the window's first paint, read with the standard library's sqlite3.

Start-up paints the window with the user's chats before SQLAlchemy is imported and the
SessionManager opens the database (which then lists them again, authoritatively). This
read is read-only and best effort: it uses only columns every schema version has, and
any doubt (no file yet, a locked or damaged file) gives None: the window then simply
waits for the manager.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from chatdesk.domain import SessionSummary

_QUERY = (
    "SELECT id, title, kind, owner, message_count, created_at, updated_at, task_id "
    "FROM sessions ORDER BY updated_at DESC, id"
)


def read_chat_list(path: Path | None) -> list[SessionSummary] | None:
    """Every session in the database at ``path``, most recent first, or None if unsure."""
    if path is None or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return None
    try:
        return [
            SessionSummary(
                id=row[0],
                title=row[1],
                kind=row[2],
                owner=row[3],
                message_count=row[4],
                created_at=datetime.fromtimestamp(row[5], UTC),
                updated_at=datetime.fromtimestamp(row[6], UTC),
                task_id=row[7],
            )
            for row in connection.execute(_QUERY)
        ]
    except (sqlite3.Error, TypeError, ValueError, OverflowError):
        return None
    finally:
        connection.close()
