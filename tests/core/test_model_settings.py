"""The model settings rules (servers and keys, local model files, the default model, a
new chat's model) over real preferences, a real settings file and a real key store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import null

from chatdesk.model_settings import (
    ModelSettings,
    SettingsRefused,
    check_gguf_file,
    describe_models,
    fetch_models,
    new_chat_model,
)
from chatdesk.providers.base import ProviderError
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.secrets import SecretStore
from chatdesk.settings import LOCAL_PROVIDER, Preferences, ServerConfig
from tests.openai_test_server import OpenAITestServer

URL = "https://api.example.com/v1"


@pytest.fixture(autouse=True)
def no_keyring() -> Iterator[None]:
    """A machine without a keyring: keys live in this run's memory or the settings file."""
    original = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(original)


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """Where the preferences (and keys stored in the file) are written."""
    return tmp_path / "settings.json"


@pytest.fixture
def settings(settings_file: Path) -> ModelSettings:
    """Model settings over fresh preferences saved to ``settings_file``."""
    preferences = Preferences()
    secrets = SecretStore(settings_file)
    registry = ProviderRegistry(preferences, secrets)
    return ModelSettings(registry, lambda: preferences.save(settings_file), secrets)


def gguf(path: Path) -> Path:
    """A file with the GGUF header (not a loadable model; only its header is checked)."""
    path.write_bytes(b"GGUF" + bytes(60))
    return path


def test_a_new_chat_gets_the_default_model_and_a_servers_first_model_when_none_is_named() -> None:
    preferences = Preferences()
    assert new_chat_model(preferences) == (LOCAL_PROVIDER, None)
    preferences.servers.append(ServerConfig(URL, "Office", ["alpha", "beta"]))
    preferences.default_provider = URL
    assert new_chat_model(preferences) == (URL, "alpha")
    preferences.default_model = "beta"
    assert new_chat_model(preferences) == (URL, "beta")
    preferences.default_provider, preferences.default_model = "https://gone.example/v1", None
    assert new_chat_model(preferences) == ("https://gone.example/v1", None)


def test_adding_a_server_keeps_its_key_and_saves_it_once(
    settings: ModelSettings, settings_file: Path
) -> None:
    server = settings.add_server(
        URL + "/", ["alpha"], name="Office", key="sk-1", persist_key_in_file=True
    )
    assert server.base_url == URL
    assert Preferences.load(settings_file).server(URL) is not None
    assert SecretStore(settings_file).get(URL) == "sk-1"
    with pytest.raises(SettingsRefused, match="already in the list"):
        settings.add_server(URL, ["alpha"])
    with pytest.raises(SettingsRefused, match="base URL first"):
        settings.check_new_server("   ")
    assert len(settings.preferences.servers) == 1


def test_removing_a_server_removes_its_key_and_a_default_on_it(
    settings: ModelSettings, settings_file: Path
) -> None:
    settings.add_server(URL, ["alpha"], key="sk-1", persist_key_in_file=True)
    settings.set_default(URL, "alpha")
    removed = settings.remove_server(URL)
    assert removed is not None and removed.base_url == URL
    assert SecretStore(settings_file).get(URL) is None
    saved = Preferences.load(settings_file)
    assert saved.servers == []
    assert (saved.default_provider, saved.default_model) == (LOCAL_PROVIDER, None)
    assert settings.remove_server(URL) is None


def test_a_servers_new_model_list_is_kept_unless_the_server_is_gone(
    settings: ModelSettings, settings_file: Path
) -> None:
    settings.add_server(URL, ["alpha"])
    settings.update_server_models(URL, ["alpha", "gamma"])
    assert Preferences.load(settings_file).servers[0].models == ["alpha", "gamma"]
    settings.remove_server(URL)
    assert settings.update_server_models(URL, ["delta"]) is None
    assert settings.preferences.servers == []


def test_only_a_readable_gguf_file_becomes_a_local_model(
    settings: ModelSettings, settings_file: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.gguf"
    text.write_bytes(b"hello, not a model")
    with pytest.raises(SettingsRefused, match="wrong file header"):
        check_gguf_file(text)
    with pytest.raises(SettingsRefused, match=r"not a \.gguf model file"):
        check_gguf_file(tmp_path / "missing.gguf")
    with pytest.raises(SettingsRefused, match=r"not a \.gguf model file"):
        check_gguf_file(gguf(tmp_path / "model.bin"))

    model = gguf(tmp_path / "tiny.gguf")
    assert settings.add_local_model(model) == str(model.resolve())
    with pytest.raises(SettingsRefused, match="already in the list"):
        settings.add_local_model(model)
    assert Preferences.load(settings_file).local_models == [str(model.resolve())]


def test_removing_the_default_local_model_falls_back_to_the_bundled_one(
    settings: ModelSettings, settings_file: Path, tmp_path: Path
) -> None:
    path = settings.add_local_model(gguf(tmp_path / "tiny.gguf"))
    settings.set_default(LOCAL_PROVIDER, path)
    assert settings.remove_local_model(path)
    saved = Preferences.load(settings_file)
    assert saved.local_models == []
    assert (saved.default_provider, saved.default_model) == (LOCAL_PROVIDER, None)
    assert not settings.remove_local_model(path)
    assert (tmp_path / "tiny.gguf").exists()  # the file itself is left alone


async def test_fetching_models_asks_the_server_and_says_so_in_words(
    openai_server: OpenAITestServer,
) -> None:
    models = await fetch_models(openai_server.base_url, None)
    assert models == sorted(openai_server.models)
    assert describe_models(models).startswith(f"Connected: {len(models)} model")
    assert describe_models([]) == "Connected, but the server lists no models."
    assert describe_models(list("abcdef")).endswith("(a, b, c, d and 2 more).")
    with pytest.raises(ProviderError):
        await fetch_models("http://127.0.0.1:9/v1", None)  # the discard port: nobody listens
