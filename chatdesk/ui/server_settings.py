"""The settings dialog's server box: the servers added, and a form to test and add one.

Testing a server awaits the network, and the user may close the dialog (which deletes
it) meanwhile: a change the user asked for is applied through :class:`ModelSettings`
first, and the box's widgets are only touched while they still exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.model_settings import (
    ModelSettings,
    SettingsRefused,
    describe_models,
    fetch_models,
    normalise_url,
    url_key,
)
from chatdesk.providers.base import ProviderError
from chatdesk.ui.async_tasks import TaskSet

log = logging.getLogger(__name__)


def make_button(text: str, name: str, on_click: Callable[[], object]) -> QPushButton:
    """A push button with an object name (for tests and accessibility) and its action."""
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(on_click)
    return button


class ServerSettingsBox(QGroupBox):
    """Add, test, refresh and remove OpenAI-compatible servers.

    ``on_change`` is called after every change, also one that finishes after the box was
    deleted; ``notify`` tells the user of a failure once the box is gone.
    """

    def __init__(
        self,
        settings: ModelSettings,
        tasks: TaskSet,
        *,
        on_change: Callable[[], None],
        notify: Callable[[str], None] | None = None,
        confirm: Callable[[str], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """The box over ``settings``; server tasks run in ``tasks``; ``confirm`` asks the
        user a yes/no question (removing a server)."""
        super().__init__("OpenAI-compatible servers", parent)
        self._settings = settings
        self._tasks = tasks
        self._on_change = on_change
        self._notify = notify
        self._confirm = confirm
        self.server_list = QListWidget()
        self.server_list.setObjectName("serverList")
        self.server_list.setMaximumHeight(110)
        self.refresh_button = make_button(
            "Test and refresh models", "refreshServerButton", self.test_selected
        )
        self.remove_button = make_button("Remove", "removeServerButton", self.remove_selected)
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
        secrets = settings.secrets
        keyring_ok = bool(getattr(secrets, "keyring_available", False))
        warning = getattr(secrets, "warning", None)
        self.keyring_warning = QLabel(
            warning or "No system keyring is available, so the key cannot be kept safely."
        )
        self.keyring_warning.setObjectName("keyringWarning")
        self.keyring_warning.setWordWrap(True)
        self.keyring_warning.setVisible(not keyring_ok)
        self.store_in_file.setVisible(not keyring_ok)
        self.test_button = make_button("Test", "testServerButton", self.test_new)
        self.add_button = make_button("Add server", "addServerButton", self.add_server)
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

        layout = QVBoxLayout(self)
        layout.addWidget(self.server_list)
        layout.addLayout(row)
        layout.addLayout(form)
        # Outside the form: a wrapped label in a QFormLayout row gets one line's height.
        layout.addWidget(self.keyring_warning)
        layout.addWidget(self.store_in_file)
        layout.addLayout(add_row)
        layout.addWidget(self.status)
        self.refresh()

    def refresh(self) -> None:
        """List the servers again."""
        self.server_list.clear()
        servers = self._settings.preferences.servers
        for server in servers:
            count = len(server.models)
            text = f"{server.label} — {count} model{'s' if count != 1 else ''}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, server.base_url)
            self.server_list.addItem(item)
        self.refresh_button.setEnabled(bool(servers))
        self.remove_button.setEnabled(bool(servers))
        if servers:
            self.server_list.setCurrentRow(0)

    def _selected_url(self) -> str | None:
        item = self.server_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def test_new(self) -> asyncio.Task[None] | None:
        """Try the server typed in the form and say whether it answered."""
        url = normalise_url(self.url_edit.text())
        if not url:
            self.status.setText("Enter the server's base URL first.")
            return None
        key = self.key_edit.text().strip() or url_key(self.url_edit.text()) or None
        return self._tasks.start(self._test(url, key), self._failed)

    def add_server(self) -> asyncio.Task[None] | None:
        """Test the server typed in the form and, when it answers, add it with its models.

        The server is added even if the dialog is closed before the server answers.
        """
        try:
            url = self._settings.check_new_server(self.url_edit.text())
        except SettingsRefused as refused:
            self.status.setText(str(refused))
            return None
        # Everything the form says is read now: after the await the form may be gone.
        return self._tasks.start(
            self._add(
                url,
                # A key typed into the URL is kept like one typed in the key field.
                self.key_edit.text().strip() or url_key(self.url_edit.text()) or None,
                self.name_edit.text().strip(),
                persist_key_in_file=self.store_in_file.isChecked(),
            ),
            self._failed,
        )

    def test_selected(self) -> asyncio.Task[None] | None:
        """Ask the selected server for its models again and keep the new list."""
        url = self._selected_url()
        return self._tasks.start(self._refresh(url), self._failed) if url else None

    def remove_selected(self) -> None:
        """Remove the selected server and its stored key."""
        url = self._selected_url()
        known = self._settings.preferences.server(url) if url else None
        if known is None:
            return
        question = f"Remove {known.label} and its key? Chats set to it will use the default model."
        if self._confirm is not None and not self._confirm(question):
            return
        server = self._settings.remove_server(url) if url else None
        if server is None:
            return
        self.status.setText(f"Removed {server.label}.")
        self.refresh()
        self._on_change()

    def _alive(self) -> bool:
        """False once Qt has deleted the box (with its dialog, when that is closed)."""
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
        try:
            self._settings.add_server(
                url, models, name=name, key=key, persist_key_in_file=persist_key_in_file
            )
        except SettingsRefused as refused:  # added meanwhile (a second click)
            self._show_status(str(refused))
            return
        self._on_change()
        if not self._alive():
            return
        for edit in (self.name_edit, self.url_edit, self.key_edit):
            edit.clear()
        self.status.setText(f"Added {name or url}. {describe_models(models)}")
        self.refresh()

    async def _refresh(self, url: str) -> None:
        server = self._settings.preferences.server(url)
        if server is None:
            return
        self._show_status(f"Contacting {server.label} …")
        try:
            models = await fetch_models(url, self._settings.registry.api_key(url))
        except ProviderError as exc:
            self._show_status(f"Could not use {server.label}: {exc}")
            return
        if self._settings.preferences.server(url) is not server:
            return  # removed while it was being asked
        self._settings.update_server_models(url, models)
        self._on_change()
        if not self._alive():
            return
        self.status.setText(describe_models(models))
        self.refresh()
