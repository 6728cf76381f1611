"""One chat's own settings: its system prompt, temperature and longest reply, and presets.

Opened from the chat header (or Ctrl+;). A preset is a named prompt with settings, kept
in the preferences; choosing one fills the form, so a chat starts from it. Nothing is
changed until OK; the change goes through the SessionManager like every other write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Session
from chatdesk.presets import ChatPreset
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences
from chatdesk.ui.async_tasks import TaskSet


class ChatSettingsDialog(QDialog):
    """System prompt, temperature and longest reply of one chat, with presets."""

    def __init__(
        self,
        manager: SessionManager,
        session: Session,
        preferences: Preferences,
        save_preferences: Callable[[], None],
        tasks: TaskSet,
        parent: QWidget | None = None,
    ) -> None:
        """A form showing ``session``'s settings; OK stores them through ``manager``."""
        super().__init__(parent)
        self.setObjectName("chatSettingsDialog")
        self.setWindowTitle(f"Chat settings — {session.title}")
        self._manager, self._session = manager, session
        self._preferences, self._save_preferences = preferences, save_preferences
        self._tasks = tasks

        self.presets = QComboBox(self)
        self.presets.setObjectName("presetChoice")
        self.save_preset = QPushButton("Save as preset…", self)
        self.save_preset.setObjectName("savePresetButton")
        self.save_preset.clicked.connect(self._save_as_preset)
        self._fill_presets()
        self.presets.activated.connect(self._apply_preset)

        self.system_prompt = QPlainTextEdit(self)
        self.system_prompt.setObjectName("chatSystemPrompt")
        self.system_prompt.setPlaceholderText("How the model should answer in this chat")
        self.system_prompt.setPlainText(session.system_prompt or "")
        self.system_prompt.setTabChangesFocus(True)

        self.default_temperature = QCheckBox("Model's default", self)
        self.default_temperature.setObjectName("defaultTemperature")
        self.temperature = QDoubleSpinBox(self)
        self.temperature.setObjectName("temperature")
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.setToolTip("Lower is more focused, higher is more varied")
        self._set_temperature(session.temperature)
        self.default_temperature.toggled.connect(lambda on: self.temperature.setEnabled(not on))

        self.default_max_tokens = QCheckBox("No limit", self)
        self.default_max_tokens.setObjectName("defaultMaxTokens")
        self.max_tokens = QSpinBox(self)
        self.max_tokens.setObjectName("maxTokens")
        self.max_tokens.setRange(1, 131072)
        self.max_tokens.setSingleStep(100)
        self.max_tokens.setSuffix(" tokens")
        self._set_max_tokens(session.max_tokens)
        self.default_max_tokens.toggled.connect(lambda on: self.max_tokens.setEnabled(not on))

        preset_row = QHBoxLayout()
        preset_row.addWidget(self.presets, 1)
        preset_row.addWidget(self.save_preset)
        temperature_row = QHBoxLayout()
        temperature_row.addWidget(self.temperature)
        temperature_row.addWidget(self.default_temperature)
        temperature_row.addStretch(1)
        tokens_row = QHBoxLayout()
        tokens_row.addWidget(self.max_tokens)
        tokens_row.addWidget(self.default_max_tokens)
        tokens_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Preset:", preset_row)
        form.addRow("System prompt:", self.system_prompt)
        form.addRow("Temperature:", temperature_row)
        form.addRow("Longest reply:", tokens_row)
        note = QLabel("These apply to this chat only; new chats start with the defaults.")
        note.setEnabled(False)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(520, 360)

    def chosen(self) -> dict[str, Any]:
        """The settings the form holds, as update_session takes them."""
        return {
            "system_prompt": self.system_prompt.toPlainText().strip() or None,
            "temperature": None
            if self.default_temperature.isChecked()
            else round(self.temperature.value(), 2),
            "max_tokens": None if self.default_max_tokens.isChecked() else self.max_tokens.value(),
        }

    def accept(self) -> None:
        """Store the settings with the chat (a failure is reported by the window's tasks)."""
        self._tasks.start(self._manager.update_session(self._session.id, **self.chosen()))
        super().accept()

    def _set_temperature(self, value: float | None) -> None:
        self.default_temperature.setChecked(value is None)
        self.temperature.setEnabled(value is not None)
        self.temperature.setValue(0.7 if value is None else value)

    def _set_max_tokens(self, value: int | None) -> None:
        self.default_max_tokens.setChecked(value is None)
        self.max_tokens.setEnabled(value is not None)
        self.max_tokens.setValue(1024 if value is None else value)

    def _fill_presets(self) -> None:
        self.presets.clear()
        self.presets.addItem("Choose a preset…")
        for preset in self._preferences.chat_presets():
            self.presets.addItem(preset.name, preset)

    def _apply_preset(self, index: int) -> None:
        preset = self.presets.itemData(index)
        if not isinstance(preset, ChatPreset):
            return
        self.system_prompt.setPlainText(preset.system_prompt or "")
        self._set_temperature(preset.temperature)
        self._set_max_tokens(preset.max_tokens)

    def save_preset_named(self, name: str) -> None:
        """Keep the form's settings as preset ``name`` (replacing one of that name)."""
        name = name.strip()
        if not name:
            return
        self._preferences.keep_preset(ChatPreset(name, **self.chosen()))
        self._save_preferences()
        self._fill_presets()
        self.presets.setCurrentIndex(self.presets.findText(name))

    def _save_as_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name of the preset:")
        if ok:
            self.save_preset_named(name)
