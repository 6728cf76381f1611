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

from chatdesk.domain import ImportedChat, Message, new_id, validate_role
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
            check_archive(chat)
            for message in _all_messages(chat):
                validate_role(message.role)
                checked_status(message.status)
        encoded = await asyncio.to_thread(
            lambda: [
                (
                    [encode_content(m.content) for m in c.session.history],
                    [encode_content(e.message.content) for e in c.compacted],
                )
                for c in chats
            ]
        )
        async with state.db.read() as conn:
            known_keys, known_ids, known_messages, known_compactions = await keeping.already_stored(
                conn,
                import_keys=[c.import_key for c in chats],
                session_ids=[c.session.id for c in chats],
                message_ids=[msg.id for c in chats for msg in _all_messages(c)],
                compaction_ids=[cid for c in chats for cid in _compaction_ids(c)],
            )
        fresh: list[tuple[ImportedChat, _Encoded]] = []
        seen_keys: set[str] = set()
        # (session id, old message id) -> new id, for branches pointing into those chats.
        renamed: dict[tuple[str, str], str] = {}
        for chat, stored in zip(chats, encoded, strict=True):
            key, sid = chat.import_key, chat.session.id
            if key in known_keys or key in seen_keys or sid in known_ids or sid in state.sessions:
                continue
            seen_keys.add(key)
            for message in _all_messages(chat):
                # A message id already used elsewhere gets a new one: ids are global, and
                # an archived message's id must stay free for when Undo brings it back.
                if message.id in known_messages:
                    renamed[sid, message.id] = message.id = new_id()
                known_messages.add(message.id)
            _claim_compaction_ids(chat, known_compactions)
            fresh.append((chat, stored))
        for chat, _ in fresh:
            # A branch made at a message that got a new id follows it.
            branch = chat.session
            if branch.parent_session_id and branch.parent_message_id:
                where = (branch.parent_session_id, branch.parent_message_id)
                branch.parent_message_id = renamed.get(where, branch.parent_message_id)
        skipped = total - len(fresh)
        added: list[str] = []
        if progress is not None:
            progress(skipped, total)
        for start in range(0, len(fresh), IMPORT_BATCH):
            batch = fresh[start : start + IMPORT_BATCH]

            async def unit(batch: list[tuple[ImportedChat, _Encoded]]) -> None:
                async with state.db.transaction() as conn:
                    for chat, (history, archive) in batch:
                        await keeping.insert_whole_session(
                            conn,
                            chat.session,
                            history,
                            import_key=chat.import_key,
                            compacted=list(zip(chat.compacted, archive, strict=True)),
                        )
                for chat, _ in batch:
                    added.append(chat.session.id)
                    state.events.emit(SESSION_CREATED, chat.session.id)

            async with state.lock:
                await run_whole(unit(batch))
            if progress is not None:
                progress(skipped + start + len(batch), total)
        return added


# The encoded contents of an imported chat: its history's, then its archive's.
_Encoded = tuple[list[EncodedContent], list[EncodedContent]]


def _all_messages(chat: ImportedChat) -> list[Message]:
    return [*chat.session.history, *(e.message for e in chat.compacted)]


def _compaction_ids(chat: ImportedChat) -> list[str]:
    return [m.compaction_id for m in _all_messages(chat) if m.compaction_id is not None]


def check_archive(chat: ImportedChat) -> None:
    """Raise ValueError unless ``chat.compacted`` is exactly what its summaries stand for.

    Every summary needs the messages it replaced (else Undo would have nothing to put
    back), and every archived message a summary of this chat that replaced it.
    """
    summaries = _compaction_ids(chat)
    if len(set(summaries)) != len(summaries):
        raise ValueError("two summaries of an imported chat share a compaction id")
    holders = {e.compacted_by for e in chat.compacted}
    if holders != set(summaries):
        raise ValueError("the compacted messages of an imported chat do not match its summaries")
    inside: dict[str, list[str]] = {}
    for entry in chat.compacted:
        if entry.message.compaction_id is not None:
            inside.setdefault(entry.compacted_by, []).append(entry.message.compaction_id)
    # Each compaction must hang below a summary of the history: no loops, no strays.
    reached: set[str] = set()
    pending = [m.compaction_id for m in chat.session.history if m.compaction_id is not None]
    while pending:
        cid = pending.pop()
        if cid not in reached:
            reached.add(cid)
            pending.extend(inside.get(cid, []))
    if reached != holders:
        raise ValueError("an imported chat has compacted messages no summary of it stands for")


def _claim_compaction_ids(chat: ImportedChat, taken: set[str]) -> None:
    # A compaction id already used elsewhere gets a new one, on its summary and on every
    # message of its archive alike, so each compaction reads and undoes only its own.
    renamed: dict[str, str] = {}
    for cid in _compaction_ids(chat):
        if cid in taken:
            renamed[cid] = new_id()
        taken.add(renamed.get(cid, cid))
    if not renamed:
        return
    for message in _all_messages(chat):
        if message.compaction_id is not None:
            message.compaction_id = renamed.get(message.compaction_id, message.compaction_id)
    for entry in chat.compacted:
        entry.compacted_by = renamed.get(entry.compacted_by, entry.compacted_by)
