"""Compaction bookkeeping: a summary takes the place of messages, which stay archived.

``chatdesk.context`` decides what to compact and writes the summary; this part records
it. In one transaction the replaced messages move to the archive (``storage/compaction``)
and the summary, a role "system" message marked with a new compaction id, takes their
place. Nothing is deleted: the originals can be read back or put back, and a summary
compacted again stands for the originals of the summaries inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatdesk.domain import CompactedMessage, Content, Message, new_id, utcnow
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.events import HISTORY_REPLACED
from chatdesk.sessions.preparing import prepare_message
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import run_whole

if TYPE_CHECKING:
    from chatdesk.storage import compaction as compaction_store
    from chatdesk.storage import image_rows, message_rows, session_rows
else:
    compaction_store = lazy_module("chatdesk.storage.compaction")
    image_rows = lazy_module("chatdesk.storage.image_rows")
    message_rows = lazy_module("chatdesk.storage.message_rows")
    session_rows = lazy_module("chatdesk.storage.session_rows")


class Compactions:
    """Records compactions of a session's history, reads their originals, undoes them."""

    def __init__(self, state: ManagerState) -> None:
        """Work on the manager's shared ``state``."""
        self._state = state

    async def compact_messages(
        self, session_id: str, message_ids: Sequence[str], summary: Content
    ) -> Message:
        """Replace the consecutive messages ``message_ids`` by one summary message.

        In one transaction the replaced messages move to the archive (nothing is deleted:
        :meth:`compacted_messages` returns them, :meth:`undo_compaction` puts them back)
        and the summary, a role "system" message marked with a new compaction id, takes
        their place. Returns the summary.
        """
        ids = list(message_ids)
        if not ids:
            raise ValueError("there are no messages to compact")
        if len(set(ids)) != len(ids):
            raise ValueError("a message cannot be compacted twice")
        message, encoded = prepare_message(
            "system", summary, "complete", None, compaction_id=new_id(), compacted_count=0
        )
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            start = next((i for i, m in enumerate(session.history) if m.id == ids[0]), None)
            if start is None or [m.id for m in session.history[start : start + len(ids)]] != ids:
                raise ValueError("only consecutive messages of this chat can be compacted")
            # How many originals it stands for: a summary compacted again counts its own.
            message.compacted_count = sum(
                max(m.compacted_count, 1) if m.is_summary else 1
                for m in session.history[start : start + len(ids)]
            )
            assert message.compaction_id is not None
            compaction_id = message.compaction_id

            async def unit() -> None:
                updated_at = utcnow()
                count = len(session.history) - len(ids) + 1
                async with state.db.transaction() as conn:
                    position = await compaction_store.archive_messages(
                        conn, session_id, ids, compaction_id
                    )
                    if position is None:
                        raise ValueError("the messages to compact are not stored")
                    await message_rows.insert_message(conn, session_id, message, position, encoded)
                    await image_rows.store_images(conn, message.id, encoded.images)
                    await session_rows.set_message_count(conn, session_id, count, updated_at)
                session.history[start : start + len(ids)] = [message]
                session.updated_at = updated_at
                state.events.emit(HISTORY_REPLACED, session_id)

            await run_whole(unit())
        return message

    async def compacted_messages(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """The original messages compaction replaced, oldest first.

        With ``compaction_id``, those behind that summary; without, those behind every
        summary in the history. A summary that was itself compacted again is replaced by
        the originals it stands for, so only messages the chat really had come back.
        """
        state = self._state
        session = await state.require(session_id)
        if compaction_id is None:
            wanted = [m.compaction_id for m in session.history if m.compaction_id is not None]
        else:
            wanted = [compaction_id]
        async with state.lock, state.db.read() as conn:
            rows: list[Any] = []
            # Depth first, so the originals come out in the order the chat had them.
            for cid in wanted:
                stack = list(reversed(await compaction_store.archived_rows(conn, cid)))
                while stack:
                    row = stack.pop()
                    if row.compaction_id is not None:
                        inner = await compaction_store.archived_rows(conn, row.compaction_id)
                        stack.extend(reversed(inner))
                    else:
                        rows.append(row)
            refs = await compaction_store.archived_image_refs(conn, [r.id for r in rows])
            image_bytes = await image_rows.load_images(conn, refs)
        return message_rows.build_history(session_id, rows, image_bytes)

    async def compaction_archive(self, session_id: str) -> list[CompactedMessage]:
        """Every archived message behind the summaries in the history, with its place.

        Unlike :meth:`compacted_messages` this keeps the summaries that were compacted
        again and says which compaction holds each message, so the archive can be
        rebuilt exactly (the JSON export writes it). Depth first: a summary comes before
        the messages it stands for, and the originals in the order the chat had them.
        """
        state = self._state
        session = await state.require(session_id)
        wanted = [m.compaction_id for m in session.history if m.compaction_id is not None]
        async with state.lock, state.db.read() as conn:
            placed: list[tuple[str, int, Any]] = []
            stack: list[tuple[str, int, Any]] = []
            for cid in reversed(wanted):
                rows = await compaction_store.archived_rows(conn, cid)
                stack.extend(reversed([(cid, i, row) for i, row in enumerate(rows)]))
            while stack:
                entry = stack.pop()
                placed.append(entry)
                inner_id = entry[2].compaction_id
                if inner_id is not None:
                    rows = await compaction_store.archived_rows(conn, inner_id)
                    stack.extend(reversed([(inner_id, i, row) for i, row in enumerate(rows)]))
            refs = await compaction_store.archived_image_refs(conn, [e[2].id for e in placed])
            image_bytes = await image_rows.load_images(conn, refs)
        messages = message_rows.build_history(session_id, [e[2] for e in placed], image_bytes)
        return [
            CompactedMessage(message=message, compacted_by=cid, position=position)
            for (cid, position, _), message in zip(placed, messages, strict=True)
        ]

    async def undo_compaction(
        self, session_id: str, compaction_id: str | None = None
    ) -> list[Message]:
        """Put back the messages a compaction replaced, where its summary stands.

        Without ``compaction_id`` the newest summary in the history is undone. The summary
        (edited or not) goes; the originals return exactly as they were. Returns them.
        """
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            summaries = [
                (i, m)
                for i, m in enumerate(session.history)
                if m.compaction_id is not None
                and (compaction_id is None or m.compaction_id == compaction_id)
            ]
            if not summaries:
                raise ValueError("this chat has no compaction to undo")
            index, summary = summaries[-1]
            assert summary.compaction_id is not None
            cid = summary.compaction_id
            async with state.db.read() as conn:
                rows = await compaction_store.archived_rows(conn, cid)
                refs = await compaction_store.archived_image_refs(conn, [r.id for r in rows])
                image_bytes = await image_rows.load_images(conn, refs)
            restored = message_rows.build_history(session_id, rows, image_bytes)

            async def unit() -> None:
                updated_at = utcnow()
                count = len(session.history) - 1 + len(restored)
                async with state.db.transaction() as conn:
                    await compaction_store.restore_messages(conn, session_id, cid, summary.id)
                    await image_rows.delete_orphan_images(conn)
                    await session_rows.set_message_count(conn, session_id, count, updated_at)
                session.history[index : index + 1] = restored
                session.updated_at = updated_at
                state.events.emit(HISTORY_REPLACED, session_id)

            await run_whole(unit())
        return restored
