"""What to do with a database that cannot be opened: its backups, and setting it aside.

Nothing here deletes: a damaged file is renamed next to itself
(``chat.db.damaged-<UTC time>``, with its ``-wal``/``-shm`` companions), so whatever can
still be rescued from it stays on disk.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

_COMPANIONS = ("", "-wal", "-shm")


def database_backups(path: Path) -> list[Path]:
    """The backup copies of the database at ``path``, newest first."""
    found = [p for p in path.parent.glob(f"{path.name}.backup-*") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def set_aside(path: Path) -> Path:
    """Rename the database (and its -wal/-shm files) out of the way; the new main name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in _COMPANIONS:
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, aside.with_name(aside.name + suffix))
    return aside


def restore_backup(path: Path, backup: Path) -> Path:
    """Set the database at ``path`` aside and put a copy of ``backup`` in its place.

    Returns where the set-aside file went. The backup itself is left as it is.
    """
    aside = set_aside(path)
    temporary = path.with_name(f".{path.name}.restoring")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as target, backup.open("rb") as source:
        shutil.copyfileobj(source, target)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
    return aside
