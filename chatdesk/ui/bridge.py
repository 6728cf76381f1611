"""The one adapter between the SessionManager's listener events and Qt signals."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from chatdesk.sessions import (
    HISTORY_REPLACED,
    MESSAGE_ADDED,
    MESSAGE_UPDATED,
    SESSION_CREATED,
    SESSION_DELETED,
    SESSION_UPDATED,
    SessionEvent,
    SessionManager,
)


class SessionEventBridge(QObject):
    """Re-emits every SessionEvent as a typed Qt signal carrying the session id.

    The manager calls listeners synchronously on the loop thread (which is Qt's thread
    under qasync), so the signals are delivered directly, in order.
    """

    sessionCreated = Signal(str)
    sessionUpdated = Signal(str)
    sessionDeleted = Signal(str)
    messageAdded = Signal(str, str)
    messageUpdated = Signal(str, str)
    historyReplaced = Signal(str)

    def __init__(self, manager: SessionManager, parent: QObject | None = None) -> None:
        """Start listening to ``manager``; call :meth:`detach` before the manager closes."""
        super().__init__(parent)
        self._manager = manager
        manager.add_listener(self._on_event)

    def detach(self) -> None:
        """Stop listening (the window is going away)."""
        self._manager.remove_listener(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        sid = event.session_id
        if event.kind == MESSAGE_UPDATED:
            self.messageUpdated.emit(sid, event.message_id or "")
        elif event.kind == MESSAGE_ADDED:
            self.messageAdded.emit(sid, event.message_id or "")
        elif event.kind == SESSION_CREATED:
            self.sessionCreated.emit(sid)
        elif event.kind == SESSION_UPDATED:
            self.sessionUpdated.emit(sid)
        elif event.kind == SESSION_DELETED:
            self.sessionDeleted.emit(sid)
        elif event.kind == HISTORY_REPLACED:
            self.historyReplaced.emit(sid)
