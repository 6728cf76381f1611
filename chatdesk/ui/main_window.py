"""The main window: sessions on the left, the current chat on the right.

The window builds the widgets and connects them: what a chat does per session lives in
:class:`ChatController`, what the manager stores reaches the widgets through
:class:`SessionEventBridge` (filtered by session id, so a reply streaming into one chat
never shows up in another), and every background task goes into one :class:`TaskSet`
that :meth:`MainWindow.shutdown` drains before the database closes.

Four parts live in their own modules: what the pane shows of the open chat and sends to
it (:class:`OpenChatScreen`), each chat's draft (:class:`DraftKeeper`), the theme and
text size (:class:`LookController`), the keyboard's focus moves and quick actions
(:class:`KeyboardCommands`). The window's methods of the same names, which the menu bar
and the tests call, hand over to them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QWidget,
)

from chatdesk.api.service import LocalApiService
from chatdesk.chat import ChatEngine
from chatdesk.domain import Session, SessionSummary, utcnow
from chatdesk.model_settings import KeyStore
from chatdesk.presets import ChatPreset
from chatdesk.providers.base import ProviderError
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.scheduler import TaskScheduler
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.settings import Preferences
from chatdesk.storage.errors import StorageError
from chatdesk.ui.async_tasks import TaskSet
from chatdesk.ui.bridge import SessionEventBridge
from chatdesk.ui.chat_controller import ChatController
from chatdesk.ui.chat_pane import ChatPane
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.composer import Composer
from chatdesk.ui.context_controller import ContextController
from chatdesk.ui.draft_keeper import DraftKeeper
from chatdesk.ui.image_check import ImageInputCheck
from chatdesk.ui.keyboard_commands import KeyboardCommands
from chatdesk.ui.look_controller import LookController
from chatdesk.ui.open_chat import OpenChatScreen
from chatdesk.ui.run_notifier import RunNotifier
from chatdesk.ui.session_list import SessionSidebar
from chatdesk.ui.task_controller import ScheduledTasksController
from chatdesk.ui.task_list import DeleteQuestion, ScheduledSection, ask_how_to_delete
from chatdesk.ui.theme import FlatButtonFocus
from chatdesk.ui.window_actions import ShortcutsSheet, build_menus
from chatdesk.ui.window_state import remember_layout, restore_layout

log = logging.getLogger(__name__)

ConfirmCallback = Callable[[QWidget, str, str], bool]

_CLOCK_INTERVAL_MS = 60_000

# How long shut-down waits for background writes before cancelling them.
SHUTDOWN_TIMEOUT = 10.0


def ask_to_confirm(parent: QWidget, title: str, text: str) -> bool:
    """Ask a yes/no question in a message box; True when the user said yes."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes


class MainWindow(QMainWindow):
    """ChatDesk's window over one SessionManager, ChatEngine and ProviderRegistry."""

    def __init__(
        self,
        manager: SessionManager,
        engine: ChatEngine,
        registry: ProviderRegistry,
        preferences: Preferences,
        save_preferences: Callable[[], None] | None = None,
        *,
        secrets: KeyStore | None = None,
        confirm: ConfirmCallback = ask_to_confirm,
        scheduler: TaskScheduler | None = None,
        ask_delete_task: DeleteQuestion = ask_how_to_delete,
        api: LocalApiService | None = None,
    ) -> None:
        """Wire the window to the core objects it is handed (it creates none of them).

        With a ``scheduler``, the sidebar lists its tasks in a Scheduled section (and
        their chats there, not among the other chats).
        """
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("ChatDesk")
        self.manager = manager
        self.engine = engine
        self.registry = registry
        self.preferences = preferences
        self.save_preferences = save_preferences or (lambda: None)
        self.secrets = secrets
        self.confirm = confirm
        # The local HTTP API over this window's manager (Settings → Local API turns it on).
        self.api = api
        self.tasks = TaskSet(self._report)
        # What the pane shows of the open chat (the controller tells it what changed).
        self.open_chat = OpenChatScreen(self)
        self.chat = ChatController(manager, engine, registry, self.tasks, self.open_chat)

        self.bridge = SessionEventBridge(manager, self)
        self.sidebar = SessionSidebar(self)
        self.sidebar.setMinimumWidth(180)
        self.pane = ChatPane(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pane)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)
        self.drafts = DraftKeeper(self.pane.composer, manager, self.tasks)
        self.context = ContextController(
            manager,
            engine,
            self.tasks,
            self.pane.context_meter,
            self.pane.view,
            self.pane.messages,
            report=self._notify,
            confirm=lambda parent, title, text: self.confirm(parent, title, text),
            parent=self,
        )
        self.image_check = ImageInputCheck(
            registry,
            self.tasks,
            confirm=lambda title, text: self.confirm(self, title, text),
            composer=self.pane.composer,
        )
        self.scheduler = scheduler
        self.scheduled: ScheduledSection | None = None
        self.task_controller: ScheduledTasksController | None = None
        if scheduler is not None:
            self._add_scheduled_section(scheduler, ask_delete_task)
        self._wire()
        restore_layout(self, self.splitter, self.preferences.window)
        from chatdesk.ui.find_keep import FindKeepController

        self.findkeep = FindKeepController(self)

    # -- public handles (tests and the self-test drive the window through these) ----------

    @property
    def composer(self) -> Composer:
        """The message composer."""
        return self.pane.composer

    @property
    def chat_view(self) -> ChatView:
        """The chat view."""
        return self.pane.view

    @property
    def current_session_id(self) -> str | None:
        """The id of the session shown."""
        return self.chat.current_id

    def error_text(self, session_id: str) -> str | None:
        """The error the last turn of ``session_id`` ended with, if it failed."""
        return self.chat.error_text(session_id)

    def turn_task(self, session_id: str) -> asyncio.Task[None] | None:
        """The task streaming a reply into ``session_id``, if one runs."""
        return self.chat.turn_task(session_id)

    # -- start-up and shut-down ------------------------------------------------------------

    def preview(self, sessions: list[SessionSummary] | None) -> None:
        """List ``sessions`` (read at start-up before the database opens) until load()."""
        if sessions:
            self.sidebar.model.set_sessions(sessions)

    async def load(self) -> None:
        """List the sessions and open the last one used (or a new chat on a first run)."""
        sessions = await self.manager.list_sessions(archived=False)
        self.sidebar.model.set_sessions(s for s in sessions if self._listed_as_chat(s))
        # Chats that have been in the Trash for 30 days go for good, in the background.
        self.tasks.start(self.manager.purge_trash())
        self.refresh_model_choices()
        self.tasks.start(self._name_default_model())
        wanted = self.preferences.window.get("last_session")
        known = {s.id for s in sessions}
        if wanted not in known:
            wanted = next((s.id for s in sessions if s.kind == "chat"), None)
        if wanted is None:
            wanted = (await self.chat.create_session()).id
        await self.open_session(wanted)

    async def _name_default_model(self) -> None:
        # A server given for this run (--base-url) without a model: its first model's
        # name replaces "the server's first model" in the selector once it is known.
        if await self.registry.name_default_model():
            self.refresh_model_choices()

    async def shutdown(self) -> None:
        """Stop streaming replies (their text is kept), finish every background write,
        and stop listening to the manager; the database may be closed afterwards."""
        if self.chat.current is not None and shiboken6.isValid(self):
            self.drafts.put_aside(self.chat.current)
        self.context.stop()
        if self.scheduled is not None:
            self.scheduled.detach()
            self.notifier.hide()
        await self.chat.stop_all()
        await self.tasks.drain(SHUTDOWN_TIMEOUT)
        self.bridge.detach()

    def save_window_state(self) -> None:
        """Remember size, splitter position and the open session in the preferences."""
        state = self.preferences.window
        remember_layout(self, self.splitter, state)
        if self.chat.current_id is not None:
            state["last_session"] = self.chat.current_id
        try:
            self.save_preferences()
        except OSError as exc:
            log.warning("could not save the window state: %s", exc)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """An export file dragged over the window can be dropped to import it."""
        self.findkeep.drag_enter(event)

    def dropEvent(self, event: QDropEvent) -> None:
        """Import the export file dropped on the window."""
        self.findkeep.drop(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the window state on the way out."""
        self.save_window_state()
        super().closeEvent(event)

    # -- wiring ---------------------------------------------------------------------------

    def _wire(self) -> None:
        bridge, sidebar, pane = self.bridge, self.sidebar, self.pane
        bridge.sessionCreated.connect(self._show_row_of)
        bridge.sessionUpdated.connect(self._on_session_updated)
        bridge.sessionDeleted.connect(self._on_session_deleted)
        bridge.messageAdded.connect(self._on_message_added)
        bridge.messageUpdated.connect(pane.messages.on_message_updated)
        bridge.historyReplaced.connect(self._on_history_replaced)
        # The context meter follows every change of the chat shown (debounced).
        bridge.messageAdded.connect(lambda session_id, _id: self.context.changed(session_id))
        bridge.messageUpdated.connect(lambda session_id, _id: self.context.changed(session_id))
        bridge.historyReplaced.connect(self.context.changed)
        bridge.sessionUpdated.connect(self.context.changed)

        sidebar.sessionActivated.connect(self.chat.request_open)
        sidebar.newSessionRequested.connect(self.new_session)
        sidebar.deleteRequested.connect(self.delete_session)
        sidebar.model.renameRequested.connect(self._rename)

        pane.composer.submitted.connect(self.send_current)
        pane.composer.attachmentsChanged.connect(
            lambda _attached: self.image_check.attachments_changed(self.chat.current)
        )
        pane.model_selector.modelChosen.connect(self.image_check.model_chosen)
        pane.composer.stopRequested.connect(self.stop_current)
        pane.banner.retryRequested.connect(self.retry_current)
        pane.banner.dismissed.connect(self.open_chat.dismiss_error)
        pane.view.editRequested.connect(self.open_chat.edit_message)
        pane.view.regenerateRequested.connect(lambda _id: self.retry_current())
        pane.view.versionRequested.connect(self.chat.select_version)
        pane.model_selector.modelChosen.connect(self.chat.choose_model)
        pane.settings_button.clicked.connect(self.open_settings)
        pane.chat_settings_button.clicked.connect(self.open_chat_settings)

        # New chat, settings, the filter and everything else: see the menu bar's actions.
        self.keys = KeyboardCommands(self, sidebar, pane, self.chat)
        self.menu_actions = build_menus(self, self)
        # Flat buttons a keyboard reaches show where the focus is (they showed nothing).
        self._focus_frames = FlatButtonFocus(self)
        # Typing while the chat list has the focus writes the message, as one expects.
        sidebar.list.textTyped.connect(self.keys.type_into_composer)
        pane.composer.edit.editLastRequested.connect(self.edit_last_message)
        pane.composer.edit.pageRequested.connect(pane.view.scroll_page)
        pane.view.leaveRequested.connect(self.focus_composer)
        self.look = LookController(self.preferences, pane.composer, self.menu_actions.themes, self)
        self.look.apply()
        self._clock = QTimer(self)
        self._clock.setInterval(_CLOCK_INTERVAL_MS)
        self._clock.timeout.connect(sidebar.list.viewport().update)
        self._clock.start()

    def _report(self, error: BaseException) -> None:
        """Show an unexpected failure of a background task in words, never a traceback."""
        log.error("ChatDesk background task failed", exc_info=error)
        if isinstance(error, StorageError | ProviderError | ValueError):
            text = str(error)
        else:
            text = f"Something went wrong: {error}"
        self._notify(text)

    # -- sessions -------------------------------------------------------------------------

    async def open_session(self, session_id: str) -> None:
        """Show ``session_id``: its latest messages, its model, its error if it has one."""
        await self.chat.open_session(session_id)

    def new_session(self) -> None:
        """Start a new chat (or stay in the current one if it is still empty)."""
        if self.chat.reuse_empty_current() and self.chat.current is not None:
            self.sidebar.filter.clear()
            self.sidebar.show_open_session(self.chat.current.id)
            self.pane.composer.edit.setFocus()
            return
        self.tasks.start(self._create_and_open())

    async def _create_and_open(self) -> Session:
        self.sidebar.filter.clear()
        session = await self.chat.create_session()
        self.sidebar.model.upsert(session)
        await self.open_session(session.id)
        return session

    def delete_session(self, session_id: str) -> None:
        """Move a session to the Trash (Undo is offered for a few seconds)."""
        self.findkeep.move_to_trash(session_id)

    def _rename(self, session_id: str, title: str) -> None:
        self.tasks.start(self._persist_title(session_id, title))

    async def _persist_title(self, session_id: str, title: str) -> None:
        try:
            await self.manager.update_session(session_id, title=title)
        except (ValueError, SessionNotFoundError, StorageError) as exc:
            self._notify(f"The chat could not be renamed: {exc}")
            session = await self.manager.get_session(session_id)
            if session is not None and shiboken6.isValid(self):
                self.sidebar.model.upsert(session)

    def _show_row_of(self, session_id: str) -> None:
        self.tasks.start(self._add_row(session_id))

    async def _add_row(self, session_id: str) -> None:
        session = await self.manager.get_session(session_id)
        if session is not None and shiboken6.isValid(self) and self._listed_as_chat(session):
            self.findkeep.sync_row(session)

    def _on_session_updated(self, session_id: str) -> None:
        self._show_row_of(session_id)
        if self.chat.is_current(session_id):
            self.open_chat.show_title()
            self.open_chat.show_model()

    def _on_session_deleted(self, session_id: str) -> None:
        was_open = self.chat.is_current(session_id)
        next_id = self.sidebar.neighbour_of(session_id) if was_open else None
        self.sidebar.model.remove(session_id)
        self.chat.forget(session_id)
        if was_open:
            self.sidebar.show_open_session(None)
            self.pane.messages.set_session(None)
            if next_id and next_id != session_id:
                self.tasks.start(self.open_session(next_id))
            else:
                self.tasks.start(self._create_and_open())

    def _on_message_added(self, session_id: str, _message_id: str) -> None:
        self.sidebar.model.touch(session_id, utcnow())
        self.pane.messages.on_message_added(session_id)
        if self.chat.is_current(session_id):
            self.open_chat.show_streaming_state()

    def _on_history_replaced(self, session_id: str) -> None:
        # A replaced history may reuse message ids with new content: drop cached layouts.
        self.pane.view.renderer.clear()
        self.pane.messages.on_history_replaced(session_id)

    # -- sending, stopping, retrying (see OpenChatScreen) ------------------------------------

    def send_current(self) -> asyncio.Task[None] | None:
        """Send what the composer holds to the current session; returns the turn's task."""
        return self.open_chat.send()

    def send_text(self, text: str) -> asyncio.Task[None] | None:
        """Type ``text`` into the composer and send it (the self-test uses the real path)."""
        self.pane.composer.edit.setPlainText(text)
        return self.send_current()

    def stop_current(self) -> None:
        """Stop the reply streaming into the current session; its text so far stays."""
        self.chat.stop()

    def retry_current(self) -> asyncio.Task[None] | None:
        """Answer the current session's last user message again."""
        return self.open_chat.retry()

    # -- models and settings ----------------------------------------------------------------

    def refresh_model_choices(self) -> None:
        """Fill the model selector from the registry (after servers changed, too)."""
        self.open_chat.refresh_model_choices()

    def _settings_changed(self) -> None:
        if shiboken6.isValid(self):
            self.refresh_model_choices()

    def _notify(self, text: str) -> None:
        """Tell the user ``text`` (a failure outside the chat, e.g. in a closed dialog)."""
        if shiboken6.isValid(self):
            self.pane.composer.show_notice(text)

    def open_settings(self) -> QDialog:
        """Open the settings dialog (servers, default model, this chat's system prompt)."""
        from chatdesk.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(
            self.manager,
            self.registry,
            self.save_preferences,
            secrets=self.secrets,
            session=self.chat.current,
            # Called also when a server test finishes after the dialog was closed.
            on_change=self._settings_changed,
            notify=self._notify,
            tasks=self.tasks,
            confirm=lambda text: self.confirm(self, "Remove server", text),
            api=self.api,
            parent=self,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- keyboard and menu commands (see KeyboardCommands) ------------------------------

    def rename_current(self) -> None:
        """Start renaming the open chat in the sidebar (F2 anywhere in the window)."""
        self.keys.rename_current()

    def delete_current(self) -> None:
        """Delete the open chat, after the user confirms."""
        if self.chat.current is not None:
            self.delete_session(self.chat.current.id)

    def regenerate_reply(self) -> None:
        """Regenerate the last reply (Ctrl+R); with the focus in the chat, only where the
        current message's own Regenerate applies (the same button, so the same rules)."""
        if not self.keys.run_in_chat("regenerate"):
            self.retry_current()

    def edit_last_message(self) -> None:
        """Edit the user's last message (Ctrl+E); with the focus in the chat, the current
        message if it is the user's."""
        self.keys.edit_last_message()

    def copy_last_reply(self) -> None:
        """Copy the open chat's last reply (and say so under the message box)."""
        self.keys.copy_last_reply()

    def focus_chat_list(self) -> None:
        """Move the keyboard focus to the chat filter and list."""
        self.keys.focus_chat_list()

    def focus_composer(self) -> None:
        """Move the keyboard focus to the message box."""
        self.keys.focus_composer()

    def focus_messages(self) -> None:
        """Move the keyboard focus to the messages (Up/Down choose one, Enter its menu)."""
        self.keys.focus_messages()

    def show_shortcuts(self) -> QDialog:
        """Open the sheet of every keyboard shortcut (F1, Ctrl+/)."""
        sheet = ShortcutsSheet(self.menu_actions, self)
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.open()
        return sheet

    def presets(self) -> list[ChatPreset]:
        """The saved chat presets (prompt and settings), for File ▸ New Chat from Preset."""
        return self.preferences.chat_presets()

    def new_chat_from_preset(self, preset: ChatPreset) -> asyncio.Task[Session]:
        """Start a new chat with ``preset``'s system prompt, temperature and longest reply."""
        return self.tasks.start(self._create_from_preset(preset))

    async def _create_from_preset(self, preset: ChatPreset) -> Session:
        current = self.chat.current
        if current is not None and current.kind == "chat" and not current.history:
            session = current  # an empty chat is the new one, as with New Chat
        else:
            session = await self._create_and_open()
        await self.manager.update_session(session.id, **preset.chat_settings())
        return session

    def open_chat_settings(self) -> QDialog | None:
        """Open the open chat's own settings (system prompt, temperature, longest reply)."""
        from chatdesk.ui.chat_settings_dialog import ChatSettingsDialog

        session = self.chat.current
        if session is None:
            return None
        dialog = ChatSettingsDialog(
            self.manager, session, self.preferences, self.save_preferences, self.tasks, self
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- look ---------------------------------------------------------------------------

    def set_theme(self, theme: str) -> None:
        """Use the Light, Dark or System look from now on (and remember it)."""
        self.look.set_theme(theme)

    def change_text_size(self, steps: int) -> None:
        """Make text ``steps`` steps larger (smaller when negative; 0: the normal size)."""
        self.look.change_text_size(steps)

    # -- scheduled tasks -----------------------------------------------------------------

    def scheduler_started(self) -> None:
        """Show the scheduler's tasks (it loads them when it starts, after the window)."""
        if self.scheduled is not None:
            self.scheduled.reload()
        if self.task_controller is not None and self.chat.current is not None:
            self.task_controller.session_shown(self.chat.current)  # a task chat reopened

    def _add_scheduled_section(self, scheduler: TaskScheduler, ask_delete: DeleteQuestion) -> None:
        self.scheduled = ScheduledSection(
            scheduler, self.registry, start=self.tasks.start, ask_delete=ask_delete
        )
        self.sidebar.add_section(self.scheduled)
        icon = self.windowIcon()
        self.notifier = RunNotifier(self, icon if not icon.isNull() else QApplication.windowIcon())
        self.task_controller = ScheduledTasksController(
            self,
            scheduler,
            self.scheduled,
            self.notifier,
            open_session=self.open_session,
            current_session=lambda: self.chat.current,
            refresh_current=self.open_chat.show_session_state,
            start=self.tasks.start,
        )

    def _listed_as_chat(self, session: Session | SessionSummary) -> bool:
        """Whether the chat list shows ``session`` (task chats are in the Scheduled section)."""
        return self.scheduled is None or session.kind != "task"
