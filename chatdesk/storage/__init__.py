"""SQLite persistence: tables, engine set-up, migrations and the image store.

``StorageError`` and ``open_database`` are found here on first use: importing this
package does not import SQLAlchemy (start-up paints the window first).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DamagedDatabaseError", "ForeignDatabaseError", "StorageError", "open_database"]


def __getattr__(name: str) -> Any:
    if name == "StorageError":
        from chatdesk.storage.errors import StorageError

        return StorageError
    if name in ("open_database", "DamagedDatabaseError", "ForeignDatabaseError"):
        from chatdesk.storage import database

        return getattr(database, name)
    raise AttributeError(name)
