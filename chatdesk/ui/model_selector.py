"""The model selector above a chat: which model answers it, among all that are offered."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from chatdesk.providers.registry import ModelChoice

ModelPair = tuple[str, str | None]


def model_label(provider_id: str, model: str | None) -> str:
    """How the selector names a model it has no entry for (e.g. one no longer listed)."""
    return f"{model or 'default model'} — {provider_id}"


class ModelSelector(QComboBox):
    """A combo box of :class:`ModelChoice`; ``modelChosen`` says which the user picked."""

    modelChosen = Signal(str, object)  # provider id, model (None: the provider's default)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty selector; :meth:`set_choices` fills it."""
        super().__init__(parent)
        self.setObjectName("modelSelector")
        self.setAccessibleName("modelSelector")
        self.setToolTip("The model that answers in this chat")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._choices: list[ModelChoice] = []
        self.activated.connect(self._on_activated)

    def set_choices(self, choices: list[ModelChoice], default: ModelPair) -> None:
        """Offer ``choices``, and the default model too when it is not among them."""
        choices = list(choices)
        if not any((c.provider_id, c.model) == default for c in choices):
            choices.append(ModelChoice(default[0], default[1], model_label(*default)))
        self._choices = choices
        self.blockSignals(True)
        self.clear()
        for choice in choices:
            self.addItem(choice.label)
        self.blockSignals(False)

    def select(self, wanted: ModelPair | None, default: ModelPair) -> None:
        """Show ``wanted`` as chosen (None: the default), adding it if it is not offered."""
        for position, choice in enumerate(self._choices):
            pair = (choice.provider_id, choice.model)
            if pair == wanted or (wanted is None and pair == default):
                self.setCurrentIndex(position)
                return
        if wanted is not None:
            self._choices.append(ModelChoice(wanted[0], wanted[1], model_label(*wanted)))
            self.addItem(self._choices[-1].label)
            self.setCurrentIndex(len(self._choices) - 1)

    def _on_activated(self, position: int) -> None:
        if 0 <= position < len(self._choices):
            choice = self._choices[position]
            self.modelChosen.emit(choice.provider_id, choice.model)
