"""Session events: what changed, told to every listener after the change is committed.

The window listens (through the one adapter, ui/bridge.py) to stay current without
polling. Listeners are called synchronously, in the order they were added; one that
raises is logged and skipped, because the change it reports is already committed and
must not look undone to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something changed: ``kind`` is one of the ``*_EVENT`` names below."""

    kind: str
    session_id: str
    message_id: str | None = None


SESSION_CREATED = "session_created"
SESSION_UPDATED = "session_updated"
SESSION_DELETED = "session_deleted"
MESSAGE_ADDED = "message_added"
MESSAGE_UPDATED = "message_updated"
HISTORY_REPLACED = "history_replaced"

SessionListener = Callable[[SessionEvent], None]


class SessionEvents:
    """The listeners of one SessionManager."""

    def __init__(self) -> None:
        """Start with no listeners."""
        self._listeners: list[SessionListener] = []

    def add(self, listener: SessionListener) -> None:
        """Call ``listener`` after every change."""
        self._listeners.append(listener)

    def remove(self, listener: SessionListener) -> None:
        """Stop calling ``listener`` (nothing happens if it was not listening)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, kind: str, session_id: str, message_id: str | None = None) -> None:
        """Tell every listener; called only once the change is committed and applied."""
        event = SessionEvent(kind, session_id, message_id)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not undo a committed change
                log.exception("session listener failed on %s", event)
