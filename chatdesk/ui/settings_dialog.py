"""The settings dialog: servers, local model files, the default model, the local API, this
chat's prompt.

What a change means is decided in the core (:mod:`chatdesk.model_settings`); the dialog
calls it and shows the result. Server changes apply at once (the preferences are saved
and cached providers of that server forgotten); the system prompt is saved when the
dialog closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from chatdesk.api.service import LocalApiService
from chatdesk.domain import Session
from chatdesk.model_settings import KeyStore, ModelSettings, SettingsRefused
from chatdesk.providers.registry import ModelChoice, ProviderRegistry
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.ui.async_tasks import TaskSet
from chatdesk.ui.local_api_settings import LocalApiGroup
from chatdesk.ui.model_context_settings import ModelContextBox
from chatdesk.ui.server_settings import ServerSettingsBox, make_button

log = logging.getLogger(__name__)


class SettingsDialog(QDialog):
    """Add, test and remove servers; choose the default model; edit the system prompt.

    ``changed`` is emitted after the preferences changed while the dialog exists;
    ``on_change`` is called after every change, also one that finishes after the dialog
    was closed and deleted. ``notify`` tells the user of a failure once the dialog is
    gone (saving the system prompt); without it the failure is only logged.
    """

    changed = Signal()

    def __init__(
        self,
        manager: SessionManager,
        registry: ProviderRegistry,
        save_preferences: Callable[[], None],
        *,
        secrets: KeyStore | None = None,
        session: Session | None = None,
        on_change: Callable[[], None] | None = None,
        notify: Callable[[str], None] | None = None,
        tasks: TaskSet | None = None,
        confirm: Callable[[str], bool] | None = None,
        api: LocalApiService | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """A dialog over the registry's preferences; ``session`` gets the prompt editor.

        Its background tasks go into ``tasks`` (the window's, so shut-down waits for them).
        """
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._manager = manager
        self._registry = registry
        self._settings = ModelSettings(registry, save_preferences, secrets)
        self._preferences = registry.preferences
        self._tasks = tasks or TaskSet()
        self._session = session
        self._on_change = on_change
        self._notify = notify
        self._choices: list[ModelChoice] = []

        self.servers = ServerSettingsBox(
            self._settings,
            self._tasks,
            on_change=self._servers_changed,
            notify=notify,
            confirm=confirm,
        )
        # The server box's parts, by the names the dialog has always offered.
        self.server_list = self.servers.server_list
        self.refresh_button = self.servers.refresh_button
        self.remove_button = self.servers.remove_button
        self.name_edit = self.servers.name_edit
        self.url_edit = self.servers.url_edit
        self.key_edit = self.servers.key_edit
        self.store_in_file = self.servers.store_in_file
        self.keyring_warning = self.servers.keyring_warning
        self.add_button = self.servers.add_button
        self.test_button = self.servers.test_button
        self.status = self.servers.status

        outer = QVBoxLayout(self)
        models_page = QWidget()
        layout = QVBoxLayout(models_page)
        layout.addWidget(self.servers)
        layout.addWidget(self._local_models_group())
        layout.addWidget(self._default_group())
        self.model_context = ModelContextBox(self._settings, self._tasks)
        layout.addWidget(self.model_context)
        if session is not None:
            layout.addWidget(self._prompt_group(session))
        # Taller than a laptop screen with every box: it scrolls rather than run off-screen.
        self.models_scroll = models_scroll = QScrollArea()
        models_scroll.setObjectName("modelsPageScroll")
        models_scroll.setWidgetResizable(True)
        models_scroll.setFrameShape(QFrame.Shape.NoFrame)
        models_scroll.setWidget(models_page)
        models_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scrollbar = models_scroll.verticalScrollBar().sizeHint().width()
        models_scroll.setMinimumWidth(models_page.sizeHint().width() + scrollbar)
        screen = self.screen()
        if screen is not None:
            tallest = int(screen.availableGeometry().height() * 0.9)
            self.resize(self.minimumWidth(), min(models_page.sizeHint().height() + 120, tallest))
        if api is None:
            outer.addWidget(models_scroll)
        else:
            # A page of its own: below the model settings it would not fit a laptop screen.
            self.local_api = LocalApiGroup(api, self._preferences, save_preferences, self._tasks)
            api_page = QWidget()
            api_layout = QVBoxLayout(api_page)
            api_layout.addWidget(self.local_api)
            api_layout.addStretch(1)
            self.pages = QTabWidget()
            self.pages.setObjectName("settingsPages")
            self.pages.addTab(models_scroll, "Models")
            self.pages.addTab(api_page, "Local API")
            outer.addWidget(self.pages)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.finished.connect(self._save_prompt)
        self._refresh_local_models()
        self._refresh_default()

    # -- building -------------------------------------------------------------------------

    def _local_models_group(self) -> QGroupBox:
        group = QGroupBox("Local model files (.gguf)")
        self.local_list = QListWidget()
        self.local_list.setObjectName("localModelList")
        self.local_list.setMaximumHeight(80)
        self.add_local_button = make_button(
            "Add model file…", "addLocalModelButton", self.choose_local_model
        )
        self.remove_local_button = make_button(
            "Remove", "removeLocalModelButton", self.remove_local_model
        )
        self.local_status = QLabel("The bundled SmolLM2 model is always available.")
        self.local_status.setObjectName("localModelStatus")
        self.local_status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.local_status, 1)
        row.addWidget(self.add_local_button)
        row.addWidget(self.remove_local_button)
        layout = QVBoxLayout(group)
        layout.addWidget(self.local_list)
        layout.addLayout(row)
        return group

    def _default_group(self) -> QGroupBox:
        group = QGroupBox("Default model for new chats")
        self.default_selector = QComboBox()
        self.default_selector.setObjectName("defaultModelSelector")
        self.default_selector.activated.connect(self._default_chosen)
        layout = QVBoxLayout(group)
        layout.addWidget(self.default_selector)
        return group

    def _prompt_group(self, session: Session) -> QGroupBox:
        group = QGroupBox(f"System prompt of “{session.title}”")
        self.prompt_edit = QPlainTextEdit(session.system_prompt or "")
        self.prompt_edit.setObjectName("systemPrompt")
        self.prompt_edit.setPlaceholderText("e.g. “Answer briefly, in British English.”")
        self.prompt_edit.setMaximumHeight(100)
        layout = QVBoxLayout(group)
        layout.addWidget(self.prompt_edit)
        return group

    # -- servers (the box does the work) ---------------------------------------------------

    def test_new(self) -> asyncio.Task[None] | None:
        """Try the server typed in the form and say whether it answered."""
        return self.servers.test_new()

    def add_server(self) -> asyncio.Task[None] | None:
        """Test the server typed in the form and, when it answers, add it."""
        return self.servers.add_server()

    def test_selected(self) -> asyncio.Task[None] | None:
        """Ask the selected server for its models again and keep the new list."""
        return self.servers.test_selected()

    def remove_selected(self) -> None:
        """Remove the selected server and its stored key."""
        self.servers.remove_selected()

    def _servers_changed(self) -> None:
        self._announce_change()
        if shiboken6.isValid(self):
            self._refresh_default()
            self.model_context.refresh()

    def _announce_change(self) -> None:
        """Tell the window (and, while it exists, ``changed``) the preferences changed."""
        if self._on_change is not None:
            self._on_change()
        if shiboken6.isValid(self):
            self.changed.emit()

    # -- local model files ----------------------------------------------------------------

    def _refresh_local_models(self) -> None:
        self.local_list.clear()
        for path in self._preferences.local_models:
            item = QListWidgetItem(f"{Path(path).name} — {path}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.local_list.addItem(item)
        has = bool(self._preferences.local_models)
        self.remove_local_button.setEnabled(has)
        if has:
            self.local_list.setCurrentRow(0)

    def choose_local_model(self) -> None:
        """Ask for a .gguf file and add it as a local model."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Add a local model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.add_local_model(path)

    def add_local_model(self, path: str) -> bool:
        """Add the .gguf file at ``path`` to the model selector; False (and why) if unusable."""
        try:
            resolved = self._settings.add_local_model(path)
        except SettingsRefused as refused:
            self.local_status.setText(str(refused))
            return False
        self.local_status.setText(f"Added {Path(resolved).name}. Choose it in the model selector.")
        self._refresh_local_models()
        self._refresh_default()
        self._announce_change()
        return True

    def remove_local_model(self) -> None:
        """Remove the selected model file from the list (the file itself is left alone)."""
        item = self.local_list.currentItem()
        path = item.data(Qt.ItemDataRole.UserRole) if item else None
        if not path or not self._settings.remove_local_model(path):
            return
        self.local_status.setText(f"Removed {Path(path).name} from the list.")
        self._refresh_local_models()
        self._refresh_default()
        self._announce_change()

    # -- default model and prompt ---------------------------------------------------------

    def _refresh_default(self) -> None:
        self._choices = self._registry.choices()
        current = self._registry.default_choice()
        self.default_selector.clear()
        for position, choice in enumerate(self._choices):
            self.default_selector.addItem(choice.label)
            if (choice.provider_id, choice.model) == current:
                self.default_selector.setCurrentIndex(position)

    def _default_chosen(self, position: int) -> None:
        if not 0 <= position < len(self._choices):
            return
        choice = self._choices[position]
        self._settings.set_default(choice.provider_id, choice.model)
        self._announce_change()

    def _save_prompt(self) -> None:
        if self._session is None:
            return
        prompt = self.prompt_edit.toPlainText().strip() or None
        if prompt != (self._session.system_prompt or None):
            title = self._session.title
            self._tasks.start(
                self._store_prompt(self._session, prompt),
                lambda error: self._prompt_not_saved(title, error),
            )

    async def _store_prompt(self, session: Session, prompt: str | None) -> None:
        try:
            await self._manager.update_session(session.id, system_prompt=prompt)
        except SessionNotFoundError:
            log.info("the chat was deleted before its system prompt was saved")

    def _prompt_not_saved(self, title: str, error: BaseException) -> None:
        # The dialog is closed (and deleted) by now: only plain Python state is used.
        text = f"The system prompt of “{title}” could not be saved: {error}"
        if self._notify is None:
            log.error("%s", text, exc_info=error)
        else:
            log.warning("%s", text)
            self._notify(text)
