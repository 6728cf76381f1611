"""One ChatDesk process per data folder.

Two processes on one folder each keep their own in-memory copy of the chats and of
``settings.json``, and each overwrites what the other wrote. So every process that opens a
data folder (the window, ``chatdesk serve``, import and export) first takes an exclusive
lock on ``<data folder>/chatdesk.lock``. The lock is an ``fcntl.flock`` on an open file:
the operating system drops it when the process ends in any way, so a crashed or SIGKILLed
instance never blocks the next start.

A second window launch does not open a second window: it asks the first instance, over a
Unix socket the first serves on its asyncio loop, to bring its window forward, and exits.
The lock file says where that socket is (and which process holds the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chatdesk.storage.errors import StorageError

# Any: None where there is no fcntl (Windows: no second-instance protection there yet).
fcntl: Any
try:
    import fcntl as _fcntl

    fcntl = _fcntl
except ImportError:  # pragma: no cover
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = "chatdesk.lock"
SOCKET_FILE = "chatdesk.sock"
ACTIVATE = b"activate\n"
ACTIVATED = b"activated\n"
# sun_path holds 108 bytes on Linux (104 on macOS); a longer socket path goes to /tmp.
_MAX_SOCKET_PATH = 100


class DataFolderInUseError(StorageError):
    """Another process holds the data folder; ``pid`` is that process when it is known."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class InstanceLock:
    """The exclusive lock on one data folder, held until release() or the process ends."""

    def __init__(self, data_dir: Path, role: str = "window") -> None:
        """Nothing is locked until acquire(); ``role`` says what holds it ("window",
        "serve", ...), so a second launch knows whether a window can come forward."""
        self.data_dir = data_dir
        self.role = role
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._socket_path: Path | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def acquire(self, purpose: str = "open") -> None:
        """Take the lock, or raise DataFolderInUseError saying who holds it."""
        if self._fd is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise _in_use(self.data_dir, purpose) from None
        self._fd = fd
        self._write_holder()

    def release(self) -> None:
        """Stop serving activations and let go of the lock."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._socket_path is not None:
            with contextlib.suppress(OSError):
                self._socket_path.unlink()
            self._socket_path = None
        if self._fd is not None:
            # Closing the descriptor releases the flock.
            os.close(self._fd)
            self._fd = None

    async def serve_activation(self, on_activate: Callable[[], None]) -> None:
        """Answer a second launch's request by calling ``on_activate`` (on this loop)."""
        if self._fd is None:
            raise RuntimeError("serve_activation() needs the lock")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = await asyncio.wait_for(reader.readline(), 5)
                if request == ACTIVATE:
                    on_activate()
                    writer.write(ACTIVATED)
                    await writer.drain()
            except (TimeoutError, OSError) as exc:
                log.info("an activation request failed: %s", exc)
            except Exception:
                log.exception("bringing the window forward failed")
            finally:
                writer.close()

        path = _socket_path(self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a process that died: we hold the lock, so it is stale
        self._server = await asyncio.start_unix_server(handle, path=str(path))
        with contextlib.suppress(OSError):
            path.chmod(0o600)
        self._socket_path = path
        self._write_holder()

    def _write_holder(self) -> None:
        """Record this process (and its socket) in the lock file for a second launch."""
        assert self._fd is not None
        data: dict[str, Any] = {"pid": os.getpid(), "role": self.role}
        if self._socket_path is not None:
            data["socket"] = str(self._socket_path)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(data).encode(), 0)


def refuse_if_in_use(data_dir: Path, purpose: str = "open its database") -> None:
    """DataFolderInUseError if another process holds ``data_dir``'s lock (a check, not a
    hold: for code that opens the database without taking the lock itself)."""
    if fcntl is None:
        return
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        if read_holder(data_dir).get("pid") == os.getpid():
            return  # this process holds it (through another descriptor)
        raise _in_use(data_dir, purpose) from None
    finally:
        os.close(fd)  # also drops the probe's lock, if it got one


def _in_use(data_dir: Path, purpose: str) -> DataFolderInUseError:
    holder = read_holder(data_dir)
    pid = holder.get("pid") if isinstance(holder.get("pid"), int) else None
    what = {"serve": " (`chatdesk serve`)", "window": " (a window)"}.get(
        str(holder.get("role")), ""
    )
    who = f"{what} (process {pid})" if pid else what
    return DataFolderInUseError(
        f"The data folder {data_dir} is in use by another ChatDesk{who}. Close it before "
        f"you {purpose}, or choose another folder with --data-dir.",
        pid,
    )


def read_holder(data_dir: Path) -> dict[str, Any]:
    """What the lock file of ``data_dir`` says about its holder ({} when nothing)."""
    try:
        data = json.loads((data_dir / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ask_to_activate(data_dir: Path, timeout: float = 10.0) -> bool:
    """Ask the instance holding ``data_dir`` to bring its window forward; True if it did.

    Waits up to ``timeout`` seconds for an instance that is still starting to listen.
    """
    deadline = time.monotonic() + timeout
    while True:
        holder = read_holder(data_dir)
        if holder.get("role", "window") != "window":
            return False  # e.g. `chatdesk serve`: no window to bring forward
        socket_path = holder.get("socket")
        if isinstance(socket_path, str):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                    client.settimeout(max(0.5, deadline - time.monotonic()))
                    client.connect(socket_path)
                    client.sendall(ACTIVATE)
                    if client.makefile("rb").readline() == ACTIVATED:
                        return True
            except OSError as exc:
                log.info("the running instance did not answer yet: %s", exc)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


@contextlib.contextmanager
def hold_data_folder(data_dir: Path, purpose: str, role: str = "command") -> Iterator[InstanceLock]:
    """Hold the data folder's lock for a command (``purpose`` words the refusal)."""
    lock = InstanceLock(data_dir, role)
    lock.acquire(purpose)
    try:
        yield lock
    finally:
        lock.release()


def _socket_path(data_dir: Path) -> Path:
    """The activation socket: in the data folder, or in a private temporary folder when
    the data folder's path is too long for a socket address."""
    inside = data_dir / SOCKET_FILE
    if len(os.fsencode(inside)) <= _MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"chatdesk-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        # Someone else's folder (or a world-writable one): make a fresh private one.
        folder = Path(tempfile.mkdtemp(prefix="chatdesk-"))
    return folder / f"{digest}.sock"
