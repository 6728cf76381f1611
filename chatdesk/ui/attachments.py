"""Images waiting to be sent: checked (really an image, not too large) and shown as chips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from chatdesk.domain import (
    image_data_url,
    sniff_image_format,
)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
IMAGE_FILE_FILTER = "Images (*.png *.jpg *.jpeg *.gif *.webp *.bmp)"
_THUMBNAIL_SIZE = 64


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image waiting to be sent."""

    name: str
    data: bytes

    @property
    def data_url(self) -> str:
        """The image as a data URL, the way it is sent and stored."""
        return image_data_url(self.data)


class AttachmentRejected(ValueError):
    """A file could not be attached; the message says why, in words."""


def load_image_file(path: Path) -> Attachment:
    """Read an image file to attach, or raise AttachmentRejected saying what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AttachmentRejected(f"“{path.name}” could not be read: {exc.strerror}.") from None
    if size > MAX_IMAGE_BYTES:
        raise AttachmentRejected(
            f"“{path.name}” is {size / 1024 / 1024:.0f} MB; images can be at most "
            f"{MAX_IMAGE_BYTES // 1024 // 1024} MB."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AttachmentRejected(f"“{path.name}” could not be read: {exc.strerror}.") from None
    return checked_image(path.name, data)


def checked_image(name: str, data: bytes) -> Attachment:
    """``data`` as an attachment if it is a PNG, JPEG, GIF, WebP or BMP image of fair size."""
    if len(data) > MAX_IMAGE_BYTES:
        raise AttachmentRejected(
            f"“{name}” is too large; images can be at most {MAX_IMAGE_BYTES // 1024 // 1024} MB."
        )
    if not data or sniff_image_format(data) is None:
        raise AttachmentRejected(
            f"“{name}” is not an image ChatDesk can send (PNG, JPEG, GIF, WebP or BMP)."
        )
    return Attachment(name, data)


def png_bytes(image: QImage) -> bytes:
    """``image`` encoded as PNG (how a pasted image is attached)."""
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # PySide6's stubs ask for bytes, but at run time only str is accepted.
    image.save(buffer, "PNG")  # type: ignore[call-overload]
    buffer.close()
    return bytes(array.data())


class AttachmentChip(QFrame):
    """A thumbnail of an attachment with a button that removes it."""

    removeRequested = Signal(object)

    def __init__(self, attachment: Attachment, parent: QWidget | None = None) -> None:
        """Show ``attachment`` as a small square thumbnail."""
        super().__init__(parent)
        self.setObjectName("attachmentChip")
        self.attachment = attachment
        self.setToolTip(attachment.name)
        thumbnail = QLabel(self)
        thumbnail.setObjectName("attachmentThumbnail")
        image = QImage.fromData(attachment.data)
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap.fromImage(
            image.scaled(
                int(_THUMBNAIL_SIZE * ratio),
                int(_THUMBNAIL_SIZE * ratio),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        pixmap.setDevicePixelRatio(ratio)
        thumbnail.setPixmap(pixmap)
        thumbnail.setFixedSize(_THUMBNAIL_SIZE, _THUMBNAIL_SIZE)
        thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        remove = QToolButton(self)
        remove.setObjectName("removeAttachmentButton")
        remove.setAccessibleName(f"Remove {attachment.name}")
        remove.setToolTip("Remove this image")
        remove.setText("✕")
        remove.setAutoRaise(True)
        remove.clicked.connect(lambda: self.removeRequested.emit(self))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(0)
        layout.addWidget(thumbnail)
        layout.addWidget(remove, 0, Qt.AlignmentFlag.AlignTop)
