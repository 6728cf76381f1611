"""The open chat in the window: what the chat pane shows of it, and what it sends to it.

:class:`ChatController` decides (which chat is open, which replies stream, which turns
failed) and tells this screen when something it shows changed; this puts it on the
pane: the messages and the chat's own draft, its title, model, streaming state and
error. The other way, the composer's Send, the banner's Retry and a message's Edit come
here and go to the controller.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import shiboken6

from chatdesk.domain import Content, Session

if TYPE_CHECKING:
    from chatdesk.ui.main_window import MainWindow


class OpenChatScreen:
    """The window's :class:`chatdesk.ui.chat_controller.ChatScreen`: the open chat's pane."""

    def __init__(self, window: MainWindow) -> None:
        """The screen of ``window``'s pane (read from the window, which builds it later)."""
        self._window = window

    # -- what the controller tells the screen ----------------------------------------------

    def show_session(self, session: Session, previous: Session | None) -> None:
        """Show ``session``, just opened, with its latest messages and its own draft."""
        window = self._window
        if previous is not None and previous.id != session.id:
            window.drafts.put_aside(previous)
            window.drafts.show(session)
        elif previous is None:
            window.drafts.show(session)
        window.pane.messages.set_session(session)
        window.sidebar.show_open_session(session.id)
        window.context.refresh()
        if window.task_controller is not None:
            window.task_controller.session_shown(session)
        self.show_session_state()
        if window.focusWidget() is not window.sidebar.list:
            # Opened from the list, the focus stays there so F2 and Delete act on it.
            window.pane.composer.edit.setFocus()

    def restore_draft(self, content: Content) -> None:
        """Put a message that could not be sent back into the composer."""
        self._window.pane.composer.set_content(content)

    def show_session_state(self) -> None:
        """Show the current session's title, model, streaming state and error."""
        if not shiboken6.isValid(self._window):
            return  # a turn ended after the window was deleted
        self.show_title()
        self.show_model()
        self.show_streaming_state()
        self._window.pane.show_error(self._window.chat.shown_error())

    def show_title(self) -> None:
        """Show the open chat's title above it and in the window's title."""
        session = self._window.chat.current
        title = session.title if session else ""
        self._window.pane.title.setText(title)
        self._window.setWindowTitle(f"{title} — ChatDesk" if title else "ChatDesk")

    def show_streaming_state(self) -> None:
        """Show whether a reply streams into the open chat (Stop, the waiting mark)."""
        chat = self._window.chat
        current = chat.current_id
        streaming = current is not None and chat.is_streaming(current)
        self._window.pane.show_streaming(streaming, waiting=chat.is_waiting_for_reply())
        # Esc stops a reply only while one streams; otherwise it stays with the widgets
        # (leaving an edit, clearing the filter).
        self._window.menu_actions.by_name["stopAction"].setEnabled(streaming)

    def refresh_model_choices(self) -> None:
        """Fill the model selector from the registry (after servers changed, too)."""
        registry = self._window.registry
        self._window.pane.model_selector.set_choices(registry.choices(), registry.default_choice())
        self.show_model()

    def show_model(self) -> None:
        """Select the open chat's model (and say so when its server was removed)."""
        session = self._window.chat.current
        registry, pane = self._window.registry, self._window.pane
        if session is not None and registry.is_removed(session.provider):
            pane.composer.show_notice(
                f"The server this chat used ({session.provider}) was removed; the default "
                "model answers it now. Choose another model above if you like."
            )
        if session is not None:
            wanted = (session.provider, session.model) if session.provider else None
            pane.model_selector.select(wanted, registry.default_choice())

    # -- what the pane asks of the controller -----------------------------------------------

    def send(self) -> asyncio.Task[None] | None:
        """Send what the composer holds to the current session; returns the turn's task."""
        window = self._window
        composer, chat = window.pane.composer, window.chat
        content = composer.content()
        if content is None or chat.current is None:
            return None
        if not chat.can_send():
            composer.show_notice("Wait for the reply to finish, or press Stop.")
            return None
        if not window.image_check.may_send(chat.current):
            return None
        editing = composer.editing_message_id is not None
        task = chat.send(content, composer.editing_message_id)
        composer.finish_edit()
        composer.clear()
        if editing:
            # What was being typed before Edit comes back once the edit is sent.
            draft = composer.take_draft_before_edit()
            if draft is not None:
                composer.set_content(draft)
        window.drafts.store(chat.current, composer.content())
        window.pane.view.scroll_to_newest()
        return task

    def retry(self) -> asyncio.Task[None] | None:
        """Answer the current session's last user message again."""
        task = self._window.chat.retry()
        if task is not None:
            self._window.pane.view.scroll_to_newest()
        return task

    def edit_message(self, message_id: str) -> None:
        """Load the user's message ``message_id`` into the composer to edit and resend it."""
        message = self._window.chat.user_message(message_id)
        if message is not None:
            self._window.pane.composer.begin_edit(message.id, message.content)

    def dismiss_error(self) -> None:
        """Hide the open chat's error (it stays dismissed for that failure)."""
        self._window.chat.dismiss_error()
        self._window.pane.banner.hide()
