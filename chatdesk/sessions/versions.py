"""Turn versions: Regenerate and Edit keep what they replace, and any version can return.

A turn's versions are the tails of the history that followed one message (``after``:
that message's id, "" for the first turn). The version shown is in the history like any
other message; the others are stored by ``storage/version_rows``. Switching stores the
version shown in the place of the one brought back, so nothing is ever lost, and what
the model sees is what is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatdesk.domain import VersionRef
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.events import HISTORY_REPLACED
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import run_whole

if TYPE_CHECKING:
    from chatdesk.storage import session_rows, version_rows
else:
    session_rows = lazy_module("chatdesk.storage.session_rows")
    version_rows = lazy_module("chatdesk.storage.version_rows")


class TurnVersions:
    """Keeps, lists and switches the versions of a session's turns."""

    def __init__(self, state: ManagerState) -> None:
        """Work on the manager's shared ``state``."""
        self._state = state

    async def keep_as_version(self, session_id: str, position: int) -> VersionRef | None:
        """Move ``history[position:]`` into a stored version of that turn (nothing is lost).

        Regenerate and Edit call this before writing the new version; returns the stored
        version (None when the tail was empty).
        """
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            if not 0 <= position <= len(session.history):
                raise ValueError("no turn starts at that position")
            tail = session.history[position:]
            if not tail:
                return None
            after = session.history[position - 1].id if position else ""

            async def unit() -> VersionRef:
                async with state.db.transaction() as conn:
                    await state.check_known_rows(conn, session)
                    ref = await version_rows.store_tail(
                        conn, session_id, after, [m.id for m in tail]
                    )
                    await session_rows.set_message_count(conn, session_id, position)
                del session.history[position:]
                session.versions.setdefault(after, []).append(ref)
                session.versions[after].sort(key=lambda r: (r.first_created_at, r.id))
                state.events.emit(HISTORY_REPLACED, session_id)
                return ref

            return await run_whole(unit())

    async def select_version(self, session_id: str, position: int, number: int) -> None:
        """Show version ``number`` (1-based, in the order made) of the turn at ``position``.

        The version shown until now is stored in its place, so switching never loses one;
        what follows the turn is part of its version, and the model sees what is shown.
        """
        session = await self._state.require(session_id)
        shown, total = session.version_of(position)
        if not 1 <= number <= total:
            raise ValueError(f"the turn has {total} versions, not {number}")
        if number == shown:
            return
        stored = session.stored_versions(position)
        # The stored versions in order, with the shown one's slot left out.
        target = stored[number - 1 if number < shown else number - 2]
        await self.restore_version(session_id, position, target.id)

    async def restore_version(self, session_id: str, position: int, version_id: str) -> None:
        """Show stored version ``version_id`` of the turn at ``position``, storing the shown one."""
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            if not 0 <= position <= len(session.history):
                raise ValueError("no turn starts at that position")
            after = session.history[position - 1].id if position else ""
            refs = session.versions.get(after, [])
            if not any(r.id == version_id for r in refs):
                raise ValueError("that version does not belong to this turn")
            tail = session.history[position:]

            async def unit() -> None:
                async with state.db.transaction() as conn:
                    await state.check_known_rows(conn, session)
                    kept = None
                    if tail:
                        kept = await version_rows.store_tail(
                            conn, session_id, after, [m.id for m in tail]
                        )
                    restored = await version_rows.restore_version(conn, session_id, version_id)
                    await session_rows.set_message_count(
                        conn, session_id, position + len(restored.messages)
                    )
                session.history[position:] = restored.messages
                updated = [r for r in refs if r.id != version_id]
                if kept is not None:
                    updated.append(kept)
                session.versions[after] = sorted(updated, key=lambda r: (r.first_created_at, r.id))
                state.events.emit(HISTORY_REPLACED, session_id)

            await run_whole(unit())
