"""What a user met trying ``chatdesk serve`` against servers the team did not write.

A real ``chatdesk serve`` process over the OpenAI test server, driven with the openai SDK.
"""

from __future__ import annotations

from pathlib import Path

import openai

from tests.e2e.api_process import ServeProcess, create_token
from tests.openai_test_server import OpenAITestServer


def test_a_server_named_by_base_url_alone_offers_its_models_to_api_clients(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    # `chatdesk serve --base-url URL` without --model answered turns with that server but
    # listed only `local` on /v1/models, so no OpenAI client could name its models.
    token = create_token(tmp_path, "alice")
    serve = ServeProcess("--data-dir", str(tmp_path), "--base-url", openai_server.base_url)
    client = openai.OpenAI(base_url=f"{serve.url}/v1", api_key=token, max_retries=0)
    try:
        models = {m.id for m in client.models.list()}
        assert {"local", "test-model", "other-model"} <= models
        openai_server.reply = "from the other one"
        completion = client.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "hello"}]
        )
        assert completion.choices[0].message.content == "from the other one"
        assert openai_server.requests[-1]["model"] == "other-model"
    finally:
        client.close()
        serve.close()
