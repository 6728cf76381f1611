"""What the SessionManager raises when it refuses a call, in words a person can act on.

Kept apart from the manager so that callers (the engine, the API, the window) can name
these errors without reading how sessions are stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatdesk.domain import Message, Session
from chatdesk.storage.errors import StorageError


class SessionBusyError(RuntimeError):
    """A reply is still streaming in that session, so its messages cannot be removed yet."""


class SessionChangedError(StorageError):
    """The stored messages are not the ones this process knows: another process changed
    them. Nothing was removed; the message says what to do."""


class SessionNotFoundError(LookupError):
    """No session has the id that was asked for."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session with id {session_id!r}")
        self.session_id = session_id


def refuse_if_streaming(session: Session, removed: Iterable[Message]) -> None:
    """SessionBusyError if a reply still being written would be removed."""
    if any(m.status == "streaming" for m in removed):
        raise SessionBusyError(
            f"A reply is still being written in “{session.title}”. Stop it (or wait for it "
            "to finish) before removing or replacing its messages."
        )
