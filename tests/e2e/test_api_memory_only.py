"""A session that lives only in memory (its row deleted behind the manager's back).

That state cannot be made from outside a process, so this test serves the real FastAPI
app with a real uvicorn on 127.0.0.1 from the test's own loop, over a real database file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatdesk.api.context import ApiContext
from chatdesk.api.server import ApiServer
from chatdesk.chat import ChatEngine
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences, sqlite_url
from chatdesk.storage.api_tokens import TokenStore
from tests.core.conftest import query
from tests.openai_test_server import OpenAITestServer


@pytest.fixture
async def served(
    tmp_path: Path, openai_server: OpenAITestServer
) -> AsyncIterator[tuple[ApiServer, SessionManager, Path]]:
    """The API over a fresh database, served on a free port of 127.0.0.1."""
    db_path = tmp_path / "chat.db"
    manager = await SessionManager.open(sqlite_url(db_path))
    preferences = Preferences(default_provider=openai_server.base_url, default_model="test-model")
    registry = ProviderRegistry(preferences)
    engine = ChatEngine(manager, registry.resolve_default()[0], resolve_provider=registry.resolve)
    context = ApiContext(manager, engine, registry, TokenStore(manager.engine))
    server = ApiServer(context, "127.0.0.1", 0)
    await server.start()
    try:
        yield server, manager, db_path
    finally:
        await server.stop()
        await engine.close()
        await registry.close()
        await manager.close()


async def test_a_memory_only_session_is_listed_and_deleted_by_its_owner_only(
    served: tuple[ApiServer, SessionManager, Path],
) -> None:
    server, manager, db_path = served
    alice = await server.context.tokens.create("alice")
    bob = await server.context.tokens.create("bob")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        as_alice = {"Authorization": f"Bearer {alice}"}
        as_bob = {"Authorization": f"Bearer {bob}"}
        made = await client.post("/api/sessions", json={"title": "ghost"}, headers=as_alice)
        session_id = made.json()["id"]
        kept = await client.post("/api/sessions", json={"title": "stored"}, headers=as_alice)
        # The row goes behind the manager's back; the session stays in its memory.
        query(db_path, "DELETE FROM sessions WHERE id = ?", (session_id,))
        assert await manager.get_session(session_id) is not None

        listed = (await client.get("/api/sessions", headers=as_alice)).json()
        assert {s["id"] for s in listed} == {session_id, kept.json()["id"]}
        assert (await client.get("/api/sessions", headers=as_bob)).json() == []

        missing = await client.delete(f"/api/sessions/{'0' * 32}", headers=as_bob)
        for method in ("GET", "DELETE"):
            foreign = await client.request(method, f"/api/sessions/{session_id}", headers=as_bob)
            assert (foreign.status_code, foreign.content) == (404, missing.content)
        assert await manager.get_session(session_id) is not None

        shown = await client.get(f"/api/sessions/{session_id}", headers=as_alice)
        assert shown.status_code == 200 and shown.json()["title"] == "ghost"
        deleted = await client.delete(f"/api/sessions/{session_id}", headers=as_alice)
        assert deleted.status_code == 204
        assert await manager.get_session(session_id) is None
        listed = (await client.get("/api/sessions", headers=as_alice)).json()
        assert [s["id"] for s in listed] == [kept.json()["id"]]
        again = await client.delete(f"/api/sessions/{session_id}", headers=as_alice)
        assert again.status_code == 404


async def test_the_stored_owner_decides_over_the_copy_in_memory(
    served: tuple[ApiServer, SessionManager, Path],
) -> None:
    server, manager, db_path = served
    alice = await server.context.tokens.create("alice")
    session = await manager.create_session("the desktop user's", owner="local")
    # A copy in memory claiming another owner does not open the stored row to it.
    session.owner = "alice"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {alice}"}
        assert (await client.get(f"/api/sessions/{session.id}", headers=headers)).status_code == 404
        assert (await client.get("/api/sessions", headers=headers)).json() == []
        deleted = await client.delete(f"/api/sessions/{session.id}", headers=headers)
        assert deleted.status_code == 404
    assert query(db_path, "SELECT owner FROM sessions WHERE id = ?", (session.id,)) == [("local",)]
