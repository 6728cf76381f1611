"""The main window: sessions on the left, the current chat on the right.

The window holds no chat state of its own: it shows what the SessionManager stores,
starts turns on the ChatEngine as qasync tasks, and reacts to the manager's events
(through :class:`SessionEventBridge`), filtered by session id so a reply streaming
into one chat never shows up in another.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable

import shiboken6
from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QShortcut,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.chat import ChatEngine, SessionBusyError
from chatdesk.domain import Content, Session, utcnow
from chatdesk.providers.base import ProviderError
from chatdesk.providers.registry import ModelChoice, ProviderRegistry
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.settings import LOCAL_PROVIDER, Preferences
from chatdesk.storage.database import StorageError
from chatdesk.ui.async_tasks import start_task
from chatdesk.ui.bridge import SessionEventBridge
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.composer import Composer
from chatdesk.ui.message_model import MessageListModel
from chatdesk.ui.rendering import mix_colours
from chatdesk.ui.session_list import SessionSidebar

log = logging.getLogger(__name__)

ConfirmCallback = Callable[[QWidget, str, str], bool]

_DEFAULT_SIZE = QSize(1100, 720)
_SIDEBAR_WIDTH = 270
_CLOCK_INTERVAL_MS = 60_000
_WARNING_HUE = QColor(214, 69, 65)


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


class ErrorBanner(QFrame):
    """A quiet strip above the composer saying what went wrong, with Retry."""

    retryRequested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """A hidden banner; :meth:`show_error` shows it."""
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAccessibleName("errorBanner")
        icon = QLabel(self)
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(18, 18)
        )
        self.text = QLabel(self)
        self.text.setObjectName("errorText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setObjectName("retryButton")
        self.retry_button.setAccessibleName("retryButton")
        self.retry_button.clicked.connect(self.retryRequested)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismissed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.setSpacing(8)
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A softly tinted rounded box: a warm hue over the palette's base, light or dark."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = self.palette().color(QPalette.ColorRole.Base)
        painter.setPen(mix_colours(base, _WARNING_HUE, 0.45))
        painter.setBrush(mix_colours(base, _WARNING_HUE, 0.12))
        painter.drawRoundedRect(self.rect().adjusted(0, 0, -1, -1), 8, 8)

    def show_error(self, message: str) -> None:
        """Show ``message`` (what happened, in words)."""
        self.text.setText(message)
        self.show()


class ChatPane(QWidget):
    """The right-hand side: title and model bar, the messages, error banner, composer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build the pane's widgets; the window wires them up."""
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setObjectName("chatTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_selector = QComboBox(self)
        self.model_selector.setObjectName("modelSelector")
        self.model_selector.setAccessibleName("modelSelector")
        self.model_selector.setToolTip("The model that answers in this chat")
        self.model_selector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.settings_button = QToolButton(self)
        self.settings_button.setObjectName("settingsButton")
        self.settings_button.setAccessibleName("settingsButton")
        self.settings_button.setText("Settings")
        self.settings_button.setToolTip("Servers, default model and this chat's system prompt")
        self.settings_button.setAutoRaise(True)
        header = QHBoxLayout()
        header.setContentsMargins(16, 10, 12, 6)
        header.setSpacing(8)
        header.addWidget(self.title, 1)
        header.addWidget(self.model_selector)
        header.addWidget(self.settings_button)

        self.messages = MessageListModel(self)
        self.view = ChatView(self.messages, self)
        self.thinking = QLabel("Thinking…", self)
        self.thinking.setObjectName("thinkingLabel")
        self.thinking.setEnabled(False)
        self.thinking.setContentsMargins(24, 0, 0, 4)
        self.thinking.hide()
        self.banner = ErrorBanner(self)
        self.composer = Composer(self)

        bottom = QVBoxLayout()
        bottom.setContentsMargins(16, 4, 16, 14)
        bottom.setSpacing(8)
        bottom.addWidget(self.banner)
        bottom.addWidget(self.composer)
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(line)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.thinking)
        layout.addLayout(bottom)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)


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
        secrets: object | None = None,
        confirm: ConfirmCallback = ask_to_confirm,
    ) -> None:
        """Wire the window to the core objects it is handed (it creates none of them)."""
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
        self._current: Session | None = None
        self._opening = 0
        self._turns: dict[str, asyncio.Task[None]] = {}
        self._errors: dict[str, str] = {}
        # Sessions whose stored error the user dismissed (until their next turn).
        self._dismissed: set[str] = set()
        self._choices: list[ModelChoice] = []

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
        self._wire()
        self._restore_geometry()
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
        return self._current.id if self._current else None

    def error_text(self, session_id: str) -> str | None:
        """The error the last turn of ``session_id`` ended with, if it failed."""
        return self._errors.get(session_id)

    def turn_task(self, session_id: str) -> asyncio.Task[None] | None:
        """The task streaming a reply into ``session_id``, if one runs."""
        return self._turns.get(session_id)

    # -- start-up and shut-down ------------------------------------------------------------

    async def load(self) -> None:
        """List the sessions and open the last one used (or a new chat on a first run)."""
        sessions = await self.manager.list_sessions(archived=False)
        self.sidebar.model.set_sessions(sessions)
        self.refresh_model_choices()
        wanted = self.preferences.window.get("last_session")
        known = {s.id for s in sessions}
        if wanted not in known:
            wanted = next((s.id for s in sessions if s.kind == "chat"), None)
        if wanted is None:
            session = await self._create_session()
            wanted = session.id
        await self.open_session(wanted)

    async def shutdown(self) -> None:
        """Stop streaming replies (their text is kept) and stop listening to the manager."""
        for session_id in list(self._turns):
            self.engine.cancel(session_id)
        pending = list(self._turns.values())
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.bridge.detach()

    def save_window_state(self) -> None:
        """Remember size, splitter position and the open session in the preferences."""
        state = self.preferences.window
        state["geometry"] = base64.b64encode(bytes(self.saveGeometry().data())).decode("ascii")
        state["splitter"] = self.splitter.sizes()
        if self._current is not None:
            state["last_session"] = self._current.id
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

    def _restore_geometry(self) -> None:
        state = self.preferences.window
        restored = False
        geometry = state.get("geometry")
        if isinstance(geometry, str):
            try:
                restored = self.restoreGeometry(QByteArray(base64.b64decode(geometry)))
            except ValueError:
                restored = False
        if not restored:
            self.resize(_DEFAULT_SIZE)
        sizes = state.get("splitter")
        if isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) for s in sizes):
            self.splitter.setSizes(sizes)
        else:
            self.splitter.setSizes([_SIDEBAR_WIDTH, self.width() - _SIDEBAR_WIDTH])

    # -- wiring ---------------------------------------------------------------------------

    def _wire(self) -> None:
        bridge, sidebar, pane = self.bridge, self.sidebar, self.pane
        bridge.sessionCreated.connect(self._on_session_created)
        bridge.sessionUpdated.connect(self._on_session_updated)
        bridge.sessionDeleted.connect(self._on_session_deleted)
        bridge.messageAdded.connect(self._on_message_added)
        bridge.messageUpdated.connect(pane.messages.on_message_updated)
        bridge.historyReplaced.connect(self._on_history_replaced)

        sidebar.sessionActivated.connect(self._on_session_activated)
        sidebar.newSessionRequested.connect(self.new_session)
        sidebar.deleteRequested.connect(self.delete_session)
        sidebar.model.renameRequested.connect(self._rename)

        pane.composer.submitted.connect(self.send_current)
        pane.composer.stopRequested.connect(self.stop_current)
        pane.banner.retryRequested.connect(self.retry_current)
        pane.banner.dismissed.connect(self._dismiss_error)
        pane.view.editRequested.connect(self._edit_message)
        pane.view.regenerateRequested.connect(lambda _id: self.retry_current())
        pane.model_selector.activated.connect(self._on_model_chosen)
        pane.settings_button.clicked.connect(self.open_settings)

        QShortcut(QKeySequence.StandardKey.New, self, activated=self.new_session)
        QShortcut(QKeySequence("Ctrl+L"), self, activated=sidebar.filter.setFocus)
        QShortcut(QKeySequence("Ctrl+,"), self, activated=self.open_settings)
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
        self.pane.composer.show_notice(text)

    # -- sessions -------------------------------------------------------------------------

    def _on_session_activated(self, session_id: str) -> None:
        if self._current is None or self._current.id != session_id:
            start_task(self.open_session(session_id), self._report)

    async def open_session(self, session_id: str) -> None:
        """Show ``session_id``: its latest messages, its model, its error if it has one."""
        self._opening += 1
        ticket = self._opening
        session = await self.manager.get_session(session_id)
        if ticket != self._opening:
            return  # the user has already moved on to another session
        if session is None:
            return
        previous = self._current
        if previous is not None and previous.id != session.id:
            self.pane.composer.finish_edit()
        self._current = session
        self.pane.messages.set_session(session)
        self.sidebar.show_open_session(session.id)
        self._show_session_state()
        self.pane.composer.edit.setFocus()

    def new_session(self) -> None:
        """Start a new chat (or stay in the current one if it is still empty)."""
        current = self._current
        if current is not None and current.kind == "chat" and not current.history:
            self.sidebar.filter.clear()
            self.sidebar.show_open_session(current.id)
            self.pane.composer.edit.setFocus()
            # A new chat takes the default model, also when the empty one is reused.
            provider, model = self.registry.default_choice()
            if (current.provider, current.model) != (provider, model):
                start_task(
                    self.manager.update_session(current.id, provider=provider, model=model),
                    self._report,
                )
            return
        start_task(self._create_and_open(), self._report)

    async def _create_session(self) -> Session:
        """A new chat on the user's default model.

        The model is stamped on the session when it is created, so changing the default
        later changes new chats only, never the model of an existing one.
        """
        provider, model = self.registry.default_choice()
        if model is None and provider != LOCAL_PROVIDER:
            # "The server's first model", as the registry resolves it when sending.
            server = self.registry.preferences.server(provider)
            model = server.models[0] if server is not None and server.models else None
        return await self.manager.create_session(provider=provider, model=model)

    async def _create_and_open(self) -> Session:
        self.sidebar.filter.clear()
        session = await self._create_session()
        self.sidebar.model.upsert(session)
        await self.open_session(session.id)
        return session

    def delete_session(self, session_id: str) -> None:
        """Move a session to the Trash (Undo is offered for a few seconds)."""
        self.findkeep.move_to_trash(session_id)

    def delete_session_for_good(self, session_id: str) -> None:
        """Delete a session after the user confirms."""
        row = self.sidebar.model.row_of(session_id)
        title = self.sidebar.model.session_row(row).title if row is not None else "this chat"
        if not self.confirm(
            self,
            "Delete chat",
            f"Delete “{title}” and all its messages? This cannot be undone.",
        ):
            return
        start_task(self._delete(session_id), self._report)

    async def _delete(self, session_id: str) -> None:
        self.engine.cancel(session_id)
        await self.manager.delete_session(session_id)

    def _rename(self, session_id: str, title: str) -> None:
        start_task(self._persist_title(session_id, title), self._report)

    async def _persist_title(self, session_id: str, title: str) -> None:
        try:
            await self.manager.update_session(session_id, title=title)
        except (ValueError, SessionNotFoundError, StorageError) as exc:
            self.pane.composer.show_notice(f"The chat could not be renamed: {exc}")
            session = await self.manager.get_session(session_id)
            if session is not None:
                self.sidebar.model.upsert(session)

    def _on_session_created(self, session_id: str) -> None:
        start_task(self._add_row(session_id), self._report)

    async def _add_row(self, session_id: str) -> None:
        session = await self.manager.get_session(session_id)
        if session is not None:
            self.findkeep.sync_row(session)

    def _on_session_updated(self, session_id: str) -> None:
        start_task(self._add_row(session_id), self._report)
        if self._current is not None and self._current.id == session_id:
            self._show_title()
            self._select_model_of_current()

    def _on_session_deleted(self, session_id: str) -> None:
        was_open = self._current is not None and self._current.id == session_id
        next_id = self.sidebar.neighbour_of(session_id) if was_open else None
        self.sidebar.model.remove(session_id)
        self._errors.pop(session_id, None)
        if was_open:
            self._current = None
            self.sidebar.show_open_session(None)
            self.pane.messages.set_session(None)
            if next_id and next_id != session_id:
                start_task(self.open_session(next_id), self._report)
            else:
                start_task(self._create_and_open(), self._report)

    def _on_message_added(self, session_id: str, _message_id: str) -> None:
        self.sidebar.model.touch(session_id, utcnow())
        self.pane.messages.on_message_added(session_id)
        if self._current is not None and self._current.id == session_id:
            self._show_streaming_state()

    def _on_history_replaced(self, session_id: str) -> None:
        # A replaced history may reuse message ids with new content: drop cached layouts.
        self.pane.view.renderer.clear()
        self.pane.messages.on_history_replaced(session_id)

    # -- sending, stopping, retrying --------------------------------------------------------

    def send_current(self) -> asyncio.Task[None] | None:
        """Send what the composer holds to the current session; returns the turn's task."""
        composer = self.pane.composer
        content = composer.content()
        session = self._current
        if content is None or session is None:
            return None
        if self.engine.is_streaming(session.id) or session.id in self._turns:
            composer.show_notice("Wait for the reply to finish, or press Stop.")
            return None
        editing = composer.editing_message_id
        if editing is not None:
            stream = self.engine.edit_and_resend(session.id, editing, content)
            composer.finish_edit()
        else:
            stream = self.engine.send(session.id, content)
        composer.clear()
        self.pane.view.scroll_to_newest()
        return self._start_turn(session.id, stream, restore=content)

    def send_text(self, text: str) -> asyncio.Task[None] | None:
        """Type ``text`` into the composer and send it (the self-test uses the real path)."""
        self.pane.composer.edit.setPlainText(text)
        return self.send_current()

    def stop_current(self) -> None:
        """Stop the reply streaming into the current session; its text so far stays."""
        if self._current is not None:
            self.engine.cancel(self._current.id)

    def retry_current(self) -> asyncio.Task[None] | None:
        """Answer the current session's last user message again."""
        session = self._current
        if session is None or session.id in self._turns:
            return None
        self.pane.view.scroll_to_newest()
        return self._start_turn(session.id, self.engine.regenerate(session.id))

    def _edit_message(self, message_id: str) -> None:
        if self._current is None:
            return
        message = next((m for m in self._current.history if m.id == message_id), None)
        if message is not None and message.role == "user":
            self.pane.composer.begin_edit(message.id, message.content)

    def _dismiss_error(self) -> None:
        if self._current is not None:
            self._errors.pop(self._current.id, None)
            self._dismissed.add(self._current.id)
        self.pane.banner.hide()

    def _start_turn(
        self, session_id: str, stream: AsyncIterator[str], restore: Content | None = None
    ) -> asyncio.Task[None]:
        self._errors.pop(session_id, None)
        self._dismissed.discard(session_id)
        task = start_task(self._run_turn(session_id, stream, restore), self._report)
        self._turns[session_id] = task
        self._show_session_state()
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
            if restore is not None and self._current and self._current.id == session_id:
                self.pane.composer.set_content(restore)
            self._errors[session_id] = str(exc)
        except SessionNotFoundError:
            pass  # deleted while answering; nothing left to show
        except StorageError as exc:
            self._errors[session_id] = str(exc)
        finally:
            self._turns.pop(session_id, None)
            if self._current is not None and self._current.id == session_id:
                self._show_session_state()

    # -- what the pane shows for the current session ----------------------------------------

    def _show_session_state(self) -> None:
        self._show_title()
        self._select_model_of_current()
        self._show_streaming_state()
        self._show_error()

    def _show_title(self) -> None:
        title = self._current.title if self._current else ""
        self.pane.title.setText(title)
        self.setWindowTitle(f"{title} — ChatDesk" if title else "ChatDesk")

    def _show_streaming_state(self) -> None:
        session = self._current
        streaming = session is not None and (
            session.id in self._turns or self.engine.is_streaming(session.id)
        )
        self.pane.composer.set_streaming(streaming)
        waiting = streaming and bool(session.history) and session.history[-1].role == "user"
        self.pane.thinking.setVisible(waiting)

    def _show_error(self) -> None:
        session = self._current
        message = None
        if session is not None and session.id not in self._turns:
            message = self._errors.get(session.id)
            dismissed = session.id in self._dismissed
            if message is None and session.history and not dismissed:
                last = session.history[-1]
                if last.status == "error":
                    message = last.error or "The reply failed."
        if message:
            self.pane.banner.show_error(message)
        else:
            self.pane.banner.hide()

    # -- models -----------------------------------------------------------------------------

    def refresh_model_choices(self) -> None:
        """Fill the model selector from the registry (after servers changed, too)."""
        choices = list(self.registry.choices())
        default = self.registry.default_choice()
        if not any((c.provider_id, c.model) == default for c in choices):
            provider_id, model = default
            label = f"{model or 'default model'} — {provider_id}"
            choices.append(ModelChoice(provider_id, model, label))
        self._choices = choices
        selector = self.pane.model_selector
        selector.blockSignals(True)
        selector.clear()
        for choice in choices:
            selector.addItem(choice.label)
        selector.blockSignals(False)
        self._select_model_of_current()

    def _select_model_of_current(self) -> None:
        session = self._current
        if session is None:
            return
        wanted = (session.provider, session.model) if session.provider else None
        default = self.registry.default_choice()
        for position, choice in enumerate(self._choices):
            pair = (choice.provider_id, choice.model)
            if pair == wanted or (wanted is None and pair == default):
                self.pane.model_selector.setCurrentIndex(position)
                return
        if wanted is not None:
            provider_id, model = wanted
            label = f"{model or 'default model'} — {provider_id}"
            self._choices.append(ModelChoice(provider_id, model, label))
            self.pane.model_selector.addItem(self._choices[-1].label)
            self.pane.model_selector.setCurrentIndex(len(self._choices) - 1)

    def _on_model_chosen(self, position: int) -> None:
        if self._current is None or not 0 <= position < len(self._choices):
            return
        choice = self._choices[position]
        start_task(
            self.manager.update_session(
                self._current.id, provider=choice.provider_id, model=choice.model
            ),
            self._report,
        )

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
            session=self._current,
            # Called also when a server test finishes after the dialog was closed.
            on_change=self._settings_changed,
            notify=self._notify,
            parent=self,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog
