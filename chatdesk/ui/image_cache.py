"""Images of messages, decoded on demand and kept in a small cache.

A row's height needs only an image's size, read from its header; the pixels are decoded
when a thumbnail is shown and kept for the most recently shown images only.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap

from chatdesk.domain import parse_image_data_url

_IMAGE_CACHE_SIZE = 64


class ImageCache:
    """Decoded images and their sizes, keyed by (message id, block index)."""

    def __init__(self, capacity: int = _IMAGE_CACHE_SIZE) -> None:
        """Keep at most ``capacity`` decoded images; sizes are kept for every image."""
        self._images: OrderedDict[tuple[str, int], QImage] = OrderedDict()
        self._sizes: dict[tuple[str, int], QSize] = {}
        self._capacity = capacity

    def size(self, key: tuple[str, int], url: str) -> QSize:
        """The image's pixel size, read from its header without decoding it all."""
        found = self._sizes.get(key)
        if found is None:
            # The reader does not own its device: keep the buffer referenced while reading.
            buffer = _buffer(url)
            found = QImageReader(buffer).size()
            buffer.close()
            if not found.isValid():
                found = self.image(key, url).size()
            self._sizes[key] = found
        return found

    def image(self, key: tuple[str, int], url: str) -> QImage:
        """The decoded image (a null image when the data is unreadable)."""
        image = self._images.get(key)
        if image is None:
            image = QImage.fromData(_image_bytes(url))
            self._images[key] = image
            self._sizes[key] = image.size()
            while len(self._images) > self._capacity:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        return image

    def thumbnail(self, key: tuple[str, int], url: str, size: QSize, ratio: float) -> QPixmap:
        """A pixmap of the image at ``size`` logical pixels, sharp on a ``ratio`` screen."""
        image = self.image(key, url)
        if image.isNull():
            return QPixmap()
        scaled = image.scaled(
            math.ceil(size.width() * ratio),
            math.ceil(size.height() * ratio),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        pixmap = QPixmap.fromImage(scaled)
        pixmap.setDevicePixelRatio(ratio)
        return pixmap


def _image_bytes(url: str) -> bytes:
    try:
        return parse_image_data_url(url).data
    except ValueError:  # shown as an unreadable image, never raised into a paint
        return b""


def _buffer(url: str) -> QBuffer:
    buffer = QBuffer()
    buffer.setData(QByteArray(_image_bytes(url)))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    return buffer
