"""SQL over the ``tasks`` table: the scheduled tasks and when they run next.

The TaskScheduler is the only caller; it decides what changes. Task runs themselves are
stored as messages of each task's session, through the SessionManager, never here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatdesk.domain import Task
from chatdesk.storage import tables
from chatdesk.storage.database import storage_error

_t = tables.tasks.c

# What update() may change; id and created_at never change.
TASK_FIELDS = frozenset(
    {
        "name",
        "prompt",
        "schedule",
        "provider",
        "model",
        "enabled",
        "next_run_at",
        "last_run_at",
        "last_status",
        "last_note",
        "unread",
    }
)


def task_from_row(row: RowMapping) -> Task:
    """The Task a stored row describes."""
    return Task(
        id=row["id"],
        name=row["name"],
        prompt=row["prompt"],
        schedule=row["schedule"],
        provider=row["provider"],
        model=row["model"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
        last_status=row["last_status"],
        last_note=row["last_note"],
        unread=bool(row["unread"]),
    )


class TaskStore:
    """Reads and writes the ``tasks`` table of the database the SessionManager opened."""

    def __init__(self, engine: AsyncEngine, path: Path | None) -> None:
        """``path`` is the database file, named in error messages."""
        self._engine = engine
        self._path = path

    async def insert(self, task: Task) -> None:
        """Store a new task."""
        row = {name: getattr(task, name) for name in (*TASK_FIELDS, "id", "created_at")}
        async with self._transaction() as conn:
            await conn.execute(insert(tables.tasks).values(**row))

    async def get(self, task_id: str) -> Task | None:
        """The stored task ``task_id``, or None."""
        async with self._read() as conn:
            row = (
                (await conn.execute(select(tables.tasks).where(_t.id == task_id)))
                .mappings()
                .first()
            )
        return None if row is None else task_from_row(row)

    async def all(self) -> list[Task]:
        """Every task, oldest first."""
        async with self._read() as conn:
            rows = (
                (await conn.execute(select(tables.tasks).order_by(_t.created_at, _t.id)))
                .mappings()
                .all()
            )
        return [task_from_row(row) for row in rows]

    async def update(self, task_id: str, **values: Any) -> bool:
        """Change fields of a task; False when there is no such task."""
        unknown = set(values) - TASK_FIELDS
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a task")
        async with self._transaction() as conn:
            result = await conn.execute(
                update(tables.tasks).where(_t.id == task_id).values(**values)
            )
        return result.rowcount > 0

    async def delete(self, task_id: str) -> bool:
        """Delete a task's row; False when there was none."""
        async with self._transaction() as conn:
            result = await conn.execute(delete(tables.tasks).where(_t.id == task_id))
        return result.rowcount > 0

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise storage_error(self._path, exc) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise storage_error(self._path, exc) from exc
