"""The storage error every layer catches, apart from SQLAlchemy.

Kept in a module of its own so that the window (and the chat engine) can name it
without importing SQLAlchemy, which start-up loads only after the first paint.
"""

from __future__ import annotations


class StorageError(RuntimeError):
    """The database could not be opened or written; the message says what to do."""
