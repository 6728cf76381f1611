"""A session's messages: added, streamed, replaced and truncated, on disk and in memory.

A reply grows by ``update_message``: every token changes only the in-memory copy
(``persist=False``) and the chat engine persists at most every half second. Content is
validated and encoded before the lock is taken, or, for large inline images, on a
worker thread under it, so that changes to a session keep the order they were made in.

Removing messages (``replace_messages``, ``truncate_messages``) is refused while a reply
that would be removed is still streaming, and never removes a stored row this process
has not seen (``ManagerState.check_known_rows``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chatdesk.domain import Content, Message, Session, utcnow, validate_content, validate_tool_calls
from chatdesk.lazy_import import lazy_module
from chatdesk.sessions.errors import refuse_if_streaming
from chatdesk.sessions.events import HISTORY_REPLACED, MESSAGE_ADDED, MESSAGE_UPDATED
from chatdesk.sessions.preparing import (
    checked_status,
    content_of,
    prepare_history,
    prepare_message,
    snapshot,
)
from chatdesk.sessions.state import ManagerState
from chatdesk.sessions.writes import OFFLOAD_CHARS, inline_image_chars, off_loop_if, run_whole
from chatdesk.storage.content_codec import EncodedContent, encode_content

if TYPE_CHECKING:
    from chatdesk.storage import image_rows, message_rows, session_rows
else:
    image_rows = lazy_module("chatdesk.storage.image_rows")
    message_rows = lazy_module("chatdesk.storage.message_rows")
    session_rows = lazy_module("chatdesk.storage.session_rows")


class SessionMessages:
    """Writes the messages of the manager's sessions."""

    def __init__(self, state: ManagerState) -> None:
        """Work on the manager's shared ``state``."""
        self._state = state

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: Content,
        *,
        status: str = "complete",
        error: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
    ) -> Message:
        """Validate, persist, then append a message to the session's history exactly once.

        ``tool_calls`` (an assistant asking for tools) and ``tool_call_id`` (a role "tool"
        result) carry the OpenAI tool-calling fields.
        """
        checked_status(status)
        validate_tool_calls(tool_calls)
        prepare = functools.partial(
            prepare_message, tool_calls=copy.deepcopy(tool_calls), tool_call_id=tool_call_id
        )
        heavy = inline_image_chars(content) > OFFLOAD_CHARS
        if heavy:
            # The worker thread reads a private copy (cheap: the strings are shared).
            content = copy.deepcopy(content)
        prepared = None if heavy else prepare(role, content, status, error)
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            if prepared is None:
                # Under the lock, so adds to a session keep the order they were made in.
                prepared = await asyncio.to_thread(prepare, role, content, status, error)
            message, encoded = prepared

            async def unit() -> None:
                updated_at = max(session.updated_at, message.created_at)
                async with state.db.transaction() as conn:
                    await message_rows.append_message(conn, session_id, message, encoded)
                    await image_rows.store_images(conn, message.id, encoded.images)
                    await session_rows.set_message_count(
                        conn, session_id, len(session.history) + 1, updated_at
                    )
                session.add_message(message)
                state.events.emit(MESSAGE_ADDED, session_id, message.id)

            await run_whole(unit())
        return message

    async def update_message(
        self,
        session_id: str,
        message_id: str,
        *,
        content: Content | None = None,
        status: str | None = None,
        error: str | None = None,
        persist: bool = True,
        tool_calls: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        """Change a message's content, status or error (a streaming reply grows this way).

        With ``persist=False`` only the in-memory copy changes; the chat engine uses that
        for every token and persists at most every half second.
        """
        if status is not None:
            checked_status(status)
        validate_tool_calls(tool_calls)
        light = content is None or inline_image_chars(content) <= OFFLOAD_CHARS
        encoded: EncodedContent | None = None
        if content is not None and light:
            if persist:
                encoded = encode_content(content)  # validates it too
            else:
                validate_content(content)
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            message = _find_message(session, message_id)
            changed = replace(
                message,
                content=message.content if content is None else content,
                status=status or message.status,
                error=error if error is not None else message.error,
                tool_calls=(
                    message.tool_calls if tool_calls is None else copy.deepcopy(tool_calls)
                ),
                meta=meta if meta is not None else message.meta,
            )
            # Large images are validated (and encoded) on a thread, under the lock so that
            # changes to a message keep the order they were made in.
            if persist and encoded is None:
                # New content with large images, or none given: then what memory holds is
                # stored, as earlier changes may not have been persisted.
                encoded = await off_loop_if(
                    inline_image_chars(changed.content) > OFFLOAD_CHARS,
                    encode_content,
                    changed.content,
                )
            elif not light:
                await asyncio.to_thread(validate_content, changed.content)

            def apply() -> None:
                message.content, message.status, message.error, message.meta = (
                    changed.content,
                    changed.status,
                    changed.error,
                    changed.meta,
                )
                message.tool_calls = changed.tool_calls
                state.events.emit(MESSAGE_UPDATED, session_id, message_id)

            if not persist:
                apply()
                return message

            stored = encoded
            assert stored is not None

            async def unit() -> None:
                async with state.db.transaction() as conn:
                    await image_rows.unlink_images(conn, message_id)
                    await image_rows.store_images(conn, message_id, stored.images)
                    await message_rows.update_message(
                        conn,
                        message_id,
                        stored,
                        changed.status,
                        changed.error,
                        tool_calls=changed.tool_calls,
                        meta=changed.meta,
                    )
                apply()

            await run_whole(unit())
        return message

    async def replace_messages(
        self, session_id: str, messages: Iterable[Message | dict[str, Any]]
    ) -> list[Message]:
        """Replace the whole history in one transaction, in memory and on disk.

        Accepts Message objects (kept as they are) or ``{"role", "content"}`` dicts.
        Everything is validated first; on any error nothing changes.
        """
        items = [snapshot(m) for m in messages]
        heavy = sum(inline_image_chars(content_of(m)) for m in items) > OFFLOAD_CHARS
        prepared = None if heavy else prepare_history(items)
        state = self._state
        session = await state.require(session_id)
        async with state.lock:
            state.check_live(session)
            kept_ids = {m.id for m in items if isinstance(m, Message)}
            refuse_if_streaming(session, [m for m in session.history if m.id not in kept_ids])
            if prepared is None:
                prepared = await asyncio.to_thread(prepare_history, items)
            new_history, encoded = prepared

            async def unit() -> None:
                updated_at = utcnow()
                async with state.db.transaction() as conn:
                    await state.check_known_rows(conn, session)
                    await message_rows.replace_messages(conn, session_id, new_history, encoded)
                    for m, e in zip(new_history, encoded, strict=True):
                        await image_rows.store_images(conn, m.id, e.images)
                    await image_rows.delete_orphan_images(conn)
                    await session_rows.set_message_count(
                        conn, session_id, len(new_history), updated_at
                    )
                # Same list object: anyone holding a reference to .history sees the change.
                session.history[:] = new_history
                session.updated_at = updated_at
                state.events.emit(HISTORY_REPLACED, session_id)

            await run_whole(unit())
        return new_history

    async def truncate_messages(self, session_id: str, keep_count: int) -> int:
        """Keep the first ``keep_count`` messages, delete the rest; return the count kept.

        The stored message_count never exceeds the rows that really exist.
        """
        if keep_count < 0:
            raise ValueError("keep_count cannot be negative")
        state = self._state
        session = await state.require(session_id)

        async def unit() -> int:
            async with state.db.transaction() as conn:
                await state.check_known_rows(conn, session)
                # By id: only rows this process knows are removed.
                dropped = [m.id for m in session.history[keep_count:]]
                await message_rows.delete_messages(conn, dropped)
                rows = await message_rows.count_messages(conn, session_id)
                kept = min(keep_count, rows)
                await image_rows.delete_orphan_images(conn)
                await session_rows.set_message_count(conn, session_id, kept)
            del session.history[keep_count:]
            state.events.emit(HISTORY_REPLACED, session_id)
            return kept

        async with state.lock:
            state.check_live(session)
            refuse_if_streaming(session, session.history[keep_count:])
            return await run_whole(unit())


def _find_message(session: Session, message_id: str) -> Message:
    # The message being changed is nearly always the newest one.
    for message in reversed(session.history):
        if message.id == message_id:
            return message
    raise LookupError(f"session {session.id!r} has no message {message_id!r}")
