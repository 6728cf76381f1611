"""The New scheduled task / Edit task dialog: name, prompt, schedule with a live preview, model.

The schedule is previewed in plain words as it is typed ("Weekdays at 08:00"); an
invalid one shows why, in the same place, and Save stays off. Saving is a coroutine on
the TaskScheduler; an error it reports keeps the dialog open with the message shown.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Task
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.scheduler import TaskScheduler
from chatdesk.storage.errors import StorageError

DEFAULT_MODEL_LABEL = "Default model"
SCHEDULE_PLACEHOLDER = "0 8 * * 1-5  ·  every 30 m  ·  2026-12-24 08:00"
_ERROR_STYLE = "color: #d64541;"
_PREVIEW_STYLE = "color: palette(mid);"


class TaskDialog(QDialog):
    """Create a scheduled task, or change one (``task`` given)."""

    saved = Signal(str)  # the task's id

    def __init__(
        self,
        scheduler: TaskScheduler,
        registry: ProviderRegistry,
        *,
        start: Callable[[Coroutine[Any, Any, Any]], object],
        task: Task | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """An empty form for a new task, or ``task``'s values to edit; ``start`` runs the
        saving coroutine (the window's task set)."""
        super().__init__(parent)
        self._scheduler = scheduler
        self._start = start
        self._task = task
        self.setObjectName("taskDialog")
        self.setWindowTitle("New scheduled task" if task is None else "Edit scheduled task")
        self.setMinimumWidth(460)

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("taskName")
        self.name_edit.setAccessibleName("Task name")
        self.name_edit.setPlaceholderText("Morning summary")
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("taskPrompt")
        self.prompt_edit.setAccessibleName("Prompt")
        self.prompt_edit.setPlaceholderText("What the model is asked at every run")
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setFixedHeight(96)
        self.schedule_edit = QLineEdit()
        self.schedule_edit.setObjectName("taskSchedule")
        self.schedule_edit.setAccessibleName("Schedule")
        self.schedule_edit.setPlaceholderText(SCHEDULE_PLACEHOLDER)
        self.preview = QLabel()
        self.preview.setObjectName("schedulePreview")
        self.preview.setWordWrap(True)
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_box = QComboBox()
        self.model_box.setObjectName("taskModel")
        self.model_box.setAccessibleName("Model")
        self.model_box.addItem(DEFAULT_MODEL_LABEL, (None, None))
        for choice in registry.choices():
            self.model_box.addItem(choice.label, (choice.provider_id, choice.model))
        self.error = QLabel()
        self.error.setObjectName("taskError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Prompt", self.prompt_edit)
        # The preview sits right under what it describes.
        schedule_box = QVBoxLayout()
        schedule_box.setContentsMargins(0, 0, 0, 0)
        schedule_box.setSpacing(4)
        schedule_box.addWidget(self.schedule_edit)
        schedule_box.addWidget(self.preview)
        form.addRow("Schedule", schedule_box)
        form.addRow("Model", self.model_box)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setObjectName("saveTaskButton")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        if task is not None:
            self.name_edit.setText(task.name)
            self.prompt_edit.setPlainText(task.prompt)
            self.schedule_edit.setText(task.schedule)
            self._select_model(task.provider, task.model)
        self.name_edit.textChanged.connect(self._validate)
        self.prompt_edit.textChanged.connect(self._validate)
        self.schedule_edit.textChanged.connect(self._validate)
        self._saving = False
        self._validate()

    def preview_text(self) -> str:
        """What the preview line says now."""
        return self.preview.text()

    def save(self) -> None:
        """Store the task (new or changed); the dialog closes once it is stored."""
        if not self.save_button.isEnabled() or self._saving:
            return
        self._saving = True
        self.save_button.setEnabled(False)
        self._start(self._save())

    async def _save(self) -> None:
        provider, model = self.model_box.currentData()
        values = {
            "name": self.name_edit.text(),
            "prompt": self.prompt_edit.toPlainText(),
            "schedule": self.schedule_edit.text(),
            "provider": provider,
            "model": model,
        }
        try:
            if self._task is None:
                task = await self._scheduler.add_task(**values)
            else:
                task = await self._scheduler.update_task(self._task.id, **values)
        except (ValueError, LookupError, StorageError) as exc:
            # LookupError: the task was deleted while the dialog was open.
            self._failed(exc)
            return
        except BaseException:
            self._failed(RuntimeError("The task could not be saved."))
            raise
        if not shiboken6.isValid(self):
            return  # closed while saving: the task is stored all the same
        self._saving = False
        self.saved.emit(task.id)
        self.accept()

    def _failed(self, error: BaseException) -> None:
        if not shiboken6.isValid(self):
            return
        self._saving = False
        self.error.setText(str(error))
        self.error.show()
        self._validate()

    def _validate(self) -> None:
        schedule = self.schedule_edit.text().strip()
        valid_schedule = False
        if not schedule:
            self.preview.setText("When it runs: a cron expression, “every N m/h/d”, or a date")
            self.preview.setStyleSheet(_PREVIEW_STYLE)
        else:
            try:
                self.preview.setText(self._scheduler.describe(schedule))
                self.preview.setStyleSheet("")
                valid_schedule = True
            except ValueError as exc:
                self.preview.setText(str(exc))
                self.preview.setStyleSheet(_ERROR_STYLE)
        complete = bool(self.name_edit.text().strip() and self.prompt_edit.toPlainText().strip())
        self.save_button.setEnabled(valid_schedule and complete and not self._saving)

    def _select_model(self, provider: str | None, model: str | None) -> None:
        for row in range(self.model_box.count()):
            if self.model_box.itemData(row) == (provider, model):
                self.model_box.setCurrentIndex(row)
                return
        # A model no longer offered stays what the task uses until the user picks another.
        self.model_box.addItem(model or provider or DEFAULT_MODEL_LABEL, (provider, model))
        self.model_box.setCurrentIndex(self.model_box.count() - 1)
