"""The window's local API switch: off by default, on, moved to another port, off."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from chatdesk.api.service import LocalApiService
from chatdesk.chat import ChatEngine
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def service(manager: SessionManager) -> AsyncIterator[LocalApiService]:
    """The switch over the test's manager (the local model is never asked here)."""
    registry = ProviderRegistry(Preferences())
    engine = ChatEngine(manager, registry.resolve_default()[0], resolve_provider=registry.resolve)
    built = LocalApiService(manager, engine, registry)
    yield built
    await built.stop()
    await registry.close()


async def test_the_switch_serves_the_managers_sessions_and_stops(
    service: LocalApiService, manager: SessionManager
) -> None:
    assert not service.running and service.url is None
    token = await service.tokens.create("script")
    first, second = free_port(), free_port()
    await service.configure(True, first)
    assert service.url == f"http://127.0.0.1:{first}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        made = await client.post(f"{service.url}/api/sessions", json={"title": "via API"})
        assert made.status_code == 201
        session = await manager.get_session(made.json()["id"])
        assert session is not None and session.owner == "script"

        await service.configure(True, second)
        assert service.url == f"http://127.0.0.1:{second}"
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{first}/api/sessions")
        listed = await client.get(f"{service.url}/api/sessions")
        assert [s["title"] for s in listed.json()] == ["via API"]

        await service.configure(False, second)
        assert not service.running
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{second}/api/sessions")


async def test_a_port_in_use_is_an_error_and_nothing_is_served(service: LocalApiService) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await service.configure(True, taken.getsockname()[1])
    assert not service.running
