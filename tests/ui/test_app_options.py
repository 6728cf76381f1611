"""Start-up options chosen for one run: they steer this run and never overwrite settings."""

from __future__ import annotations

from pathlib import Path

from chatdesk.app import run_preferences
from chatdesk.settings import LOCAL_PROVIDER, Preferences, parse_startup_options


def test_a_model_alone_is_a_model_of_the_default_provider_for_this_run(tmp_path: Path) -> None:
    options = parse_startup_options(
        ["--data-dir", str(tmp_path), "--model", "/models/other.gguf"], environ={}
    )
    preferences, keys, save = run_preferences(options)
    assert (preferences.default_provider, preferences.default_model) == (
        LOCAL_PROVIDER,
        "/models/other.gguf",
    )
    assert keys == {}
    save(options.preferences_path)
    stored = Preferences.load(options.preferences_path)
    assert (stored.default_provider, stored.default_model) == (LOCAL_PROVIDER, None)


def test_a_server_and_key_given_at_start_are_used_for_this_run_only(tmp_path: Path) -> None:
    options = parse_startup_options(
        ["--data-dir", str(tmp_path), "--base-url", "http://127.0.0.1:11434/v1"],
        environ={"OPENAI_API_KEY": "sk-run", "CHATDESK_MODEL": "llama3"},
    )
    preferences, keys, save = run_preferences(options)
    assert (preferences.default_provider, preferences.default_model) == (
        "http://127.0.0.1:11434/v1",
        "llama3",
    )
    assert keys == {"http://127.0.0.1:11434/v1": "sk-run"}
    save(options.preferences_path)
    assert "sk-run" not in options.preferences_path.read_text(encoding="utf-8")
    assert Preferences.load(options.preferences_path).default_provider == LOCAL_PROVIDER
