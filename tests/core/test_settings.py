"""Start-up options and preferences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatdesk.presets import ChatPreset
from chatdesk.settings import (
    OPENAI_BASE_URL,
    Preferences,
    ServerConfig,
    default_data_dir,
    parse_startup_options,
    sqlite_url,
)


def test_defaults_use_the_user_data_directory() -> None:
    options = parse_startup_options([], environ={})
    assert options.data_dir == default_data_dir()
    assert options.data_dir.name == "chatdesk"
    assert options.database_url == sqlite_url(default_data_dir() / "chat.db")
    assert options.provider is None and options.base_url is None


def test_data_dir_and_database_url_override(tmp_path: Path) -> None:
    options = parse_startup_options(["--data-dir", str(tmp_path)], environ={})
    assert options.database_url == sqlite_url(tmp_path / "chat.db")
    assert options.preferences_path == tmp_path / "settings.json"
    env = {"CHATDESK_DATABASE_URL": "sqlite+aiosqlite:///elsewhere.db"}
    assert parse_startup_options([], environ=env).database_url == env["CHATDESK_DATABASE_URL"]
    explicit = parse_startup_options(["--database-url", "sqlite:///x.db"], environ=env)
    assert explicit.database_url == "sqlite:///x.db"


def test_openai_server_from_the_environment() -> None:
    env = {
        "CHATDESK_BASE_URL": "http://127.0.0.1:11434/v1",
        "CHATDESK_MODEL": "llama3",
        "OPENAI_API_KEY": "sk-test",
    }
    options = parse_startup_options([], environ=env)
    assert (options.provider, options.base_url, options.model, options.api_key) == (
        "openai",
        "http://127.0.0.1:11434/v1",
        "llama3",
        "sk-test",
    )
    local = parse_startup_options(["--provider", "local", "--model", "my.gguf"], environ=env)
    assert (local.provider, local.model) == ("local", "my.gguf")
    # --provider openai alone means OpenAI's own API, with the key from OPENAI_API_KEY.
    hosted = parse_startup_options(["--provider", "openai"], environ={"OPENAI_API_KEY": "sk-x"})
    assert (hosted.provider, hosted.base_url, hosted.api_key) == (
        "openai",
        OPENAI_BASE_URL,
        "sk-x",
    )


def test_self_test_uses_a_temporary_data_dir() -> None:
    options = parse_startup_options(["--self-test"], environ={})
    assert options.self_test
    assert options.data_dir != default_data_dir()
    assert options.data_dir.is_dir()


def test_preferences_round_trip_and_survive_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    prefs = Preferences(
        servers=[ServerConfig("http://127.0.0.1:8080/v1", "llama.cpp", ["qwen"])],
        default_provider="http://127.0.0.1:8080/v1",
        default_model="qwen",
        window={"splitter": [250, 750]},
    )
    prefs.save(path)
    assert Preferences.load(path) == prefs
    path.write_text("{not json", encoding="utf-8")
    assert Preferences.load(path) == Preferences()
    assert Preferences.load(tmp_path / "missing.json") == Preferences()


def test_saving_preferences_keeps_a_stored_key_and_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"api_keys": {"http://127.0.0.1:1/v1": "sk-kept"}}', encoding="utf-8")
    Preferences(default_model="m").save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert '"sk-kept"' in path.read_text(encoding="utf-8")
    assert Preferences.load(path).default_model == "m"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temporary left


def test_the_self_test_runs_in_a_folder_of_its_own(tmp_path: Path) -> None:
    options = parse_startup_options(["--self-test"], environ={})
    try:
        assert options.temporary_data_dir and options.data_dir.is_dir()
        assert options.data_dir != default_data_dir()
    finally:
        options.data_dir.rmdir()
    chosen = parse_startup_options(["--self-test", "--data-dir", str(tmp_path)], environ={})
    assert not chosen.temporary_data_dir and chosen.data_dir == tmp_path


def test_the_local_api_is_off_by_default_and_its_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    assert (Preferences.load(path).api_enabled, Preferences.load(path).api_port) == (False, 8484)
    Preferences(api_enabled=True, api_port=9123).save(path)
    loaded = Preferences.load(path)
    assert (loaded.api_enabled, loaded.api_port) == (True, 9123)
    for odd in ('"yes"', "0", "70000", "true", '"8484"'):
        path.write_text(f'{{"api_enabled": {odd}, "api_port": {odd}}}', encoding="utf-8")
        loaded = Preferences.load(path)
        assert loaded.api_enabled is (odd == "true")
        assert loaded.api_port == 8484


def test_the_look_and_presets_are_typed_fields_that_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    preferences = Preferences(theme="dark", text_size=13.0)
    assert preferences.chat_presets()[0].name == "Concise answers"  # the starters
    preferences.keep_preset(ChatPreset("Terse", "Be terse.", temperature=0.1, max_tokens=50))
    preferences.save(path)
    loaded = Preferences.load(path)
    assert (loaded.theme, loaded.text_size) == ("dark", 13.0)
    terse = next(p for p in loaded.chat_presets() if p.name == "Terse")
    assert terse == ChatPreset("Terse", "Be terse.", temperature=0.1, max_tokens=50)
    assert terse.chat_settings() == {
        "system_prompt": "Be terse.",
        "temperature": 0.1,
        "max_tokens": 50,
    }
    assert loaded.problems == []


def test_the_look_and_presets_kept_in_the_window_state_by_older_versions_are_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "window": {
                    "geometry": "abc",
                    "look": {"theme": "dark", "font_size": 12},
                    "presets": [{"name": "Mine", "system_prompt": "Hi", "temperature": 0.5}],
                }
            }
        ),
        encoding="utf-8",
    )
    loaded = Preferences.load(path)
    assert (loaded.theme, loaded.text_size) == ("dark", 12.0)
    assert [p.name for p in loaded.chat_presets()] == ["Mine"]
    loaded.save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["window"] == {"geometry": "abc"}  # moved, not kept twice
    assert saved["theme"] == "dark" and saved["presets"][0]["name"] == "Mine"


def test_a_wrong_look_or_preset_falls_back_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "theme": "purple",
                "text_size": "huge",
                "presets": [{"name": "Ok", "temperature": 9}, {"system_prompt": "no name"}],
            }
        ),
        encoding="utf-8",
    )
    loaded = Preferences.load(path)
    assert (loaded.theme, loaded.text_size) == ("system", None)
    assert loaded.chat_presets() == [ChatPreset("Ok")]  # a temperature out of range: default
    assert len(loaded.problems) == 3


def test_a_relative_data_folder_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = parse_startup_options(["--data-dir", "chats"], environ={})
    assert options.data_dir == tmp_path / "chats"
    assert options.database_url == sqlite_url(tmp_path / "chats" / "chat.db")
