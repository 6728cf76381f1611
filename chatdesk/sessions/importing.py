"""Importing whole chats (from an export file) as new sessions, never over old ones.

Imports never overwrite: a chat whose import key or session id is already stored is
skipped, so importing the same file twice adds nothing; a message id already used
elsewhere gets a new one. Everything is validated and encoded (on a worker thread: an
export can be large) before the first write, and large imports commit in batches so one
transaction never holds the whole file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from chatdesk.domain import ImportedChat, new_id, validate_role
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.events import SESSION_CREATED
from chatdesk.sessions.preparing import checked_status
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import run_whole
from chatdesk.storage.content_codec import EncodedContent, encode_content

if TYPE_CHECKING:
    from chatdesk.storage import keeping
else:
    keeping = lazy_module("chatdesk.storage.keeping")

# Imported chats written per transaction: large imports commit in steps, not all at once.
IMPORT_BATCH = 100


class ChatImport:
    """Stores chats read from export files as new sessions."""

    def __init__(self, state: ManagerState) -> None:
        """Work on the manager's shared ``state``."""
        self._state = state

    async def import_chats(
        self,
        chats: Sequence[ImportedChat],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Store chats read from an export file as new sessions; return the ids added.

        A chat whose import key or session id is already stored is skipped (never
        changed), so importing the same file twice adds nothing. Everything is
        validated before the first write: invalid content raises ValueError and writes
        nothing. ``progress(done, total)`` is called as chats are written.
        """
        state = self._state
        total = len(chats)
        for chat in chats:
            for message in chat.session.history:
                validate_role(message.role)
                checked_status(message.status)
        encoded = await asyncio.to_thread(
            lambda: [[encode_content(m.content) for m in c.session.history] for c in chats]
        )
        async with state.db.read() as conn:
            known_keys, known_ids, known_messages = await keeping.already_stored(
                conn,
                import_keys=[c.import_key for c in chats],
                session_ids=[c.session.id for c in chats],
                message_ids=[msg.id for c in chats for msg in c.session.history],
            )
        fresh: list[tuple[ImportedChat, list[EncodedContent]]] = []
        seen_keys: set[str] = set()
        for chat, stored in zip(chats, encoded, strict=True):
            key, sid = chat.import_key, chat.session.id
            if key in known_keys or key in seen_keys or sid in known_ids or sid in state.sessions:
                continue
            seen_keys.add(key)
            for message in chat.session.history:
                # A message id already used elsewhere gets a new one: ids are global.
                if message.id in known_messages:
                    message.id = new_id()
                known_messages.add(message.id)
            fresh.append((chat, stored))
        skipped = total - len(fresh)
        added: list[str] = []
        if progress is not None:
            progress(skipped, total)
        for start in range(0, len(fresh), IMPORT_BATCH):
            batch = fresh[start : start + IMPORT_BATCH]

            async def unit(batch: list[tuple[ImportedChat, list[EncodedContent]]]) -> None:
                async with state.db.transaction() as conn:
                    for chat, stored in batch:
                        await keeping.insert_whole_session(
                            conn, chat.session, stored, import_key=chat.import_key
                        )
                for chat, _ in batch:
                    added.append(chat.session.id)
                    state.events.emit(SESSION_CREATED, chat.session.id)

            async with state.lock:
                await run_whole(unit(batch))
            if progress is not None:
                progress(skipped + start + len(batch), total)
        return added
