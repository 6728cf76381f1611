"""The sessions held in memory: the most recently used ones, and any still in use.

A long-running process (``chatdesk serve``, a window open for weeks) touches many
sessions; keeping every one it ever loaded made it grow without end. This keeps the
:data:`KEEP_RECENT` most recently used sessions, and beyond them only sessions someone
still holds (a chat on screen, a reply streaming, a caller mid-operation): those are
found through weak references, so there is never a second copy of a session in memory
while the first is in use. A session nobody holds is simply loaded again when asked for;
nothing is lost, because every change is written to the database as it is made.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

from chatdesk.domain import Session

# Enough for the chats a user switches between and the API's busy sessions.
KEEP_RECENT = 64


class SessionCache:
    """Sessions by id: the recent ones kept, the others while something holds them."""

    def __init__(self, keep: int = KEEP_RECENT) -> None:
        """An empty cache keeping up to ``keep`` sessions nobody else holds."""
        self._keep = keep
        self._recent: OrderedDict[str, Session] = OrderedDict()
        self._held: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()

    def get(self, session_id: str) -> Session | None:
        """The session in memory with ``session_id`` (now the most recently used), if any."""
        session = self._held.get(session_id)
        if session is not None:
            self._use(session_id, session)
        return session

    def __setitem__(self, session_id: str, session: Session) -> None:
        self._held[session_id] = session
        self._use(session_id, session)

    def pop(self, session_id: str) -> Session | None:
        """Forget the session (it was deleted); the copy that was held, if any."""
        # Taken from the weak map first: dropping the recent entry first could free the
        # last reference to it, and the weak map would forget it before it was returned.
        session = self._held.pop(session_id, None)
        self._recent.pop(session_id, None)
        return session

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    def values(self) -> list[Session]:
        """Every session in memory now."""
        return list(self._held.values())

    def clear(self) -> None:
        """Forget every session."""
        self._recent.clear()
        self._held.clear()

    def _use(self, session_id: str, session: Session) -> None:
        self._recent[session_id] = session
        self._recent.move_to_end(session_id)
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)
