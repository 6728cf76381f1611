"""The core ``chatdesk serve`` builds (runtime.open_core) honours the per-model settings.

Found trying ``chatdesk serve``: the window applied Settings' context window and tools
switch per model and remembered windows servers stated, the headless core did not.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatdesk.context import model_key
from chatdesk.runtime import open_core
from chatdesk.settings import model_settings_key, parse_startup_options
from tests.core.conftest import drain
from tests.openai_test_server import OpenAITestServer


async def test_serves_core_uses_the_windows_and_tools_switch_set_per_model(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    key = model_settings_key(openai_server.base_url, openai_server.model)
    (tmp_path / "settings.json").write_text(
        json.dumps({"context_windows": {key: 1234}, "tools_off": [key]}), encoding="utf-8"
    )
    options = parse_startup_options(
        [
            "--data-dir",
            str(tmp_path),
            "--base-url",
            openai_server.base_url,
            "--model",
            "test-model",
        ],
        environ={},
    )
    core = await open_core(options)
    try:
        provider, model = core.registry.resolve_default()
        assert model_key(provider, model) == key
        assert await core.engine.context_windows.window(provider, model) == 1234
        session = await core.manager.create_session("no tools")
        await drain(core.engine.send(session.id, "hello"))
        assert "tools" not in openai_server.requests[-1]
    finally:
        await core.close()


async def test_serves_core_remembers_a_window_a_server_stated(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    options = parse_startup_options(
        [
            "--data-dir",
            str(tmp_path),
            "--base-url",
            openai_server.base_url,
            "--model",
            "test-model",
        ],
        environ={},
    )
    core = await open_core(options)
    try:
        session = await core.manager.create_session("too long once")
        for i in range(4):
            await core.manager.add_message(session.id, "user", f"question {i} " + "lorem " * 20)
            await core.manager.add_message(session.id, "assistant", f"answer {i} " + "ipsum " * 20)
        openai_server.context_errors = 1
        openai_server.stated_limit = 4096
        await drain(core.engine.send(session.id, "and now?"))
    finally:
        await core.close()
    saved = json.loads((tmp_path / "settings.json").read_text(encoding="utf-8"))
    key = model_settings_key(openai_server.base_url, "test-model")
    assert saved["learned_context_windows"] == {key: 4096}
    # The run's --base-url/--model stay this run's choice, not the saved default.
    assert saved.get("default_provider", "local") == "local"
