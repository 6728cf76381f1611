"""What a chat does per session, apart from any widget: open, send, stop, retry, edit.

The controller knows which session is shown, which replies are streaming, which turns
failed and which stored errors the user dismissed. It imports no Qt: views (the main
window today; the scheduler's and search's views later) call its methods and are told
through :class:`ChatScreen` when something they show changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from chatdesk.chat import ChatEngine, SessionBusyError
from chatdesk.domain import DEFAULT_TITLE, Content, Message, Session
from chatdesk.model_settings import new_chat_model
from chatdesk.providers.base import ProviderError
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError
from chatdesk.ui.async_tasks import TaskSet

OPEN_TASK = "open-session"


class ChatScreen(Protocol):
    """What the controller needs from the view showing the current session."""

    def show_session_state(self) -> None:
        """Show the current session's title, model, streaming state and error again."""

    def restore_draft(self, content: Content) -> None:
        """Put ``content`` back in the composer (a message that could not be sent)."""

    def show_session(self, session: Session, previous: Session | None) -> None:
        """Show ``session`` (just opened) instead of ``previous``."""


class ChatController:
    """The per-session chat logic over one SessionManager and ChatEngine."""

    def __init__(
        self,
        manager: SessionManager,
        engine: ChatEngine,
        registry: ProviderRegistry,
        tasks: TaskSet,
        screen: ChatScreen,
    ) -> None:
        """A controller showing no session yet; ``screen`` is told what to show."""
        self.manager = manager
        self.engine = engine
        self.registry = registry
        self.tasks = tasks
        self.screen = screen
        self.current: Session | None = None
        self._opening = 0
        self._turns: dict[str, asyncio.Task[None]] = {}
        self._errors: dict[str, str] = {}
        # Sessions whose stored error the user dismissed (until their next turn).
        self._dismissed: set[str] = set()
        # The latest version switch asked for in each session.
        self._version_switches: dict[str, asyncio.Task[None]] = {}

    # -- what is known per session ----------------------------------------------------------

    @property
    def current_id(self) -> str | None:
        """The id of the session shown."""
        return self.current.id if self.current else None

    def is_current(self, session_id: str) -> bool:
        """True when ``session_id`` is the session shown."""
        return self.current is not None and self.current.id == session_id

    def error_text(self, session_id: str) -> str | None:
        """The error the last turn of ``session_id`` ended with, if it failed."""
        return self._errors.get(session_id)

    def turn_task(self, session_id: str) -> asyncio.Task[None] | None:
        """The task streaming a reply into ``session_id``, if one runs."""
        return self._turns.get(session_id)

    def is_streaming(self, session_id: str) -> bool:
        """True while a reply streams into ``session_id`` (started here or elsewhere)."""
        return session_id in self._turns or self.engine.is_streaming(session_id)

    def is_waiting_for_reply(self) -> bool:
        """True while the current session's reply streams but has no message yet."""
        session = self.current
        return (
            session is not None
            and self.is_streaming(session.id)
            and bool(session.history)
            and session.history[-1].role == "user"
        )

    def shown_error(self) -> str | None:
        """The error the current session's banner shows, or None for no banner."""
        session = self.current
        if session is None or session.id in self._turns:
            return None
        message = self._errors.get(session.id)
        if message is None and session.history and session.id not in self._dismissed:
            last = session.history[-1]
            if last.status == "error":
                message = last.error or "The reply failed."
        return message

    def user_message(self, message_id: str) -> Message | None:
        """The current session's user message ``message_id`` (to edit it), if there is one."""
        if self.current is None:
            return None
        message = next((m for m in self.current.history if m.id == message_id), None)
        return message if message is not None and message.role == "user" else None

    # -- opening and creating ---------------------------------------------------------------

    def request_open(self, session_id: str) -> asyncio.Task[None] | None:
        """Open ``session_id`` in the background; a newer request cancels this one."""
        if self.is_current(session_id):
            return None
        return self.tasks.start(self.open_session(session_id), name=OPEN_TASK)

    async def open_session(self, session_id: str) -> Session | None:
        """Show ``session_id``; None when it is gone or another open overtook this one."""
        self._opening += 1
        ticket = self._opening
        session = await self.manager.get_session(session_id)
        if ticket != self._opening or session is None:
            return None  # the user has already moved on to another session
        previous = self.current
        self.current = session
        self.screen.show_session(session, previous)
        if session.title == DEFAULT_TITLE and session.history:
            # Its first reply never finished (the app was killed): name it all the same.
            self.tasks.start(self.engine.name_if_untitled(session.id))
        return session

    async def create_session(self) -> Session:
        """A new chat on the model new chats get (stamped now: a later default is not)."""
        provider, model = new_chat_model(self.registry.preferences)
        return await self.manager.create_session(provider=provider, model=model)

    def reuse_empty_current(self) -> bool:
        """Keep the current chat as the new one if it is still empty; False if it is not.

        A reused chat takes the model new chats get, as a created one would.
        """
        current = self.current
        if current is None or current.kind != "chat" or current.history:
            return False
        provider, model = new_chat_model(self.registry.preferences)
        if (current.provider, current.model) != (provider, model):
            update = self.manager.update_session(current.id, provider=provider, model=model)
            self.tasks.start(update)
        return True

    def forget(self, session_id: str) -> bool:
        """Drop what is known of a deleted session; True if it was the one shown."""
        self._errors.pop(session_id, None)
        self._dismissed.discard(session_id)
        if not self.is_current(session_id):
            return False
        self.current = None
        return True

    async def delete(self, session_id: str) -> None:
        """Stop any reply into ``session_id`` and delete it."""
        self.engine.cancel(session_id)
        await self.manager.delete_session(session_id)

    def choose_model(self, provider_id: str, model: str | None) -> None:
        """Let ``model`` of ``provider_id`` answer the current session from now on."""
        if self.current is not None:
            self.tasks.start(
                self.manager.update_session(self.current.id, provider=provider_id, model=model)
            )

    # -- sending, stopping, retrying --------------------------------------------------------

    def can_send(self) -> bool:
        """False while a reply streams into the current session (or none is shown)."""
        return self.current is not None and not self.is_streaming(self.current.id)

    def send(
        self, content: Content, editing_message_id: str | None = None
    ) -> asyncio.Task[None] | None:
        """Send ``content`` (or resend an edited message) to the current session."""
        session = self.current
        if session is None or not self.can_send():
            return None
        if editing_message_id is not None:
            stream = self.engine.edit_and_resend(session.id, editing_message_id, content)
        else:
            stream = self.engine.send(session.id, content)
        return self._start_turn(session.id, stream, restore=content)

    def stop(self) -> None:
        """Stop the reply streaming into the current session; its text so far stays."""
        if self.current is not None:
            self.engine.cancel(self.current.id)

    def retry(self) -> asyncio.Task[None] | None:
        """Answer the current session's last user message again."""
        session = self.current
        if session is None or session.id in self._turns:
            return None
        return self._start_turn(session.id, self.engine.regenerate(session.id))

    def select_version(self, message_id: str, number: int) -> asyncio.Task[None] | None:
        """Show version ``number`` of the turn that starts with ``message_id``."""
        session = self.current
        if session is None or self.is_streaming(session.id):
            return None
        position = next((i for i, m in enumerate(session.history) if m.id == message_id), None)
        if position is None:
            return None
        # Quick clicks on the arrows: each switch waits for the one before (the engine
        # takes one at a time), at the turn's position found now (its ids change).
        earlier = self._version_switches.get(session.id)
        task = self.tasks.start(self._switch_after(earlier, session.id, position, number))
        self._version_switches[session.id] = task

        def forget(done: asyncio.Task[None], session_id: str = session.id) -> None:
            if self._version_switches.get(session_id) is done:
                del self._version_switches[session_id]

        task.add_done_callback(forget)
        return task

    async def _switch_after(
        self, earlier: asyncio.Task[None] | None, session_id: str, position: int, number: int
    ) -> None:
        if earlier is not None:
            # Waits without taking on its outcome: its failure was reported by the task
            # set, and cancelling this switch leaves that one alone.
            await asyncio.wait([earlier])
        await self.engine.select_version(session_id, position, number)

    def dismiss_error(self) -> None:
        """Hide the current session's error until its next turn."""
        if self.current is not None:
            self._errors.pop(self.current.id, None)
            self._dismissed.add(self.current.id)

    async def stop_all(self, timeout: float = 5) -> None:
        """Stop every streaming reply (their text is kept) and wait for the turns to end."""
        for session_id in list(self._turns):
            self.engine.cancel(session_id)
        pending = list(self._turns.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _stored(self, content: Content) -> bool:
        """Whether the current session's newest user message is ``content`` (it was kept)."""
        session = self.current
        if session is None:
            return False
        newest = next((m for m in reversed(session.history) if m.role == "user"), None)
        return newest is not None and newest.content == content

    def _start_turn(
        self, session_id: str, stream: AsyncIterator[str], restore: Content | None = None
    ) -> asyncio.Task[None]:
        self._errors.pop(session_id, None)
        self._dismissed.discard(session_id)
        task = self.tasks.start(self._run_turn(session_id, stream, restore))
        self._turns[session_id] = task
        self.screen.show_session_state()
        return task

    async def _run_turn(
        self, session_id: str, stream: AsyncIterator[str], restore: Content | None
    ) -> None:
        try:
            async for _delta in stream:
                pass
        except ProviderError as exc:
            self._errors[session_id] = str(exc)
        except (ValueError, SessionBusyError) as exc:
            if restore is not None and self.is_current(session_id):
                self.screen.restore_draft(restore)
            self._errors[session_id] = str(exc)
        except SessionNotFoundError:
            pass  # deleted while answering; nothing left to show
        except StorageError as exc:
            # A message the disk refused (e.g. full) was not stored: the typed text goes
            # back to the composer rather than being lost.
            if restore is not None and self.is_current(session_id) and not self._stored(restore):
                self.screen.restore_draft(restore)
            self._errors[session_id] = str(exc)
        finally:
            self._turns.pop(session_id, None)
            if self.is_current(session_id):
                self.screen.show_session_state()
