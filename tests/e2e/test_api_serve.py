"""``chatdesk serve`` as a real process, driven over HTTP (httpx) and with the openai SDK.

One server process (over one database and the OpenAI test server) serves this module;
tokens are made with the real ``chatdesk token`` command. Each test makes its own
sessions.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import png_data_url, query
from tests.e2e.api_process import ServeProcess, chatdesk, create_token
from tests.openai_test_server import DEFAULT_REPLY, OpenAITestServer


@dataclass
class World:
    """The running server and what the tests need to reach it."""

    url: str
    db_path: Path
    data_dir: Path
    alice: str
    bob: str
    local_session: str
    revoked: str
    model_server: OpenAITestServer

    def client(self, token: str | None) -> httpx.Client:
        """An HTTP client sending ``token`` (none when None)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def new_session(self, token: str, **fields: Any) -> dict[str, Any]:
        """A session made through the API with ``token``."""
        with self.client(token) as client:
            response = client.post("/api/sessions", json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def session_row(self, session_id: str) -> tuple[Any, ...] | None:
        """(owner, title, message_count) of the stored row, None without one."""
        rows = query(
            self.db_path,
            "SELECT owner, title, message_count FROM sessions WHERE id = ?",
            (session_id,),
        )
        return rows[0] if rows else None

    def message_rows(self, session_id: str) -> list[tuple[Any, ...]]:
        """(role, content, status) of the stored messages, in order."""
        return query(
            self.db_path,
            "SELECT role, content, status FROM messages WHERE session_id = ? ORDER BY position",
            (session_id,),
        )


async def _make_local_session(db_url: str) -> str:
    manager = await SessionManager.open(db_url)
    try:
        session = await manager.create_session("the desktop user's chat")
        await manager.add_message(session.id, "user", "private")
        return session.id
    finally:
        await manager.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``chatdesk serve`` over a fresh data folder, answering with the OpenAI test server."""
    data_dir = tmp_path_factory.mktemp("serve")
    db_path = data_dir / "chat.db"
    alice = create_token(data_dir, "alice")
    bob = create_token(data_dir, "bob")
    local_session = asyncio.run(_make_local_session(sqlite_url(db_path)))
    with OpenAITestServer() as model_server:
        serve = ServeProcess(
            "--data-dir",
            str(data_dir),
            "--base-url",
            model_server.base_url,
            "--model",
            "test-model",
        )
        try:
            # Revoked while the server runs: it must stop working at once.
            revoked = create_token(data_dir, "carol")
            done = chatdesk("token", "revoke", "carol", "--data-dir", str(data_dir))
            assert done.returncode == 0, done.stderr
            yield World(
                serve.url, db_path, data_dir, alice, bob, local_session, revoked, model_server
            )
        finally:
            serve.close()


@pytest.fixture(autouse=True)
def reset_model_server(world: World) -> None:
    """Every test starts with the test server's default script."""
    world.model_server.reset()


SESSION_ENDPOINTS = [
    pytest.param("GET", "/api/sessions/{id}", None, 200, id="get"),
    pytest.param("POST", "/api/sessions/{id}/messages", {"content": "hi"}, 200, id="message"),
    pytest.param("POST", "/api/sessions/{id}/truncate", {"keep_count": 0}, 200, id="truncate"),
    pytest.param("DELETE", "/api/sessions/{id}", None, 204, id="delete"),
]
COMPLETION = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
OTHER_ENDPOINTS = [
    pytest.param("GET", "/api/sessions", None, 200, id="list"),
    pytest.param("POST", "/api/sessions", {"title": "t"}, 201, id="create"),
    pytest.param("GET", "/v1/models", None, 200, id="models"),
    pytest.param("POST", "/v1/chat/completions", COMPLETION, 200, id="completions"),
]


def call(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """One request; ``body`` is sent as JSON when given."""
    return (
        client.request(method, path, json=body)
        if body is not None
        else client.request(method, path)
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), SESSION_ENDPOINTS + OTHER_ENDPOINTS
)
@pytest.mark.parametrize("token", ["none", "unknown", "revoked"])
def test_every_endpoint_refuses_a_caller_without_a_valid_token(
    world: World, method: str, path: str, body: Any, expected: int, token: str
) -> None:
    session = world.new_session(world.alice, title="kept")
    sent = {"none": None, "unknown": "cd_" + uuid.uuid4().hex, "revoked": world.revoked}[token]
    requests_before = len(world.model_server.requests)
    with world.client(sent) as client:
        response = call(client, method, path.format(id=session["id"]), body)
    assert response.status_code == 403, response.text
    assert "token" in response.json()["detail"]
    assert world.session_row(session["id"]) == ("alice", "kept", 0)
    assert len(world.model_server.requests) == requests_before


@pytest.mark.parametrize(("method", "path", "body", "expected"), SESSION_ENDPOINTS)
def test_another_owners_session_answers_exactly_like_a_missing_one(
    world: World, method: str, path: str, body: Any, expected: int
) -> None:
    theirs = world.new_session(world.alice, title="alice's")
    with world.client(world.bob) as bob:
        missing = call(bob, method, path.format(id=uuid.uuid4().hex), body)
        foreign = call(bob, method, path.format(id=theirs["id"]), body)
        desktop = call(bob, method, path.format(id=world.local_session), body)
    assert missing.status_code == foreign.status_code == desktop.status_code == 404
    assert missing.content == foreign.content == desktop.content
    assert world.session_row(theirs["id"]) == ("alice", "alice's", 0)
    assert world.session_row(world.local_session) == ("local", "the desktop user's chat", 1)
    assert world.message_rows(world.local_session) == [("user", "private", "complete")]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), SESSION_ENDPOINTS + OTHER_ENDPOINTS
)
def test_every_endpoint_works_for_the_owner(
    world: World, method: str, path: str, body: Any, expected: int
) -> None:
    mine = world.new_session(world.alice, title="mine")
    with world.client(world.alice) as client:
        response = call(client, method, path.format(id=mine["id"]), body)
    assert response.status_code == expected, response.text
    if path == "/api/sessions/{id}/messages":
        assert response.json()["content"] == DEFAULT_REPLY
        assert world.message_rows(mine["id"]) == [
            ("user", "hi", "complete"),
            ("assistant", DEFAULT_REPLY, "complete"),
        ]
    if method == "DELETE":
        assert world.session_row(mine["id"]) is None
    if path == "/api/sessions" and method == "POST":
        assert world.session_row(response.json()["id"]) == ("alice", "t", 0)


def test_the_list_holds_the_callers_sessions_only(world: World) -> None:
    mine = world.new_session(world.alice, title="a")
    theirs = world.new_session(world.bob, title="b")
    with world.client(world.alice) as client:
        listed = client.get("/api/sessions").json()
    ids = {s["id"] for s in listed}
    assert mine["id"] in ids
    assert theirs["id"] not in ids and world.local_session not in ids
    assert {s["owner"] for s in listed} == {"alice"}


def test_truncate_never_reports_more_messages_than_exist(world: World) -> None:
    session = world.new_session(world.alice)
    with world.client(world.alice) as client:
        path = f"/api/sessions/{session['id']}"
        assert client.post(f"{path}/messages", json={"content": "one"}).status_code == 200
        clamped = client.post(f"{path}/truncate", json={"keep_count": 50})
        assert clamped.json() == {"message_count": 2}
        assert world.session_row(session["id"])[2] == 2
        cut = client.post(f"{path}/truncate", json={"keep_count": 1})
        assert cut.json() == {"message_count": 1}
        assert world.session_row(session["id"])[2] == 1
        assert world.message_rows(session["id"]) == [("user", "one", "complete")]
        negative = client.post(f"{path}/truncate", json={"keep_count": -1})
        assert negative.status_code == 422
    assert world.session_row(session["id"])[2] == 1


def parse_events(lines: Iterator[str]) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events as (event, data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert kind is not None
            events.append((kind, json.loads(line.removeprefix("data: "))))
            kind = None
    return events


def test_a_streamed_turn_sends_deltas_then_the_stored_reply(world: World) -> None:
    world.model_server.reply = "one two three four"
    session = world.new_session(world.alice, system_prompt="Be brief.")
    with (
        world.client(world.alice) as client,
        client.stream(
            "POST",
            f"/api/sessions/{session['id']}/messages",
            json={"content": "go", "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(response.iter_lines())
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert deltas == ["one ", "two ", "three ", "four"]
    kind, message = events[-1]
    assert kind == "message"
    assert (message["role"], message["content"], message["status"]) == (
        "assistant",
        "one two three four",
        "complete",
    )
    assert world.message_rows(session["id"])[-1] == ("assistant", "one two three four", "complete")
    sent = world.model_server.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}


def test_image_content_comes_back_as_blocks(world: World) -> None:
    session = world.new_session(world.alice)
    blocks = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
    ]
    with world.client(world.alice) as client:
        path = f"/api/sessions/{session['id']}"
        assert client.post(f"{path}/messages", json={"content": blocks}).status_code == 200
        stored = client.get(path).json()
    assert stored["messages"][0]["content"] == blocks
    assert stored["message_count"] == 2


def test_bad_input_is_refused_with_a_message_and_nothing_stored(world: World) -> None:
    session = world.new_session(world.alice)
    path = f"/api/sessions/{session['id']}/messages"
    with world.client(world.alice) as client:
        bad_block = client.post(path, json={"content": [{"type": "video"}]})
        no_content = client.post(path, json={"text": "hi"})
        not_json = client.post(path, content=b"{", headers={"Content-Type": "application/json"})
        huge = client.post(
            path,
            content=b"x" * (20 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
        chunk = b"x" * (1024 * 1024)
        huge_chunked = client.post(
            path, content=iter([chunk] * 21), headers={"Content-Type": "application/json"}
        )
        unknown_model = client.post("/api/sessions", json={"model": "no-such-model"})
    assert bad_block.status_code == 400 and "unknown block type" in bad_block.json()["detail"]
    assert no_content.status_code == 422 and "content" in no_content.json()["detail"]
    assert not_json.status_code == 422
    assert huge.status_code == 413 and "20 MB" in huge.json()["detail"]
    assert huge_chunked.status_code == 413
    assert unknown_model.status_code == 400
    assert world.message_rows(session["id"]) == []


def test_the_openai_sdk_lists_models_and_completes_with_them(world: World) -> None:
    client = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.alice, max_retries=0)
    try:
        models = {m.id for m in client.models.list()}
        assert {"local", "test-model"} <= models
        completion = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hello"}]
        )
        assert completion.choices[0].message.content == DEFAULT_REPLY
        world.model_server.reply = "streamed back to you"
        stream = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hello"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "streamed back to you"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hello"}]
            )
    finally:
        client.close()
    wrong = openai.OpenAI(base_url=f"{world.url}/v1", api_key="cd_wrong", max_retries=0)
    try:
        with pytest.raises(openai.PermissionDeniedError):
            wrong.models.list()
    finally:
        wrong.close()


def test_the_openapi_document_describes_the_routes(world: World) -> None:
    with world.client(None) as client:
        document = client.get("/openapi.json").json()
    assert {"/api/sessions", "/api/sessions/{session_id}/truncate", "/v1/chat/completions"} <= set(
        document["paths"]
    )


def test_a_caller_without_a_token_learns_nothing_even_from_a_bad_request(world: World) -> None:
    with world.client(None) as client:
        bad_body = client.post(f"/api/sessions/{world.local_session}/truncate", json={"x": -1})
        bad_model = client.post("/v1/chat/completions", json={"model": 1})
    assert bad_body.status_code == bad_model.status_code == 403
