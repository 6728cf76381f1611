"""What a user met trying ``chatdesk serve`` against servers the team did not write.

One real ``chatdesk serve`` process, started with ``--base-url`` alone (no ``--model``),
over the OpenAI test server; driven with httpx and the openai SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.api_process import ServeProcess, create_token
from tests.openai_test_server import OpenAITestServer


@dataclass
class Served:
    """The serve process's URL, a token of its, and the model server behind it."""

    url: str
    token: str
    model_server: OpenAITestServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``chatdesk serve --base-url URL`` over a fresh data folder."""
    data_dir = tmp_path_factory.mktemp("trial")
    token = create_token(data_dir, "alice")
    with OpenAITestServer() as model_server:
        serve = ServeProcess("--data-dir", str(data_dir), "--base-url", model_server.base_url)
        try:
            yield Served(serve.url, token, model_server)
        finally:
            serve.close()


def test_a_server_named_by_base_url_alone_offers_its_models_to_api_clients(
    served: Served,
) -> None:
    # It answered turns with that server but listed only `local` on /v1/models, so no
    # OpenAI client could name the server's models.
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.token, max_retries=0)
    try:
        models = {m.id for m in client.models.list()}
        assert {"local", "test-model", "other-model"} <= models
        served.model_server.reply = "from the other one"
        completion = client.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "hello"}]
        )
        assert completion.choices[0].message.content == "from the other one"
        assert served.model_server.requests[-1]["model"] == "other-model"
    finally:
        client.close()


@pytest.mark.parametrize(
    "content",
    ["", "  \n ", [], [{"type": "text", "text": " "}]],
    ids=["empty", "blank", "no-blocks", "blank-block"],
)
def test_an_empty_message_is_refused_and_nothing_is_stored(served: Served, content: object) -> None:
    # An empty message was stored and sent to the model, which answered it.
    headers = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.url, headers=headers, timeout=30) as client:
        session = client.post("/api/sessions", json={}).json()
        asked = len(served.model_server.requests)
        refused = client.post(f"/api/sessions/{session['id']}/messages", json={"content": content})
        assert refused.status_code == 400
        assert "empty" in refused.json()["detail"]
        assert client.get(f"/api/sessions/{session['id']}").json()["messages"] == []
        assert len(served.model_server.requests) == asked


def test_a_too_long_request_a_server_streams_back_empty_is_an_error_not_an_empty_reply(
    served: Served,
) -> None:
    # llama-cpp-python's server streams an empty 200 for a too-long request; /v1 passed
    # that on as an empty reply with finish_reason "stop", streamed or not.
    served.model_server.context_window = 20
    served.model_server.empty_stream_when_too_long = True
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.token, max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "word " * 100}]
    try:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="test-model", messages=messages)
        assert "too long" in str(refused.value)
        stream = client.chat.completions.create(model="test-model", messages=messages, stream=True)
        with pytest.raises(openai.APIError) as broken:
            for _chunk in stream:
                pass
        assert "too long" in str(broken.value)
        short = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert short.choices[0].message.content == served.model_server.reply
    finally:
        client.close()
        served.model_server.reset()
