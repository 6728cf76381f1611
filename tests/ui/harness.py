"""Driving the real main window from tests: running coroutines and building windows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytestqt.qtbot import QtBot

from chatdesk.chat import ChatEngine
from chatdesk.context import ContextWindows, model_key
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.scheduler import TaskScheduler
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences, sqlite_url
from chatdesk.ui.main_window import MainWindow

T = TypeVar("T")

WAIT_MS = 10_000


def run(qtbot: QtBot, awaitable: Awaitable[T], timeout: int = WAIT_MS) -> T:
    """Run ``awaitable`` on the qasync loop while Qt processes events; its result."""
    task = asyncio.ensure_future(awaitable)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


@dataclass
class Harness:
    """Builds windows over one database file and closes everything it built."""

    qtbot: QtBot
    data_dir: Path
    base_url: str
    # The default model (None: the server's first, as with --base-url and no --model).
    model: str | None
    confirm_answer: bool = True
    registry_options: dict[str, Any] = field(default_factory=dict)
    confirmations: list[str] = field(default_factory=list)
    # How the window's "delete scheduled task" question is answered ("delete", "keep", None).
    delete_task_answer: str | None = "delete"
    _open: list[tuple[MainWindow, ProviderRegistry, SessionManager]] = field(default_factory=list)

    def confirm(self, _parent: Any, _title: str, text: str) -> bool:
        """The window's confirmation callback: remembers the question, answers as set."""
        self.confirmations.append(text)
        return self.confirm_answer

    def ask_delete_task(self, _parent: Any, task: Any) -> str | None:
        """The window's delete-task question: remembers the task, answers as set."""
        self.confirmations.append(f"delete task {task.name}")
        return self.delete_task_answer

    def window(self, *, scheduler: bool = False, **engine_options: Any) -> MainWindow:
        """A shown, loaded main window over this test's database and server.

        With ``scheduler``, a started TaskScheduler and the window's Scheduled section.
        """
        manager = run(self.qtbot, SessionManager.open(sqlite_url(self.data_dir / "chat.db")))
        preferences = Preferences.load(self.data_dir / "settings.json")
        preferences.default_provider = self.base_url
        preferences.default_model = self.model
        registry = ProviderRegistry(
            preferences, runtime_keys={self.base_url: "test-key"}, **self.registry_options
        )
        # As the app wires it: windows and the tools switch come from the preferences.
        engine_options.setdefault("context_windows", ContextWindows(preferences.context_window))
        engine_options.setdefault(
            "tools_enabled",
            lambda provider, model: preferences.tools_enabled(model_key(provider, model)),
        )
        engine_options.setdefault(
            "reads_images", lambda provider, model: registry.image_support(provider, model).sees
        )
        engine_options.setdefault("auto_title", False)
        engine_options.setdefault("flush_interval", 0.05)
        engine = ChatEngine(
            manager,
            registry.resolve_default()[0],
            resolve_provider=registry.resolve,
            **engine_options,
        )
        tasks = TaskScheduler(manager, engine) if scheduler else None
        window = MainWindow(
            manager,
            engine,
            registry,
            preferences,
            lambda: preferences.save(self.data_dir / "settings.json"),
            confirm=self.confirm,
            scheduler=tasks,
            ask_delete_task=self.ask_delete_task,
        )
        window.show()
        run(self.qtbot, window.load())
        if tasks is not None:
            run(self.qtbot, tasks.start())
            window.scheduler_started()
        self._open.append((window, registry, manager))
        return window

    def close(self, window: MainWindow) -> None:
        """Close ``window`` as a user would, then release its engine and database."""
        for entry in list(self._open):
            if entry[0] is window:
                self._open.remove(entry)
                _, registry, manager = entry
                window.close()
                if window.scheduler is not None:
                    run(self.qtbot, window.scheduler.stop())
                run(self.qtbot, window.shutdown())
                run(self.qtbot, window.engine.close())
                run(self.qtbot, registry.close())
                run(self.qtbot, manager.close())
                window.deleteLater()

    def close_all(self) -> None:
        """Close every window still open."""
        for window, _, _ in list(self._open):
            self.close(window)


def wait_for(qtbot: QtBot, condition: Callable[[], Any], timeout: int = WAIT_MS) -> None:
    """Process events until ``condition()`` is truthy (fails the test after ``timeout``)."""
    qtbot.waitUntil(lambda: bool(condition()), timeout=timeout)
