"""SQLite persistence: tables, engine set-up, migrations and the image store."""

from chatdesk.storage.database import StorageError, open_database

__all__ = ["StorageError", "open_database"]
