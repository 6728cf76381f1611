"""What the context meter and the summary rows do: measure, compact, keep the first N,
expand a summary to its originals, edit it, undo it.

Not a widget: the window hands it the meter, the chat view and its model, and forwards
the manager's events of the chat shown. Every action goes through the engine or the
SessionManager (the one writer) in a background task; failures reach the user in words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QInputDialog, QWidget

from chatdesk.chat import ChatEngine, SessionBusyError
from chatdesk.domain import Message, content_text
from chatdesk.providers.base import ProviderError
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.context_meter import ContextMeter
from chatdesk.ui.message_model import MessageListModel
from chatdesk.ui.message_widget import SUMMARY_EDIT, SUMMARY_TOGGLE, SUMMARY_UNDO
from chatdesk.ui.summary_editor import SummaryEditor

log = logging.getLogger(__name__)

# The meter is measured again this long after the last change (a streamed reply changes
# its chat many times a second; the figure need not follow every token).
REFRESH_DELAY_MS = 250

AskCount = Callable[[QWidget, int], "int | None"]
EditText = Callable[[QWidget, str], "str | None"]
Confirm = Callable[[QWidget, str, str], bool]


class TaskStarter(Protocol):
    """Where background work goes (the window's TaskSet)."""

    def start(
        self,
        coroutine: Coroutine[Any, Any, Any],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        name: str | None = None,
    ) -> Any:
        """Run ``coroutine`` in the background, keeping it referenced."""


def ask_keep_count(parent: QWidget, current: int) -> int | None:
    """Ask how many of the first messages to keep; None when cancelled."""
    value, ok = QInputDialog.getInt(
        parent,
        "Keep the first messages",
        f"Keep how many of the first messages? The others ({current} in all) are deleted.",
        min(10, current),
        0,
        max(current, 0),
    )
    return value if ok else None


def edit_summary_text(parent: QWidget, text: str) -> str | None:
    """Let the user edit a summary in a dialog; None when cancelled."""
    editor = SummaryEditor(text, parent)
    return editor.text() if editor.exec() else None


class ContextController(QObject):
    """Keeps one meter current for the chat shown and carries out its actions."""

    def __init__(
        self,
        manager: SessionManager,
        engine: ChatEngine,
        tasks: TaskStarter,
        meter: ContextMeter,
        view: ChatView,
        model: MessageListModel,
        *,
        report: Callable[[str], None],
        confirm: Confirm,
        parent: QWidget,
        ask_count: AskCount = ask_keep_count,
        edit_text: EditText = edit_summary_text,
    ) -> None:
        """Wire the meter's menu and the summary rows' actions to the core."""
        super().__init__(parent)
        self._manager = manager
        self._engine = engine
        self._tasks = tasks
        self.meter = meter
        self._view = view
        self._model = model
        self._report = report
        self._confirm = confirm
        self._parent = parent
        # How N and an edited summary are asked for (dialogs; tests answer directly).
        self.ask_count = ask_count
        self.edit_text = edit_text
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self._stopped = False
        meter.compactRequested.connect(self.compact_now)
        meter.keepFirstRequested.connect(self.keep_first)
        meter.undoRequested.connect(lambda: self.undo(None))
        view.summaryActionRequested.connect(self._on_summary_action)

    @property
    def session_id(self) -> str | None:
        """The chat shown."""
        return self._model.session_id

    # -- keeping the meter current ----------------------------------------------------------

    def changed(self, session_id: str) -> None:
        """Something changed in ``session_id``: measure again soon if it is shown."""
        if session_id == self.session_id:
            self._timer.start()

    def stop(self) -> None:
        """Measure no more (the window is shutting down)."""
        self._stopped = True
        self._timer.stop()

    def refresh(self) -> None:
        """Measure the chat shown now (in the background) and show the figure."""
        self._timer.stop()
        if self._stopped:
            return
        session_id = self.session_id
        if session_id is None:
            self.meter.show_budget(None)
            return
        self._tasks.start(self._measure(session_id), self._measure_failed, name="context-meter")

    async def _measure(self, session_id: str) -> None:
        budget = await self._engine.context_budget(session_id)
        if session_id != self.session_id:
            return
        session = await self._manager.require_session(session_id)
        self.meter.show_budget(budget, has_summary=any(m.is_summary for m in session.history))

    def _measure_failed(self, error: BaseException) -> None:
        # The meter is a hint: a model that cannot be reached leaves it blank, in silence
        # (the chat itself reports the error when a message is sent).
        log.info("could not measure the context: %r", error)
        self.meter.show_budget(None)

    # -- the meter's menu -----------------------------------------------------------------

    def compact_now(self) -> None:
        """Summarise all but the latest exchange of the chat shown."""
        session_id = self.session_id
        if session_id is not None:
            self._run(self._compact(session_id))

    async def _compact(self, session_id: str) -> None:
        await self._engine.compact(session_id)
        self.refresh()

    def keep_first(self) -> None:
        """Ask for N, confirm, and keep only the first N messages of the chat shown."""
        session_id = self.session_id
        if session_id is None:
            return
        total = len(self._history())
        keep = self.ask_count(self._parent, total)
        if keep is None or keep >= total:
            return
        doomed = total - keep
        if not self._confirm(
            self._parent,
            "Delete messages",
            f"Delete the last {doomed} message{'s' if doomed != 1 else ''} of this chat, "
            f"keeping the first {keep}? This cannot be undone.",
        ):
            return
        self._run(self._truncate(session_id, keep))

    async def _truncate(self, session_id: str, keep: int) -> None:
        if self._engine.is_streaming(session_id):
            raise SessionBusyError("Wait for the reply to finish, or stop it, first.")
        await self._manager.truncate_messages(session_id, keep)
        self.refresh()

    def undo(self, message_id: str | None) -> None:
        """Put back the messages of the newest summary (or of summary ``message_id``)."""
        session_id = self.session_id
        if session_id is not None:
            self._run(self._undo(session_id, message_id))

    async def _undo(self, session_id: str, message_id: str | None) -> None:
        if self._engine.is_streaming(session_id):
            raise SessionBusyError("Wait for the reply to finish, or stop it, first.")
        compaction_id = None
        if message_id is not None:
            summary = self._find(message_id)
            compaction_id = summary.compaction_id if summary is not None else None
        self._view.renderer.expanded.pop(message_id or "", None)
        await self._manager.undo_compaction(session_id, compaction_id)
        self.refresh()

    # -- summary rows ---------------------------------------------------------------------

    def _on_summary_action(self, action: str, message_id: str) -> None:
        if action == SUMMARY_TOGGLE:
            self.toggle_originals(message_id)
        elif action == SUMMARY_EDIT:
            self.edit_summary(message_id)
        elif action == SUMMARY_UNDO:
            self.undo(message_id)

    def toggle_originals(self, message_id: str) -> None:
        """Expand a summary row to the messages it replaced, or collapse it again."""
        session_id = self.session_id
        if session_id is None:
            return
        expanded = self._view.renderer.expanded
        if message_id in expanded:
            del expanded[message_id]
            self._model.on_message_updated(session_id, message_id)
            return
        self._run(self._expand(session_id, message_id))

    async def _expand(self, session_id: str, message_id: str) -> None:
        summary = self._find(message_id)
        if summary is None or summary.compaction_id is None:
            return
        originals = await self._manager.compacted_messages(session_id, summary.compaction_id)
        self._view.renderer.expanded[message_id] = originals
        self._model.on_message_updated(session_id, message_id)

    def edit_summary(self, message_id: str) -> None:
        """Let the user rewrite a summary (what the model is told of earlier messages)."""
        session_id = self.session_id
        summary = self._find(message_id)
        if session_id is None or summary is None:
            return
        text = self.edit_text(self._parent, content_text(summary.content))
        if text is None or not text.strip() or text == content_text(summary.content):
            return
        self._run(self._manager.update_message(session_id, message_id, content=text.strip()))

    # -- helpers --------------------------------------------------------------------------

    def _find(self, message_id: str) -> Message | None:
        return next((m for m in self._history() if m.id == message_id), None)

    def _history(self) -> list[Message]:
        session = self._model.session
        return session.history if session is not None else []

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._tasks.start(coroutine, self._failed)

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, ValueError | ProviderError | StorageError | SessionBusyError):
            self._report(str(error))
        elif isinstance(error, SessionNotFoundError):
            self._report("This chat no longer exists.")
        else:
            log.error("a context action failed", exc_info=error)
            self._report(f"That did not work: {error}")
