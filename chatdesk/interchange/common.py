"""What the exporters and importers share: errors, progress, results, time stamps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# progress(done, total): how many chats have been read or written so far.
Progress = Callable[[int, int], None]


class InterchangeError(ValueError):
    """A file is not an export ChatDesk can read, or an export could not be written."""


@dataclass(slots=True)
class ImportResult:
    """What an import did: the ids of the chats added and how many were already there."""

    added: list[str] = field(default_factory=list)
    skipped: int = 0
    source: str = ""

    @property
    def total(self) -> int:
        """How many chats the file held (branches included)."""
        return len(self.added) + self.skipped


def iso(moment: datetime | None) -> str | None:
    """An ISO 8601 UTC time stamp, or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def parse_iso(value: object, where: str) -> datetime:
    """A datetime from an ISO 8601 string; InterchangeError naming ``where`` otherwise."""
    if not isinstance(value, str):
        raise InterchangeError(f"{where}: expected a time stamp, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InterchangeError(f"{where}: {value!r} is not a time stamp") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def from_epoch(value: object, default: datetime) -> datetime:
    """A datetime from epoch seconds (as ChatGPT writes them), or ``default``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return default
    return default
