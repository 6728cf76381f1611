"""The dialog in which the user rewrites a compaction's summary."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class SummaryEditor(QDialog):
    """A plain-text editor for a summary, with Save and Cancel."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        """Edit ``text``; :meth:`text` gives the result after Save."""
        super().__init__(parent)
        self.setObjectName("summaryEditor")
        self.setWindowTitle("Edit summary")
        hint = QLabel(
            "The model reads this instead of the earlier messages it replaced. "
            "Those messages are kept: Undo compaction puts them back.",
            self,
        )
        hint.setWordWrap(True)
        self.editor = QPlainTextEdit(self)
        self.editor.setObjectName("summaryText")
        self.editor.setPlainText(text)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.editor, 1)
        layout.addWidget(buttons)
        self.resize(560, 360)

    def text(self) -> str:
        """The summary as edited."""
        return self.editor.toPlainText()
