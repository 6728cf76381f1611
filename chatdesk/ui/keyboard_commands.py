"""Commands the keyboard reaches anywhere in the window: move the focus, act on the chat.

The menu bar's actions (:mod:`chatdesk.ui.window_actions`) call these through the
window, and typing into the chat list goes to the message box. Each works on the
sidebar, the chat pane and the chat controller it is handed, and does nothing when
there is nothing to act on (no chat open, no reply yet, a reply still streaming).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from chatdesk.domain import content_text
from chatdesk.ui.chat_controller import ChatController
from chatdesk.ui.chat_pane import ChatPane
from chatdesk.ui.session_list import SessionSidebar

# How long "Copied the last reply." stays under the message box.
_COPIED_NOTICE_MS = 1500


class KeyboardCommands:
    """Focus moves and quick actions on the open chat, for the window's shortcuts."""

    def __init__(
        self, window: QWidget, sidebar: SessionSidebar, pane: ChatPane, chat: ChatController
    ) -> None:
        """Commands over ``window``'s ``sidebar`` and ``pane`` and its ``chat``."""
        self._window = window
        self._sidebar = sidebar
        self._pane = pane
        self._chat = chat

    def rename_current(self) -> None:
        """Start renaming the open chat in the sidebar (F2 anywhere in the window)."""
        index = self._sidebar.current_proxy_index()
        if index.isValid():
            self._sidebar.list.setFocus()
            self._sidebar.list.edit(index)

    def run_in_chat(self, button_name: str) -> bool:
        """While the chat has the focus, click ``button_name`` of its current message, as
        the message's own key would (nothing when that message does not offer it).

        True when the chat had the focus, so the command was the current message's (even
        if it did nothing); False leaves the command to the chat's last message.
        """
        if not self._pane.view.hasFocus():
            return False
        self._pane.view.keyboard.run_on_current(button_name)
        return True

    def edit_last_message(self) -> None:
        """Load the open chat's last message of the user into the composer to edit it
        (with the focus in the chat: the current message, if it is the user's)."""
        if self.run_in_chat("edit"):
            return
        session = self._chat.current
        if session is None or not self._chat.can_send():
            return
        last = next((m for m in reversed(session.history) if m.role == "user"), None)
        if last is not None:
            self._pane.composer.begin_edit(last.id, last.content)

    def copy_last_reply(self) -> None:
        """Copy the open chat's last reply (and say so under the message box)."""
        session = self._chat.current
        reply = (
            next(
                (m for m in reversed(session.history) if m.role == "assistant"),
                None,
            )
            if session
            else None
        )
        if reply is not None:
            QGuiApplication.clipboard().setText(content_text(reply.content))
            self._pane.composer.show_notice("Copied the last reply.")
            QTimer.singleShot(
                _COPIED_NOTICE_MS, lambda: self._clear_notice("Copied the last reply.")
            )

    def _clear_notice(self, text: str) -> None:
        if shiboken6.isValid(self._window) and self._pane.composer.notice.text() == text:
            self._pane.composer.show_notice("")

    def focus_chat_list(self) -> None:
        """Move the keyboard focus to the chat filter and list."""
        self._sidebar.filter.setFocus()

    def focus_composer(self) -> None:
        """Move the keyboard focus to the message box."""
        self._pane.composer.edit.setFocus()

    def focus_messages(self) -> None:
        """Move the keyboard focus to the messages (Up/Down choose one, Enter its menu)."""
        self._pane.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def type_into_composer(self, text: str) -> None:
        """Write ``text`` into the message box (typed while the chat list has the focus)."""
        self._pane.composer.edit.setFocus()
        self._pane.composer.edit.insertPlainText(text)
