"""SQLite persistence: tables, engine set-up, migrations and the image store."""

from chatdesk.storage.database import (
    DamagedDatabaseError,
    ForeignDatabaseError,
    StorageError,
    open_database,
)

__all__ = ["DamagedDatabaseError", "ForeignDatabaseError", "StorageError", "open_database"]
