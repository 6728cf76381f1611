"""The composition root: read the start-up options, build the core objects, run the window.

Everything long-lived is created here exactly once and handed to whoever needs it: one
SessionManager, one ProviderRegistry, one ChatEngine, one main window.

Environment hooks (for benchmarks and packaging checks):

* ``CHATDESK_EXIT_AFTER_FIRST_PAINT=1``: print ``first-paint <unix time>`` once the main
  window has painted for the first time, and ``first-paint-packages <names>`` (the
  top-level packages imported by then), then quit (exit code 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import qasync
from PySide6.QtCore import QEvent, QObject, QSize, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from chatdesk import __version__
from chatdesk.api.service import LocalApiService
from chatdesk.cli import run_subcommand
from chatdesk.domain import content_text
from chatdesk.instance import DataFolderInUseError, InstanceLock, ask_to_activate, read_holder
from chatdesk.providers.base import ProviderError
from chatdesk.providers.local import LocalModelProvider
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.runtime import build_engine, run_preferences
from chatdesk.scheduler import TaskScheduler
from chatdesk.secrets import SecretStore
from chatdesk.sessions import SessionManager
from chatdesk.settings import (
    DATABASE_FILE,
    Preferences,
    StartupOptions,
    parse_startup_options,
    sqlite_url,
)
from chatdesk.storage.errors import StorageError
from chatdesk.storage.first_screen import read_chat_list
from chatdesk.storage.recovery import database_backups, restore_backup, set_aside

if TYPE_CHECKING:  # imported when needed: these modules import SQLAlchemy or the window
    from chatdesk.storage.database import DamagedDatabaseError
    from chatdesk.ui.main_window import MainWindow

log = logging.getLogger(__name__)

SELF_TEST_PROMPT = "Say hello."
SELF_TEST_TIMEOUT = 90.0
EXIT_AFTER_FIRST_PAINT = "CHATDESK_EXIT_AFTER_FIRST_PAINT"
# Long enough for the first paint to finish before the model load competes for the CPU.
PRELOAD_DELAY = 0.5
# Not 256 or 512: X11 drops a window icon property larger than 256 KiB, i.e. shows none.
WINDOW_ICON_SIZES = (16, 32, 48, 64, 128)


def resource_dirs() -> list[Path]:
    """Where bundled resources may be: a PyInstaller bundle, then next to the package."""
    found = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        found.append(Path(bundle) / "resources")
    package = Path(__file__).resolve().parent
    found += [package / "resources", package.parent / "resources"]
    return found


def find_resource(*relative: str) -> Path | None:
    """The first existing file among the resource folders, or None."""
    for folder in resource_dirs():
        candidate = folder.joinpath(*relative)
        if candidate.is_file():
            return candidate
    return None


def app_icon() -> QIcon:
    """The window icon in the sizes window managers ask for (empty when none is installed)."""
    icon = QIcon()
    for size in WINDOW_ICON_SIZES:
        path = find_resource("icons", f"chatdesk-{size}.png")
        if path is not None:
            icon.addFile(str(path), QSize(size, size))
    return icon


class _FirstPaintReporter(QObject):
    """Prints the time of the window's first paint and then quits (for the start-up bench)."""

    def __init__(self, on_painted: Callable[[], None]) -> None:
        super().__init__()
        self._on_painted = on_painted
        self._done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Notice the first paint of any widget of the window."""
        if not self._done and event.type() == QEvent.Type.Paint:
            self._done = True
            # Report once this paint pass has finished, i.e. the frame is complete.
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        print(f"first-paint {time.time():.6f}", flush=True)
        packages = sorted({name.partition(".")[0] for name in sys.modules})
        print(f"first-paint-packages {' '.join(packages)}", flush=True)
        self._on_painted()


async def run(app: QApplication, options: StartupOptions, lock: InstanceLock | None = None) -> int:
    """Open the database, show the window, and run until it is closed; the exit code.

    With ``lock`` (this process's hold on the data folder), a second launch on the same
    folder brings this window forward instead of opening another.
    """
    from chatdesk.ui.main_window import MainWindow

    # The database opens (and SQLAlchemy is imported) once the window has painted.
    manager = SessionManager.deferred(options.database_url)
    preferences, runtime_keys, save = run_preferences(options)
    secrets = SecretStore(options.preferences_path)
    if preferences.url_secrets:
        move_url_secrets(preferences, secrets, lambda: save(options.preferences_path))
    registry = ProviderRegistry(preferences, secrets, runtime_keys=runtime_keys)

    engine = build_engine(manager, registry, preferences, lambda: save(options.preferences_path))
    api = LocalApiService(manager, engine, registry)
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish() -> None:
        if not closed.done():
            closed.set_result(None)

    app.lastWindowClosed.connect(finish)
    # Housekeeping spares the chat open in the window.
    scheduler = TaskScheduler(manager, engine, open_session=lambda: window.current_session_id)
    window = MainWindow(
        manager,
        engine,
        registry,
        preferences,
        lambda: save(options.preferences_path),
        secrets=secrets,
        scheduler=scheduler,
        api=api,
    )
    reporter = None
    if os.environ.get(EXIT_AFTER_FIRST_PAINT) == "1":
        reporter = _FirstPaintReporter(finish)
        app.installEventFilter(reporter)
    exit_code = 0
    preload: asyncio.Task[None] | None = None
    damaged: DamagedDatabaseError | None = None
    try:
        window.preview(read_chat_list(_database_file(options)))
        window.show()
        await first_paint(app)
        try:
            await manager.finish_opening()
            await window.load()
        except StorageError as exc:
            # SQLAlchemy is loaded by now (the manager opened or tried to).
            from chatdesk.storage.database import DamagedDatabaseError

            if not isinstance(exc, DamagedDatabaseError):
                window.hide()
                _show_fatal(options, "ChatDesk cannot open its database", str(exc))
                return 1
            damaged = exc  # offered for recovery once everything here is closed
        else:
            announce_settings_problems(window, preferences)
            if lock is not None:
                await lock.serve_activation(lambda: bring_forward(window))
            if await start_scheduler(scheduler):
                window.scheduler_started()
            preload = asyncio.create_task(preload_local_model(registry))
            if preferences.api_enabled and not options.self_test:
                window.tasks.start(start_local_api(api, preferences.api_port))
            if options.self_test:
                exit_code = await self_test(window)
            else:
                await closed
    finally:
        if preload is not None:
            preload.cancel()
        if reporter is not None:
            app.removeEventFilter(reporter)
        if window.isVisible():
            window.close()
        await api.stop()  # its replies in flight are stored as cancelled
        # Task runs end their replies (as cancelled) before the window drains its tasks.
        await scheduler.stop()
        await window.shutdown()
        await engine.close()  # titles still being made
        await registry.close()
        await manager.close()
    if damaged is not None:
        if await recover_database(options, damaged):
            return await run(app, options, lock)  # again, on the recovered database
        return 1
    return exit_code


async def open_manager(options: StartupOptions) -> SessionManager | None:
    """The SessionManager over the database, opened now; a damaged one is offered for
    recovery first. None when it cannot be opened (the user was told why).

    run() opens its manager lazily instead (after the first paint) and recovers through
    the same recover_database().
    """
    from chatdesk.storage.database import DamagedDatabaseError

    while True:
        try:
            return await SessionManager.open(options.database_url)
        except DamagedDatabaseError as exc:
            if not await recover_database(options, exc):
                return None
        except StorageError as exc:
            _show_fatal(options, "ChatDesk cannot open its database", str(exc))
            return None


async def recover_database(options: StartupOptions, error: DamagedDatabaseError) -> bool:
    """Ask what to do about a damaged database and do it; True to try opening again.

    Nothing is deleted: the damaged file is renamed next to itself either way.
    """
    from chatdesk.ui.recovery_dialog import RecoveryChoice, ask_recovery

    if error.path is None or options.self_test:
        _show_fatal(options, "ChatDesk cannot open its database", str(error))
        return False
    backups = database_backups(error.path)
    choice = await ask_recovery(str(error), backups[0] if backups else None)
    if choice is RecoveryChoice.OPEN_BACKUP and backups:
        aside = restore_backup(error.path, backups[0])
    elif choice is RecoveryChoice.START_NEW:
        aside = set_aside(error.path)
    else:
        return False
    print(f"The damaged database was kept as {aside}", file=sys.stderr, flush=True)
    return True


async def first_paint(app: QApplication, timeout: float = 2.0) -> None:
    """Return once a widget of the application has painted (or after ``timeout``)."""
    painted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class _Watch(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not painted.done():
                # After this paint pass, so the frame is complete.
                QTimer.singleShot(0, self._done)
            return False

        def _done(self) -> None:
            if not painted.done():
                painted.set_result(None)

    watch = _Watch()
    app.installEventFilter(watch)
    try:
        await asyncio.wait_for(painted, timeout)
    except TimeoutError:
        pass  # nothing painted (no screen?): carry on all the same
    finally:
        app.removeEventFilter(watch)


def _database_file(options: StartupOptions) -> Path | None:
    """The database file, when it is the SQLite file of the data folder."""
    path = options.data_dir / DATABASE_FILE
    return path if options.database_url == sqlite_url(path) else None


async def start_scheduler(scheduler: TaskScheduler) -> bool:
    """Start scheduled tasks; a database that fails here leaves the chats usable."""
    try:
        await scheduler.start()
    except StorageError as exc:
        log.warning("scheduled tasks could not start: %s", exc)
        return False
    return True


async def start_local_api(api: LocalApiService, port: int) -> None:
    """Serve the local API as the preferences ask; a failure is logged and shown in Settings."""
    try:
        await api.configure(True, port)
    except OSError as exc:
        log.warning("the local API could not start on port %d: %s", port, exc)


async def preload_local_model(registry: ProviderRegistry) -> None:
    """Load the default local model in the background, once the window has painted.

    The first reply then starts at once instead of waiting for the model file to load.
    """
    await asyncio.sleep(PRELOAD_DELAY)
    provider, _ = registry.resolve_default()
    if isinstance(provider, LocalModelProvider):
        try:
            await provider.load()
        except ProviderError as exc:  # reported in the chat when the user sends
            log.info("the local model could not be preloaded: %s", exc)


async def self_test(window: object) -> int:
    """Send one message through the real window, check a complete reply was stored."""
    from chatdesk.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    started = time.monotonic()
    task = window.send_text(SELF_TEST_PROMPT)
    session_id = window.current_session_id
    if task is None or session_id is None:
        print("self-test FAILED: the message could not be sent", flush=True)
        return 1
    try:
        await asyncio.wait_for(asyncio.shield(task), SELF_TEST_TIMEOUT)
    except TimeoutError:
        window.stop_current()
        print(f"self-test FAILED: no reply within {SELF_TEST_TIMEOUT:.0f} s", flush=True)
        return 1
    session = await window.manager.require_session(session_id)
    replies = [m for m in session.history if m.role == "assistant"]
    problem = window.error_text(session_id)
    if not replies:
        print(f"self-test FAILED: no reply was stored ({problem or 'no error given'})")
        return 1
    reply = replies[-1]
    text = content_text(reply.content).strip()
    if reply.status != "complete" or not text:
        reason = problem or reply.error or f"status {reply.status}, {len(text)} characters"
        print(f"self-test FAILED: {reason}", flush=True)
        return 1
    elapsed = time.monotonic() - started
    preview = " ".join(text.split())[:60]
    print(f"self-test passed: reply {preview!r} ({len(text)} chars) in {elapsed:.1f} s", flush=True)
    return 0


def announce_settings_problems(window: MainWindow, preferences: Preferences) -> None:
    """Say under the composer that parts of settings.json were unusable (defaults used)."""
    problems = preferences.problems
    if not problems:
        return
    more = f" (and {len(problems) - 1} more; see the log)" if len(problems) > 1 else ""
    window.composer.show_notice(f"Some settings could not be used: {problems[0]}{more}")


def move_url_secrets(
    preferences: Preferences, secrets: SecretStore, save: Callable[[], None]
) -> None:
    """Move API keys found in server URLs of settings.json to the keyring and save the file
    without them. With no keyring, the key goes to the file's private key map (where the
    user already kept it, in plain text), so it is not lost; it never stays in the URL,
    from where it reached chat.db, logs and error messages."""
    for url, key in preferences.url_secrets.items():
        if not secrets.get(url):
            secrets.set(url, key, persist_in_settings_file=not secrets.keyring_available)
    preferences.url_secrets.clear()
    try:
        save()
    except OSError as exc:
        log.warning("could not rewrite the settings without the keys in URLs: %s", exc)


def bring_forward(window: QWidget) -> None:
    """Show ``window`` in front, restored if it was minimised (a second launch asked)."""
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()


def hand_over(options: StartupOptions, refused: DataFolderInUseError) -> int:
    """The exit code of a launch on a folder in use: the running window comes forward."""
    if ask_to_activate(options.data_dir):
        print(
            "ChatDesk is already open with this data folder; its window was brought forward.",
            flush=True,
        )
        return 0
    # No QApplication exists yet (this runs before one is made): words on stderr only.
    silent = (
        " Its window did not answer."
        if read_holder(options.data_dir).get("role") == "window"
        else ""
    )
    print(f"{refused}{silent}", file=sys.stderr, flush=True)
    return 1


def _show_fatal(options: StartupOptions, title: str, text: str) -> None:
    print(f"{title}: {text}", file=sys.stderr, flush=True)
    if not options.self_test and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        QMessageBox.critical(None, title, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Start ChatDesk; returns the process exit code."""
    handled = run_subcommand(sys.argv[1:] if argv is None else argv)
    if handled is not None:
        return handled
    options = parse_startup_options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lock = InstanceLock(options.data_dir)
    try:
        lock.acquire("open it again")
    except DataFolderInUseError as exc:
        return hand_over(options, exc)
    except OSError as exc:
        print(f"ChatDesk cannot use the data folder {options.data_dir}: {exc}", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "chatdesk"])
    assert isinstance(app, QApplication)
    app.setApplicationName("ChatDesk")
    app.setOrganizationName("ChatDesk")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("chatdesk")
    app.setWindowIcon(app_icon())
    # The window decides when we are done (closed, self-test finished, first paint).
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        exit_code: int = loop.run_until_complete(run(app, options, lock))
        return exit_code
    finally:
        lock.release()
        loop.close()
        if options.temporary_data_dir:
            shutil.rmtree(options.data_dir, ignore_errors=True)
