"""The settings dialog: servers, local model files, the default model, this chat's prompt.

Server changes apply at once (the preferences are saved and cached providers of that
server forgotten); the system prompt is saved when the dialog closes.

Testing a server awaits the network, and the user may close the dialog (which deletes
it) meanwhile: a change the user asked for is applied to the preferences and the keyring
first, and the dialog's widgets are only touched while they still exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Session
from chatdesk.providers.base import ProviderError
from chatdesk.providers.registry import ModelChoice, ProviderRegistry, build_provider
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.settings import LOCAL_PROVIDER, ServerConfig, split_url_secret
from chatdesk.ui.async_tasks import start_task

log = logging.getLogger(__name__)

_MODELS_SHOWN = 4


def describe_models(models: list[str]) -> str:
    """A short sentence listing the models a server offers."""
    if not models:
        return "Connected, but the server lists no models."
    shown = ", ".join(models[:_MODELS_SHOWN])
    more = f" and {len(models) - _MODELS_SHOWN} more" if len(models) > _MODELS_SHOWN else ""
    noun = "model" if len(models) == 1 else "models"
    return f"Connected: {len(models)} {noun} ({shown}{more})."


def _button(text: str, name: str, on_click: Callable[[], object]) -> QPushButton:
    """A push button with an object name (for tests and accessibility) and its action."""
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(on_click)
    return button


async def fetch_models(base_url: str, api_key: str | None) -> list[str]:
    """Ask the server at ``base_url`` for its models (raises ProviderError in words)."""
    provider = build_provider(base_url, None, api_key)
    try:
        return sorted(await provider.list_models())
    finally:
        await provider.close()


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
        secrets: Any = None,
        session: Session | None = None,
        on_change: Callable[[], None] | None = None,
        notify: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """A dialog over the registry's preferences; ``session`` gets the prompt editor."""
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._manager = manager
        self._registry = registry
        self._preferences = registry.preferences
        self._save = save_preferences
        self._secrets = secrets
        self._session = session
        self._on_change = on_change
        self._notify = notify
        self._choices: list[ModelChoice] = []

        layout = QVBoxLayout(self)
        layout.addWidget(self._servers_group())
        layout.addWidget(self._local_models_group())
        layout.addWidget(self._default_group())
        if session is not None:
            layout.addWidget(self._prompt_group(session))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.finished.connect(self._save_prompt)
        self._refresh_servers()
        self._refresh_local_models()
        self._refresh_default()

    # -- building -------------------------------------------------------------------------

    def _servers_group(self) -> QGroupBox:
        group = QGroupBox("OpenAI-compatible servers")
        self.server_list = QListWidget()
        self.server_list.setObjectName("serverList")
        self.server_list.setMaximumHeight(110)
        self.refresh_button = _button(
            "Test and refresh models", "refreshServerButton", self.test_selected
        )
        self.remove_button = _button("Remove", "removeServerButton", self.remove_selected)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.remove_button)

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("serverName")
        self.name_edit.setPlaceholderText("optional, e.g. “Office server”")
        self.url_edit = QLineEdit()
        self.url_edit.setObjectName("serverUrl")
        self.url_edit.setPlaceholderText("https://api.example.com/v1")
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("serverKey")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("leave empty if the server needs none")
        self.store_in_file = QCheckBox("Store the key in the settings file (not encrypted)")
        self.store_in_file.setObjectName("storeKeyInFile")
        keyring_ok = bool(getattr(self._secrets, "keyring_available", False))
        warning = getattr(self._secrets, "warning", None)
        self.keyring_warning = QLabel(
            warning or "No system keyring is available, so the key cannot be kept safely."
        )
        self.keyring_warning.setObjectName("keyringWarning")
        self.keyring_warning.setWordWrap(True)
        self.keyring_warning.setVisible(not keyring_ok)
        self.store_in_file.setVisible(not keyring_ok)
        self.test_button = _button("Test", "testServerButton", self.test_new)
        self.add_button = _button("Add server", "addServerButton", self.add_server)
        self.status = QLabel()
        self.status.setObjectName("serverStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Base URL", self.url_edit)
        form.addRow("API key", self.key_edit)
        add_row = QHBoxLayout()
        add_row.addStretch(1)
        add_row.addWidget(self.test_button)
        add_row.addWidget(self.add_button)

        layout = QVBoxLayout(group)
        layout.addWidget(self.server_list)
        layout.addLayout(row)
        layout.addLayout(form)
        # Outside the form: a wrapped label in a QFormLayout row gets one line's height.
        layout.addWidget(self.keyring_warning)
        layout.addWidget(self.store_in_file)
        layout.addLayout(add_row)
        layout.addWidget(self.status)
        return group

    def _local_models_group(self) -> QGroupBox:
        group = QGroupBox("Local model files (.gguf)")
        self.local_list = QListWidget()
        self.local_list.setObjectName("localModelList")
        self.local_list.setMaximumHeight(80)
        self.add_local_button = _button(
            "Add model file…", "addLocalModelButton", self.choose_local_model
        )
        self.remove_local_button = _button(
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

    # -- servers --------------------------------------------------------------------------

    def _refresh_servers(self) -> None:
        self.server_list.clear()
        for server in self._preferences.servers:
            count = len(server.models)
            text = f"{server.label} — {count} model{'s' if count != 1 else ''}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, server.base_url)
            self.server_list.addItem(item)
        has = bool(self._preferences.servers)
        self.refresh_button.setEnabled(has)
        self.remove_button.setEnabled(has)
        if has:
            self.server_list.setCurrentRow(0)

    def _selected_url(self) -> str | None:
        item = self.server_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def test_new(self) -> asyncio.Task[None] | None:
        """Try the server typed in the form and say whether it answered."""
        url, url_key = split_url_secret(self.url_edit.text().strip())
        if not url:
            self.status.setText("Enter the server's base URL first.")
            return None
        key = self.key_edit.text().strip() or url_key or None
        return start_task(self._test(url, key), self._failed)

    def add_server(self) -> asyncio.Task[None] | None:
        """Test the server typed in the form and, when it answers, add it with its models.

        The server is added even if the dialog is closed before the server answers.
        """
        # A key typed into the URL goes to the key store like one typed in the key field;
        # the URL is kept (and shown) without it.
        url, url_key = split_url_secret(self.url_edit.text().strip())
        url = url.rstrip("/")
        if not url:
            self.status.setText("Enter the server's base URL first.")
            return None
        if self._preferences.server(url) is not None:
            self.status.setText("That server is already in the list.")
            return None
        # Everything the form says is read now: after the await the form may be gone.
        return start_task(
            self._add(
                url,
                self.key_edit.text().strip() or url_key or None,
                self.name_edit.text().strip(),
                persist_key_in_file=self.store_in_file.isChecked(),
            ),
            self._failed,
        )

    def test_selected(self) -> asyncio.Task[None] | None:
        """Ask the selected server for its models again and keep the new list."""
        url = self._selected_url()
        return start_task(self._refresh(url), self._failed) if url else None

    def _alive(self) -> bool:
        """False once Qt has deleted the dialog (it is deleted when closed)."""
        return shiboken6.isValid(self)

    def _show_status(self, text: str) -> None:
        if self._alive():
            self.status.setText(text)

    def _failed(self, error: BaseException) -> None:
        """An unexpected failure of a server task (e.g. the settings file not written)."""
        log.error("settings task failed", exc_info=error)
        text = f"The settings could not be changed: {error}"
        if self._alive():
            self.status.setText(text)
        elif self._notify is not None:
            self._notify(text)

    async def _test(self, url: str, key: str | None) -> None:
        self._show_status(f"Contacting {url} …")
        try:
            models = await fetch_models(url, key)
        except ProviderError as exc:
            self._show_status(f"Could not use {url}: {exc}")
            return
        self._show_status(describe_models(models))

    async def _add(
        self, url: str, key: str | None, name: str, *, persist_key_in_file: bool
    ) -> None:
        self._show_status(f"Contacting {url} …")
        try:
            models = await fetch_models(url, key)
        except ProviderError as exc:
            self._show_status(f"Could not use {url}: {exc}")
            return
        if self._preferences.server(url) is not None:  # added meanwhile (a second click)
            self._show_status("That server is already in the list.")
            return
        # The user's request first, whether or not the dialog still exists.
        if key and self._secrets is not None:
            self._secrets.set(url, key, persist_in_settings_file=persist_key_in_file)
        self._preferences.servers.append(ServerConfig(base_url=url, name=name, models=models))
        self._registry.forget(url)
        self._save()
        self._announce_change()
        if not self._alive():
            return
        for edit in (self.name_edit, self.url_edit, self.key_edit):
            edit.clear()
        self.status.setText(f"Added {name or url}. {describe_models(models)}")
        self._refresh_servers()
        self._refresh_default()

    async def _refresh(self, url: str) -> None:
        server = self._preferences.server(url)
        if server is None:
            return
        self._show_status(f"Contacting {server.label} …")
        try:
            models = await fetch_models(url, self._registry.api_key(url))
        except ProviderError as exc:
            self._show_status(f"Could not use {server.label}: {exc}")
            return
        if self._preferences.server(url) is not server:
            return  # removed while it was being asked
        server.models = models
        self._registry.forget(url)
        self._save()
        self._announce_change()
        if not self._alive():
            return
        self.status.setText(describe_models(models))
        self._refresh_servers()
        self._refresh_default()

    def _announce_change(self) -> None:
        """Tell the window (and, while it exists, ``changed``) the preferences changed."""
        if self._on_change is not None:
            self._on_change()
        if self._alive():
            self.changed.emit()

    def remove_selected(self) -> None:
        """Remove the selected server and its stored key."""
        url = self._selected_url()
        server = self._preferences.server(url) if url else None
        if server is None:
            return
        self._preferences.servers.remove(server)
        if self._secrets is not None:
            self._secrets.delete(server.base_url)
        if self._preferences.default_provider == server.base_url:
            self._preferences.default_provider = LOCAL_PROVIDER
            self._preferences.default_model = None
        self._registry.forget(server.base_url)
        self._save()
        self.status.setText(f"Removed {server.label}.")
        self._refresh_servers()
        self._refresh_default()
        self._announce_change()

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
        file = Path(path)
        if file.suffix.lower() != ".gguf" or not file.is_file():
            self.local_status.setText(f"{file.name} is not a .gguf model file; nothing was added.")
            return False
        try:
            with file.open("rb") as handle:
                magic = handle.read(4)
        except OSError as exc:
            self.local_status.setText(f"{file.name} cannot be read ({exc.strerror}).")
            return False
        if magic != b"GGUF":
            self.local_status.setText(
                f"{file.name} does not look like a GGUF model (wrong file header)."
            )
            return False
        resolved = str(file.resolve())
        if resolved in self._preferences.local_models:
            self.local_status.setText(f"{file.name} is already in the list.")
            return False
        self._preferences.local_models.append(resolved)
        self._save()
        self.local_status.setText(f"Added {file.name}. Choose it in the model selector.")
        self._refresh_local_models()
        self._refresh_default()
        self._announce_change()
        return True

    def remove_local_model(self) -> None:
        """Remove the selected model file from the list (the file itself is left alone)."""
        item = self.local_list.currentItem()
        path = item.data(Qt.ItemDataRole.UserRole) if item else None
        if path not in self._preferences.local_models:
            return
        self._preferences.local_models.remove(path)
        if (self._preferences.default_provider, self._preferences.default_model) == (
            LOCAL_PROVIDER,
            path,
        ):
            self._preferences.default_model = None
        self._registry.forget_local(path)
        self._save()
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
        self._preferences.default_provider = choice.provider_id
        self._preferences.default_model = choice.model
        self._save()
        self._announce_change()

    def _save_prompt(self) -> None:
        if self._session is None:
            return
        prompt = self.prompt_edit.toPlainText().strip() or None
        if prompt != (self._session.system_prompt or None):
            title = self._session.title
            start_task(
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
