"""The composer: a growing text box with image attachments, Send and Stop.

Enter sends, Shift+Enter starts a new line. Images come from the Attach button, the
clipboard or drag and drop; each is checked (really an image, not too large) before it
is shown as a removable thumbnail. What is sent is a plain string, or a list of content
blocks when images are attached.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QImage,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import (
    Content,
    content_text,
    parse_image_data_url,
)
from chatdesk.ui.attachments import (
    IMAGE_FILE_FILTER,
    Attachment,
    AttachmentChip,
    AttachmentRejected,
    checked_image,
    load_image_file,
    png_bytes,
)
from chatdesk.ui.message_documents import chat_font

_MAX_VISIBLE_LINES = 8


class ComposerEdit(QPlainTextEdit):
    """The text box: Enter submits, Shift+Enter breaks the line, pasted images attach."""

    submitted = Signal()
    escapePressed = Signal()
    # Up in an empty box: edit the last message. PageUp/PageDown: scroll the chat (-1/+1).
    editLastRequested = Signal()
    pageRequested = Signal(int)
    imagesOffered = Signal(list)
    filesOffered = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        """A plain-text box that grows with its text up to a few lines."""
        super().__init__(parent)
        self.setObjectName("composer")
        self.setAccessibleName("composer")
        self.setPlaceholderText("Ask anything  ·  Enter to send, Shift+Enter for a new line")
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().setDocumentMargin(6)
        self.textChanged.connect(self.updateGeometry)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter sends unless Shift (or an input method) asks for a new line."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.submitted.emit()
                return
            self.insertPlainText("\n")
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escapePressed.emit()
            return
        if event.key() == Qt.Key.Key_Up and not self.toPlainText():
            self.editLastRequested.emit()
            return
        if event.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            self.pageRequested.emit(-1 if event.key() == Qt.Key.Key_PageUp else 1)
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        """Accept images and files as well as text (pasted or dropped)."""
        return source.hasImage() or source.hasUrls() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        """Pasted or dropped images and files become attachments; text is inserted."""
        if source.hasImage():
            image = source.imageData()
            if isinstance(image, QImage) and not image.isNull():
                self.imagesOffered.emit([png_bytes(image)])
                return
        if source.hasUrls():
            paths = [Path(u.toLocalFile()) for u in source.urls() if u.isLocalFile()]
            if paths:
                self.filesOffered.emit(paths)
                return
        super().insertFromMimeData(source)

    def sizeHint(self) -> QSize:
        """Tall enough for the text, between one and a few lines."""
        line = self.fontMetrics().lineSpacing()
        lines = min(_MAX_VISIBLE_LINES, max(1, int(self.document().size().height())))
        margins = int(self.document().documentMargin() * 2) + 6
        return QSize(super().sizeHint().width(), lines * line + margins)

    def minimumSizeHint(self) -> QSize:
        """At least one line."""
        return QSize(80, self.fontMetrics().lineSpacing() + 18)


class Composer(QFrame):
    """The input area under the chat: attachments, text, Attach, Send and Stop."""

    submitted = Signal()
    stopRequested = Signal()
    attachmentsChanged = Signal(int)  # how many are attached now

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty composer."""
        super().__init__(parent)
        self.setObjectName("composerArea")
        self._attachments: list[AttachmentChip] = []
        self._editing: str | None = None
        # What was being typed when Edit was opened: it comes back when the edit ends.
        self._draft_before_edit: Content | None = None
        self._streaming = False

        self.edit = ComposerEdit(self)
        # The same size as the chat's text: what is typed reads like what is shown.
        self.edit.setFont(chat_font(self.edit.font()))
        self.edit.submitted.connect(self.submitted)
        self.edit.escapePressed.connect(self._on_escape)
        self.edit.imagesOffered.connect(self._attach_pasted)
        self.edit.filesOffered.connect(self._attach_paths)

        self.attach_button = QToolButton(self)
        self.attach_button.setObjectName("attachButton")
        self.attach_button.setAccessibleName("attachButton")
        self.attach_button.setText("+")
        bigger = self.attach_button.font()
        bigger.setPointSizeF(bigger.pointSizeF() * 1.4)
        bigger.setBold(True)
        self.attach_button.setFont(bigger)
        self.attach_button.setToolTip("Attach images (or paste / drop them here)")
        self.attach_button.setAutoRaise(True)
        self.attach_button.clicked.connect(self.choose_files)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("sendButton")
        self.send_button.setAccessibleName("sendButton")
        self.send_button.setToolTip("Send (Enter)")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submitted)
        # After a click, typing goes on in the text box, not into the clicked button.
        self.send_button.clicked.connect(self.edit.setFocus)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setAccessibleName("stopButton")
        self.stop_button.setToolTip("Stop the reply (its text so far is kept)")
        self.stop_button.clicked.connect(self.stopRequested)
        self.stop_button.clicked.connect(self.edit.setFocus)
        self.stop_button.hide()

        self.notice = QLabel(self)
        self.notice.setObjectName("composerMessage")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.edit_bar = QLabel(
            "Editing a message: Send replaces it and what followed · Esc cancels"
        )
        self.edit_bar.setObjectName("editBar")
        self.edit_bar.setEnabled(False)
        self.edit_bar.hide()
        self.attachment_row = QHBoxLayout()
        self.attachment_row.setContentsMargins(0, 0, 0, 0)
        self.attachment_row.setSpacing(6)
        self.attachment_row.addStretch(1)
        self.attachment_strip = QWidget(self)
        self.attachment_strip.setLayout(self.attachment_row)
        self.attachment_strip.hide()

        input_row = QHBoxLayout()
        input_row.setContentsMargins(0, 0, 0, 0)
        input_row.setSpacing(6)
        input_row.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignBottom)
        input_row.addWidget(self.edit, 1)
        input_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        input_row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(6)
        layout.addWidget(self.edit_bar)
        layout.addWidget(self.attachment_strip)
        layout.addLayout(input_row)
        layout.addWidget(self.notice)
        # Its border is drawn in paintEvent: Fusion's panel frame is a shade of the window
        # colour, invisible on the dark theme.
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAcceptDrops(True)

    def paintEvent(self, event: QPaintEvent) -> None:
        """A one-pixel border in the palette's Mid colour, seen on light and dark alike."""
        super().paintEvent(event)
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))

    # -- content --------------------------------------------------------------------------

    def text(self) -> str:
        """The typed text."""
        return self.edit.toPlainText()

    def attachments(self) -> list[Attachment]:
        """The images waiting to be sent, in order."""
        return [chip.attachment for chip in self._attachments]

    def content(self) -> Content | None:
        """What Send would send: a string, blocks when images are attached, None if empty."""
        text = self.text().strip()
        images = self.attachments()
        if not images:
            return text or None
        blocks: list[dict] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "image_url", "image_url": {"url": a.data_url}} for a in images]
        return blocks

    def set_content(self, content: Content) -> None:
        """Fill the composer with ``content`` (its text and images), e.g. to edit it."""
        self.clear()
        self.edit.setPlainText(content_text(content))
        if isinstance(content, list):
            for block in content:
                if block.get("type") == "image_url":
                    url = block["image_url"]["url"]
                    if url.startswith("data:"):
                        self._add(Attachment("image", parse_image_data_url(url).data))

    def clear(self) -> None:
        """Empty the text and drop every attachment and notice."""
        self.edit.clear()
        for chip in list(self._attachments):
            self._remove(chip)
        self.show_notice("")

    # -- attaching ------------------------------------------------------------------------

    def attach_file(self, path: Path | str) -> bool:
        """Attach an image file; a file that is not an image or too large is refused in words."""
        try:
            attachment = load_image_file(Path(path))
        except AttachmentRejected as exc:
            self.show_notice(str(exc))
            return False
        self._add(attachment)
        self.show_notice("")
        return True

    def attach_image_bytes(self, name: str, data: bytes) -> bool:
        """Attach image bytes (from the clipboard); refused in words when not an image."""
        try:
            attachment = checked_image(name, data)
        except AttachmentRejected as exc:
            self.show_notice(str(exc))
            return False
        self._add(attachment)
        self.show_notice("")
        return True

    def choose_files(self) -> None:
        """Ask for image files to attach."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach images", "", IMAGE_FILE_FILTER)
        self._attach_paths([Path(p) for p in paths])
        self.edit.setFocus()

    def _attach_paths(self, paths: list[Path]) -> None:
        refused = []
        for path in paths:
            try:
                self._add(load_image_file(path))
            except AttachmentRejected as exc:
                refused.append(str(exc))
        self.show_notice(" ".join(refused))

    def _attach_pasted(self, images: list[bytes]) -> None:
        for data in images:
            self.attach_image_bytes("Pasted image", data)

    def _add(self, attachment: Attachment) -> None:
        chip = AttachmentChip(attachment, self.attachment_strip)
        chip.removeRequested.connect(self._remove)
        self.attachment_row.insertWidget(len(self._attachments), chip)
        self._attachments.append(chip)
        self.attachment_strip.show()
        self.attachmentsChanged.emit(len(self._attachments))

    def _remove(self, chip: AttachmentChip) -> None:
        if chip in self._attachments:
            self._attachments.remove(chip)
            self.attachment_row.removeWidget(chip)
            chip.deleteLater()
        self.attachment_strip.setVisible(bool(self._attachments))
        self.attachmentsChanged.emit(len(self._attachments))

    # -- drag and drop onto the whole composer ----------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept dragged files and images."""
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Attach dropped files and images."""
        self.edit.insertFromMimeData(event.mimeData())
        event.acceptProposedAction()

    # -- state ----------------------------------------------------------------------------

    def show_notice(self, text: str) -> None:
        """Show (or with "" hide) a short message under the text box."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def follow_font(self, font: QFont) -> None:
        """Set typed text in ``font``'s size (as the chat's), after the text size changed."""
        self.edit.setFont(chat_font(font))
        self.edit.updateGeometry()

    def set_streaming(self, streaming: bool) -> None:
        """While a reply streams, Stop replaces Send."""
        self._streaming = streaming
        self.send_button.setVisible(not streaming)
        self.stop_button.setVisible(streaming)

    def _on_escape(self) -> None:
        # Esc leaves an edit first; otherwise it stops a reply being written.
        if self._editing is not None:
            self.cancel_edit()
        elif self._streaming:
            self.stopRequested.emit()

    @property
    def editing_message_id(self) -> str | None:
        """The user message being edited, or None when composing a new one."""
        return self._editing

    def begin_edit(self, message_id: str, content: Content) -> None:
        """Load a sent message to edit; sending replaces it and everything after it.

        The text being typed is put aside and comes back when the edit ends.
        """
        if self._editing is None:
            self._draft_before_edit = self.content()
        self.set_content(content)
        self._editing = message_id
        self.edit_bar.show()
        self.edit.setFocus()

    def cancel_edit(self) -> None:
        """Leave edit mode (and its text) without sending."""
        if self._editing is not None:
            self._editing = None
            self.edit_bar.hide()
            self._restore_draft()

    def finish_edit(self) -> None:
        """Leave edit mode after the edit was sent (the edited text is cleared by the caller)."""
        self._editing = None
        self.edit_bar.hide()

    def take_draft_before_edit(self) -> Content | None:
        """The text put aside when the edit began (once; None if there was none)."""
        draft, self._draft_before_edit = self._draft_before_edit, None
        return draft

    def _restore_draft(self) -> None:
        draft = self.take_draft_before_edit()
        if draft is None:
            self.clear()
        else:
            self.set_content(draft)
