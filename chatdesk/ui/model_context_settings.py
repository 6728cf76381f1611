"""The settings dialog's box for one model's context window, tools switch and images switch.

Whether a model sees images defaults to what its server reports; the server is asked when
the model is shown here, so the choice "As the server reports" says what it reported.
"""

from __future__ import annotations

import shiboken6
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
from chatdesk.ui.async_tasks import TaskSet
from chatdesk.ui.model_selector import model_label

_MAX_WINDOW = 10_000_000
# The images switch: its text and what it stores (None: as the server reports).
_IMAGE_CHOICES: tuple[tuple[str, bool | None], ...] = (
    ("As reported", None),
    ("Sees images", True),
    ("Text only", False),
)


class ModelContextBox(QGroupBox):
    """Per model: the context window (0: what the server reports), the tools switch and
    whether it sees images."""

    def __init__(
        self, settings: ModelSettings, tasks: TaskSet | None = None, parent: QWidget | None = None
    ) -> None:
        """The box over ``settings``; every change is saved at once. Servers are asked
        what they report through ``tasks``."""
        super().__init__("Context window, tools and images", parent)
        self._settings = settings
        self._tasks = tasks or TaskSet()
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
        self.images_choice = QComboBox()
        self.images_choice.setObjectName("imageInputChoice")
        for text, sees in _IMAGE_CHOICES:
            self.images_choice.addItem(text, sees)
        self.images_choice.setToolTip(
            "Whether the model sees attached images. ChatDesk warns before sending images "
            "to a model that reads text only, and leaves them out if you send anyway."
        )
        self.images_choice.currentIndexChanged.connect(self._save_images)
        self.status = QLabel()
        self.status.setObjectName("contextSettingsStatus")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Model", self.model_choice)
        form.addRow("Context window", self.window_spin)
        form.addRow("", self.tools_check)
        form.addRow("Images", self.images_choice)
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
            self.images_choice.setEnabled(False)
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
        self._show_images(current)
        if not local:
            self._tasks.start(self._ask_server(current), name="model-facts")
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

    def _show_images(self, current: tuple[str, str | None]) -> None:
        local = current[0] == LOCAL_PROVIDER
        chosen = self._settings.image_input(*current)
        support = self._settings.image_support(*current)
        if chosen is None:
            reported = {True: "sees images", False: "text only", None: "not reported"}
            label = f"As reported ({reported[support.sees]})"
        else:
            label = "As reported"
        self.images_choice.blockSignals(True)
        self.images_choice.setItemText(0, label)
        self.images_choice.setCurrentIndex(
            0 if local or chosen is None else self.images_choice.findData(chosen)
        )
        self.images_choice.blockSignals(False)
        self.images_choice.setEnabled(not local)
        if local:
            self.images_choice.setItemText(0, "Text only (the embedded models cannot see images)")

    async def _ask_server(self, current: tuple[str, str | None]) -> None:
        await self._settings.learn_image_support(*current)
        # The dialog may have been closed (and deleted) while the server was asked.
        if shiboken6.isValid(self.model_choice) and self._current() == current:
            self._show_images(current)

    def _save_images(self, _position: int) -> None:
        current = self._current()
        if current is None:
            return
        sees = self.images_choice.currentData()
        try:
            self._settings.set_image_input(*current, sees)
        except SettingsRefused as refused:
            self._say(str(refused))
            self._show_images(current)
            return
        self._show_images(current)
        self._say("Saved: used from the next message on.")

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))
