"""SQLite persistence: tables, engine set-up, migrations and the image store.

``StorageError`` and ``open_database`` are found here on first use: importing this
package does not import SQLAlchemy (start-up paints the window first).
"""

from __future__ import annotations

from typing import Any

__all__ = ["StorageError", "open_database"]


def __getattr__(name: str) -> Any:
    if name == "StorageError":
        from chatdesk.storage.errors import StorageError

        return StorageError
    if name == "open_database":
        from chatdesk.storage.database import open_database

        return open_database
    raise AttributeError(name)
