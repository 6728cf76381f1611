"""Settings → Local API: turn the window's HTTP API on or off, its port, and its tokens.

Changes apply at once: the preference is saved and the server started, moved or stopped.
A new token is shown once, in a read-only field with a Copy button; only its hash is kept.
The dialog may be closed (and deleted) while a change is still being applied, so widgets
are only touched while they exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from chatdesk.api.service import LocalApiService
from chatdesk.settings import Preferences
from chatdesk.storage.api_tokens import TokenNameError
from chatdesk.ui.async_tasks import TaskSet

log = logging.getLogger(__name__)

OFF_TEXT = "Off. Other programs on this computer can use your models and their own chats."


class LocalApiGroup(QGroupBox):
    """The Local API section of the settings dialog."""

    def __init__(
        self,
        service: LocalApiService,
        preferences: Preferences,
        save_preferences: Callable[[], None],
        tasks: TaskSet,
        parent: QWidget | None = None,
    ) -> None:
        """Controls over ``service``; the choice is kept in ``preferences``.

        Its background work goes into ``tasks`` (the window's, which shut-down drains).
        """
        super().__init__("Local API", parent)
        self.setObjectName("localApiGroup")
        self._service = service
        self._preferences = preferences
        self._save = save_preferences
        self._tasks = tasks

        self.enabled = QCheckBox("Serve the local HTTP API on 127.0.0.1, port")
        self.enabled.setObjectName("apiEnabled")
        self.enabled.setChecked(preferences.api_enabled)
        self.port = QSpinBox()
        self.port.setObjectName("apiPort")
        self.port.setRange(1024, 65535)
        self.port.setValue(preferences.api_port)
        self.port.setAccessibleName("Local API port")
        self.status = QLabel()
        self.status.setObjectName("apiStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tokens = QListWidget()
        self.tokens.setObjectName("apiTokens")
        self.tokens.setMaximumHeight(80)
        self.tokens.setAccessibleName("API tokens")
        self.create_button = QPushButton("New token…")
        self.create_button.setObjectName("apiCreateToken")
        self.create_button.clicked.connect(self._ask_token_name)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.setObjectName("apiRevokeToken")
        self.revoke_button.clicked.connect(self.revoke_selected)
        self.new_token = QLineEdit()
        self.new_token.setObjectName("apiNewToken")
        self.new_token.setReadOnly(True)
        self.new_token.setAccessibleName("New token, shown once")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("apiCopyToken")
        self.copy_button.clicked.connect(self._copy_token)
        self.new_token_note = QLabel()
        self.new_token_note.setObjectName("apiNewTokenNote")
        self.new_token_note.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.enabled)
        top.addWidget(self.port)
        top.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Tokens (each token's name owns the chats made with it):"), 1)
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.revoke_button)
        shown = QHBoxLayout()
        shown.addWidget(self.new_token, 1)
        shown.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(self.tokens)
        layout.addWidget(self.new_token_note)
        layout.addLayout(shown)
        self._show_new_token(None, None)
        self._show_state()
        self.enabled.toggled.connect(lambda _on: self.apply())
        self.port.editingFinished.connect(self._port_changed)
        self.refresh_tokens()

    # -- serving --------------------------------------------------------------------------

    def apply(self) -> asyncio.Task[None]:
        """Save the choice and start, move or stop the server to match it."""
        self._preferences.api_enabled = self.enabled.isChecked()
        self._preferences.api_port = self.port.value()
        self._save()
        return self._tasks.start(self._configure(), self._failed)

    def _port_changed(self) -> None:
        if self.port.value() != self._preferences.api_port:
            self.apply()

    async def _configure(self) -> None:
        enabled, port = self._preferences.api_enabled, self._preferences.api_port
        if self._alive() and enabled:
            self.status.setText(f"Starting on port {port} …")
        # A failure (e.g. the port is taken) is worded by the service and shown below.
        with contextlib.suppress(OSError):
            await self._service.configure(enabled, port)
        self._show_state()

    def _show_state(self) -> None:
        if not self._alive():
            return
        if self._service.problem is not None:
            self.status.setText(self._service.problem)
        elif self._service.url is not None:
            self.status.setText(
                f"Serving on {self._service.url} (OpenAI-compatible at {self._service.url}/v1)."
            )
        else:
            self.status.setText(OFF_TEXT)

    # -- tokens ---------------------------------------------------------------------------

    def refresh_tokens(self) -> asyncio.Task[None]:
        """Reload the token list."""
        return self._tasks.start(self._load_tokens(), self._failed)

    async def _load_tokens(self) -> None:
        infos = await self._service.tokens.list()
        if not self._alive():
            return
        self.tokens.clear()
        for info in infos:
            when = info.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            item = QListWidgetItem(f"{info.name}    (created {when})")
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            self.tokens.addItem(item)
        self.revoke_button.setEnabled(bool(infos))

    def _ask_token_name(self) -> None:
        name, ok = QInputDialog.getText(
            self, "New API token", "Name (the owner of the chats made with it):"
        )
        if ok and name.strip():
            self.create_token(name.strip())

    def create_token(self, name: str) -> asyncio.Task[None]:
        """Make a token called ``name`` and show it, this once."""
        return self._tasks.start(self._create(name), self._failed)

    async def _create(self, name: str) -> None:
        try:
            token = await self._service.tokens.create(name)
        except TokenNameError as exc:
            self._show_new_token(None, f"No token made: {exc}.")
            return
        self._show_new_token(
            token,
            f"Token “{name}”: copy it now, it is not shown again. Send it as "
            "'Authorization: Bearer TOKEN'.",
        )
        await self._load_tokens()

    def revoke_selected(self) -> asyncio.Task[None] | None:
        """Revoke the selected token (the chats it made stay)."""
        item: QListWidgetItem | None = self.tokens.currentItem()
        if item is None:  # PySide6's stubs say never, Qt says when nothing is selected
            return None
        return self._tasks.start(
            self._revoke(str(item.data(Qt.ItemDataRole.UserRole))), self._failed
        )

    async def _revoke(self, name: str) -> None:
        await self._service.tokens.revoke(name)
        self._show_new_token(None, f"Token “{name}” revoked; the chats it made stay.")
        await self._load_tokens()

    def _show_new_token(self, token: str | None, note: str | None) -> None:
        if not self._alive():
            return
        self.new_token.setText(token or "")
        self.new_token.setVisible(token is not None)
        self.copy_button.setVisible(token is not None)
        self.new_token_note.setText(note or "")
        self.new_token_note.setVisible(note is not None)
        if token is not None:
            self.new_token.selectAll()

    def _copy_token(self) -> None:
        QGuiApplication.clipboard().setText(self.new_token.text())

    # -- plumbing -------------------------------------------------------------------------

    def _alive(self) -> bool:
        """False once Qt has deleted the group (with its dialog)."""
        return shiboken6.isValid(self)

    def _failed(self, error: BaseException) -> None:
        log.error("local API settings task failed", exc_info=error)
        if self._alive():
            self.status.setText(f"The local API could not be changed: {error}")
