"""Serving the API with uvicorn on the running asyncio loop (plain asyncio or qasync)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn

from chatdesk.api.app import create_app
from chatdesk.api.context import ApiContext
from chatdesk.settings import DEFAULT_API_PORT

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = DEFAULT_API_PORT
# How long in-flight requests get to finish once stopping began (replies are stopped
# first, so this is a backstop).
GRACEFUL_SECONDS = 5


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _EmbeddedServer(uvicorn.Server):
    """uvicorn, minus its signal handlers: the program hosting it decides about signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the host's signal handlers alone."""
        yield


class ApiServer:
    """The local API on ``host:port``, served from the current loop until stop()."""

    def __init__(
        self,
        context: ApiContext,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        access_log: bool = False,
    ) -> None:
        """``port`` 0 picks a free port (see :attr:`port` once started)."""
        self.context = context
        self.host = host
        self._port = port
        self._access_log = access_log
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        """The port served on (the one chosen when 0 was asked for)."""
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Bind and start serving; OSError (e.g. the port is taken) when it cannot bind."""
        if self._task is not None:
            raise RuntimeError("the API server is already running")
        # Bound here rather than by uvicorn, which exits the process when it cannot bind.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._socket = socket.create_server((self.host, self._port), family=family)
        config = uvicorn.Config(
            create_app(self.context),
            lifespan="off",
            log_config=None,
            access_log=self._access_log,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            ws="none",
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[self._socket]), name="chatdesk-api")
        while not server.started:
            if self._task.done():
                self._close_socket()
                self._task.result()  # its error, if any
                raise OSError(f"the API server on {self.url} stopped while starting")
            await asyncio.sleep(0.01)
        log.info("local API serving on %s", self.url)

    async def wait_stopped(self) -> None:
        """Return when the server has stopped (normally after stop(); or if it failed)."""
        if self._task is not None:
            await asyncio.wait((self._task,))

    async def stop(self) -> None:
        """Stop the API's replies (stored as cancelled), then the server; waits for both."""
        self.context.cancel_turns()
        task, server = self._task, self._server
        if task is None or server is None:
            return
        server.should_exit = True
        try:
            await task
        except Exception:  # it failed on its own; stopping still completes
            log.exception("the API server failed")
        finally:
            self._task = self._server = None
            self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
