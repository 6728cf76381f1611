"""The settings dialog's box for one model's context window and tools switch."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QWidget,
)

from chatdesk.context import DEFAULT_CONTEXT_WINDOW
from chatdesk.model_settings import ModelSettings, SettingsRefused
from chatdesk.providers.registry import ModelChoice
from chatdesk.settings import LOCAL_PROVIDER
from chatdesk.ui.model_selector import model_label

_MAX_WINDOW = 10_000_000


class ModelContextBox(QGroupBox):
    """Per model: the context window (0: what the server reports) and the tools switch."""

    def __init__(self, settings: ModelSettings, parent: QWidget | None = None) -> None:
        """The box over ``settings``; every change is saved at once."""
        super().__init__("Context window and tools", parent)
        self._settings = settings
        self._choices: list[ModelChoice] = []
        self.model_choice = QComboBox()
        self.model_choice.setObjectName("contextModelChoice")
        self.model_choice.currentIndexChanged.connect(self._show_model)
        self.window_spin = QSpinBox()
        self.window_spin.setObjectName("contextWindowSpin")
        self.window_spin.setRange(0, _MAX_WINDOW)
        self.window_spin.setSingleStep(1024)
        self.window_spin.setSuffix(" tokens")
        self.window_spin.setSpecialValueText(
            f"As reported (else {DEFAULT_CONTEXT_WINDOW:,} tokens)"
        )
        self.window_spin.setToolTip(
            "How many tokens the model reads at once. 0: what the server or the model file "
            "says, else 8,192. A limit the server states in an error always wins."
        )
        self.window_spin.editingFinished.connect(self._save_window)
        self.tools_check = QCheckBox("Offer the manage_session tool (rename, compact, truncate)")
        self.tools_check.setObjectName("toolsCheck")
        self.tools_check.toggled.connect(self._save_tools)
        self.status = QLabel()
        self.status.setObjectName("contextSettingsStatus")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Model", self.model_choice)
        form.addRow("Context window", self.window_spin)
        form.addRow("", self.tools_check)
        form.addRow("", self.status)
        self.status.hide()  # shown with a message only: the dialog is tall enough
        self.refresh()

    def refresh(self) -> None:
        """List the models offered now (after servers or model files changed)."""
        current = self._current()
        self._choices = self._settings.registry.choices()
        default = self._settings.registry.default_choice()
        if not any((c.provider_id, c.model) == default for c in self._choices):
            # A default given for this run only (--base-url): it can be set up too.
            self._choices.append(ModelChoice(default[0], default[1], model_label(*default)))
        self.model_choice.blockSignals(True)
        self.model_choice.clear()
        for position, choice in enumerate(self._choices):
            self.model_choice.addItem(choice.label)
            if current is not None and (choice.provider_id, choice.model) == current:
                self.model_choice.setCurrentIndex(position)
        self.model_choice.blockSignals(False)
        self._show_model()

    def _current(self) -> tuple[str, str | None] | None:
        position = self.model_choice.currentIndex()
        if 0 <= position < len(self._choices):
            choice = self._choices[position]
            return choice.provider_id, choice.model
        return None

    def _show_model(self) -> None:
        current = self._current()
        self._say("")
        self.window_spin.setEnabled(current is not None)
        if current is None:
            self.tools_check.setEnabled(False)
            return
        self.tools_check.setEnabled(current[0] != LOCAL_PROVIDER)
        self.window_spin.blockSignals(True)
        self.window_spin.setValue(self._settings.context_window(*current) or 0)
        self.window_spin.blockSignals(False)
        self.tools_check.blockSignals(True)
        local = current[0] == LOCAL_PROVIDER
        self.tools_check.setChecked(not local and self._settings.tools_enabled(*current))
        self.tools_check.setToolTip(
            "The local model does not take tools."
            if local
            else "Servers that refuse tools are asked again without them."
        )
        self.tools_check.blockSignals(False)
        learned = self._settings.learned_context_window(*current)
        if learned is not None:
            self._say(
                f"The server said this model's window is {learned:,} tokens; that is used "
                "until you set one here."
            )

    def _save_window(self) -> None:
        current = self._current()
        if current is None:
            return
        value = self.window_spin.value() or None
        unchanged = value == self._settings.context_window(*current)
        if unchanged and self._settings.learned_context_window(*current) is None:
            return
        try:
            self._settings.set_context_window(*current, value)
        except SettingsRefused as refused:
            self._say(str(refused))
            self.window_spin.setValue(self._settings.context_window(*current) or 0)
            return
        self._say("Saved: used from the next message on.")

    def _save_tools(self, enabled: bool) -> None:
        current = self._current()
        if current is not None:
            self._settings.set_tools_enabled(*current, enabled)
            self._say("Saved: used from the next message on.")

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))
