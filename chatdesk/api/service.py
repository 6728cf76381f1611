"""The window's local API: off by default, turned on, off or moved to another port live.

It serves from the window's own SessionManager, engine and registry, so sessions made
through the API are the window's sessions (the sidebar hears of them as of any other).
FastAPI and uvicorn are imported only when the API is first turned on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatdesk.api.server import ApiServer
    from chatdesk.chat import ChatEngine
    from chatdesk.providers.registry import ProviderRegistry
    from chatdesk.sessions import SessionManager
    from chatdesk.storage.api_tokens import TokenStore

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class LocalApiService:
    """Starts and stops the API server of the window on 127.0.0.1."""

    def __init__(
        self, manager: SessionManager, engine: ChatEngine, registry: ProviderRegistry
    ) -> None:
        """Nothing is served until :meth:`configure` turns it on."""
        self._manager = manager
        self._engine = engine
        self._registry = registry
        self._tokens: TokenStore | None = None
        self._server: ApiServer | None = None
        # Quick toggles in Settings run one after another, never interleaved.
        self._switching = asyncio.Lock()
        # Why the last attempt to serve failed (e.g. the port is taken), for Settings.
        self.problem: str | None = None

    @property
    def tokens(self) -> TokenStore:
        """The API's tokens (made on first use: the database opens after the first paint)."""
        if self._tokens is None:
            from chatdesk.storage.api_tokens import TokenStore

            self._tokens = TokenStore(self._manager.engine)
        return self._tokens

    @property
    def running(self) -> bool:
        """Whether the API is being served."""
        return self._server is not None and self._server.running

    @property
    def url(self) -> str | None:
        """Where the API is served, while it is."""
        return self._server.url if self._server is not None and self.running else None

    async def configure(self, enabled: bool, port: int) -> None:
        """Serve on ``port`` when ``enabled``, else stop; OSError when it cannot listen."""
        async with self._switching:
            await self._configure(enabled, port)

    async def _configure(self, enabled: bool, port: int) -> None:
        if not enabled:
            self.problem = None
        if self._server is not None and (
            not enabled or self._server.port != port or not self.running
        ):
            await self._stop()
        if not enabled or self._server is not None:
            return
        from chatdesk.api.context import ApiContext
        from chatdesk.api.server import ApiServer

        context = ApiContext(self._manager, self._engine, self._registry, self.tokens)
        server = ApiServer(context, LOOPBACK, port)
        try:
            await server.start()
        except OSError as exc:
            self.problem = (
                f"Cannot serve on port {port}: {exc.strerror or exc}. Choose another port."
            )
            raise
        self.problem = None
        self._server = server

    async def stop(self) -> None:
        """Stop serving; replies the API was writing are stored as cancelled."""
        async with self._switching:
            await self._stop()

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
