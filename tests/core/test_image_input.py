"""Which models see images: what servers report, what a refusal teaches, what the user
sets; and what a text-only model is sent (issue #13, defect 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatdesk.context import model_key
from chatdesk.model_settings import ModelSettings, SettingsRefused
from chatdesk.providers.base import (
    IMAGE_OMITTED,
    ImagesNotSupportedError,
    ServerError,
    images_refused,
)
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.runtime import Core, open_core
from chatdesk.settings import LOCAL_PROVIDER, Preferences, model_settings_key, parse_startup_options
from tests.core.conftest import drain, png_data_url
from tests.openai_test_server import OpenAITestServer

IMAGE_QUESTION = [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": png_data_url()}},
]


@pytest.mark.parametrize("where", ["models", "llama.cpp", "lmstudio", "ollama"])
@pytest.mark.parametrize("sees", [True, False])
async def test_a_server_that_reports_image_input_is_believed(
    openai_server: OpenAITestServer, where: str, sees: bool
) -> None:
    openai_server.report_images = where
    openai_server.sees_images = sees
    provider = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    try:
        assert provider.reported_image_input(openai_server.model) is None  # not asked yet
        assert await provider.reads_images(openai_server.model) is sees
        assert provider.reported_image_input(openai_server.model) is sees
    finally:
        await provider.close()


async def test_one_probe_answers_both_the_window_and_images(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.report_window = "llama.cpp"
    openai_server.context_window = 2048
    openai_server.report_images = "llama.cpp"
    openai_server.sees_images = True
    provider = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    try:
        assert await provider.context_window(openai_server.model) == 2048
        assert provider.reported_image_input(openai_server.model) is True
    finally:
        await provider.close()


async def test_a_server_that_says_nothing_leaves_image_input_unknown(
    openai_server: OpenAITestServer,
) -> None:
    provider = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    try:
        assert await provider.reads_images(openai_server.model) is None
    finally:
        await provider.close()


def test_refusals_of_images_are_recognised_in_servers_words() -> None:
    for said in (
        "image input is not supported - hint: if this is unexpected, you may need the mmproj",
        "Model does not support images. Please use a model that does.",
        "Qwen/Qwen2-7B is not a multimodal model",
        "Invalid content type. image_url is only supported by certain models.",
    ):
        assert images_refused(said), said
    for said in ("This model's maximum context length is 1024 tokens.", "Bad gateway"):
        assert not images_refused(said), said


def registry_for(server: OpenAITestServer, preferences: Preferences) -> ProviderRegistry:
    preferences.default_provider = server.base_url
    preferences.default_model = server.model
    return ProviderRegistry(preferences)


async def test_the_settings_switch_wins_over_what_the_server_reports(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.report_images = "ollama"
    openai_server.sees_images = False
    preferences = Preferences()
    registry = registry_for(openai_server, preferences)
    saves: list[int] = []
    settings = ModelSettings(registry, lambda: saves.append(1))
    try:
        url, model = openai_server.base_url, openai_server.model
        support = await settings.learn_image_support(url, model)
        assert (support.sees, support.source) == (False, "as its server reports")
        settings.set_image_input(url, model, True)
        assert settings.image_support(url, model).sees is True
        assert preferences.image_input == {model_settings_key(url, model): True}
        settings.set_image_input(url, model, None)
        assert settings.image_support(url, model).sees is False
        assert saves == [1, 1]
        with pytest.raises(SettingsRefused, match="text only"):
            settings.set_image_input(LOCAL_PROVIDER, None, True)
        assert settings.image_support(LOCAL_PROVIDER, None).sees is False
    finally:
        await registry.close()


def test_image_settings_survive_a_restart_and_bad_values_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    preferences = Preferences(image_input={"http://x/v1 m": False}, learned_text_only=["a b"])
    preferences.save(path)
    loaded = Preferences.load(path)
    assert loaded.image_input == {"http://x/v1 m": False}
    assert loaded.learned_text_only == ["a b"]
    path.write_text(json.dumps({"image_input": {"k": "yes", "j": True}}), encoding="utf-8")
    assert Preferences.load(path).image_input == {"j": True}


async def open_serve_core(
    tmp_path: Path, server: OpenAITestServer, *, name_model: bool = True
) -> Core:
    model = ["--model", server.model] if name_model else []
    options = parse_startup_options(
        ["--data-dir", str(tmp_path), "--base-url", server.base_url, *model], environ={}
    )
    return await open_core(options)


async def test_a_model_set_to_text_only_gets_a_note_in_place_of_each_image(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    key = model_settings_key(openai_server.base_url, openai_server.model)
    (tmp_path / "settings.json").write_text(
        json.dumps({"image_input": {key: False}}), encoding="utf-8"
    )
    core = await open_serve_core(tmp_path, openai_server)
    try:
        session = await core.manager.create_session("picture")
        await drain(core.engine.send(session.id, IMAGE_QUESTION))
        sent = openai_server.requests[-1]["messages"][-1]
        assert sent["content"] == f"What is in this picture?\n{IMAGE_OMITTED}"
        # What the user sent is kept whole: another model may see it later.
        stored = (await core.manager.require_session(session.id)).history[0]
        assert stored.content == IMAGE_QUESTION
    finally:
        await core.close()


async def test_images_go_whole_to_a_model_that_sees_them(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    openai_server.report_images = "models"
    openai_server.sees_images = True
    core = await open_serve_core(tmp_path, openai_server)
    try:
        session = await core.manager.create_session("picture")
        await drain(core.engine.send(session.id, IMAGE_QUESTION))
        assert openai_server.requests[-1]["messages"][-1]["content"] == IMAGE_QUESTION
    finally:
        await core.close()


async def test_a_refusal_of_images_is_said_in_words_and_remembered(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    openai_server.refuse_images = True
    core = await open_serve_core(tmp_path, openai_server)
    try:
        session = await core.manager.create_session("picture")
        with pytest.raises(ImagesNotSupportedError, match="cannot see images"):
            await drain(core.engine.send(session.id, IMAGE_QUESTION))
        provider, model = core.registry.resolve(session)
        support = core.registry.image_support(provider, model)
        assert (support.sees, support.source) == (False, "its server refused images before")
    finally:
        await core.close()
    saved = json.loads((tmp_path / "settings.json").read_text(encoding="utf-8"))
    assert saved["learned_text_only"] == [model_key(provider, model)]


@pytest.mark.parametrize("name_model", [True, False], ids=["--model", "first-model"])
async def test_a_server_failing_on_images_is_found_out_and_remembered(
    tmp_path: Path, openai_server: OpenAITestServer, name_model: bool
) -> None:
    # What llama-cpp-python's own server does with a text-only model (found trying it,
    # started as `serve --base-url` without a model: the refusal is kept under the name
    # of the server's first model, which the model is only known by once it was asked).
    openai_server.fail_on_content_lists = True
    core = await open_serve_core(tmp_path, openai_server, name_model=name_model)
    try:
        session = await core.manager.create_session("picture")
        with pytest.raises(ImagesNotSupportedError, match="answers the same chat without them"):
            await drain(core.engine.send(session.id, IMAGE_QUESTION))
        # It was asked once more, without the images, and answered.
        assert openai_server.requests[-1]["messages"][-1]["content"] == (
            f"What is in this picture?\n{IMAGE_OMITTED}"
        )
        provider, model = core.registry.resolve(session)
        assert core.registry.image_support(provider, model).sees is False
        # The next image is left out (the window asks first) and the chat goes on.
        await drain(core.engine.send(session.id, IMAGE_QUESTION))
        stored = (await core.manager.require_session(session.id)).history
        assert stored[-1].role == "assistant" and stored[-1].status == "complete"
    finally:
        await core.close()


async def test_a_server_error_that_is_not_about_the_images_stays_what_it_is(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    openai_server.status = 500
    core = await open_serve_core(tmp_path, openai_server)
    try:
        session = await core.manager.create_session("picture")
        with pytest.raises(ServerError) as failed:
            await drain(core.engine.send(session.id, IMAGE_QUESTION))
        assert not isinstance(failed.value, ImagesNotSupportedError)
        provider, model = core.registry.resolve(session)
        assert core.registry.image_support(provider, model).sees is None
    finally:
        await core.close()


async def test_the_switches_of_a_server_given_without_a_model_reach_the_model_that_answers(
    openai_server: OpenAITestServer,
) -> None:
    # --base-url alone: the model is the server's first, named once the server is asked.
    preferences = Preferences(default_provider=openai_server.base_url)
    registry = ProviderRegistry(preferences)
    settings = ModelSettings(registry, lambda: None)
    try:
        named = await registry.name_default_model()
        assert named == "other-model"  # the first the test server lists, sorted
        settings.set_image_input(openai_server.base_url, None, True)
        settings.set_context_window(openai_server.base_url, None, 2048)
        provider, model = registry.resolve_default()
        # What the engine looks up, by the model that answers.
        assert registry.image_support(provider, model).sees is True
        assert preferences.context_window(model_key(provider, model)) == 2048
    finally:
        await registry.close()


async def test_a_server_failing_with_tools_offered_is_asked_again_with_them(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    # The check without the images keeps the tools: were they what failed, the images
    # would be wrongly blamed (and the model remembered as text only).
    openai_server.fail_on_content_lists = True
    core = await open_serve_core(tmp_path, openai_server)
    try:
        session = await core.manager.create_session("picture")
        with pytest.raises(ImagesNotSupportedError):
            await drain(core.engine.send(session.id, IMAGE_QUESTION))
        check = openai_server.requests[-1]
        assert check["stream"] is False and check["tools"]
    finally:
        await core.close()
