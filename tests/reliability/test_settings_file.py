"""settings.json from the outside world: wrong types, broken JSON, failed writes.

Every wrong field falls back to its default with a warning, a file that cannot be read is
kept aside before anything replaces it, and a write is all or nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import qasync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytestqt.qtbot import QtBot

from chatdesk.app import announce_settings_problems
from chatdesk.secrets import SecretStore
from chatdesk.settings import LOCAL_PROVIDER, Preferences, ServerConfig
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness

GOOD_SERVER = {"base_url": "http://127.0.0.1:11434/v1", "name": "Ollama", "models": ["llama3"]}
GOOD = {
    "servers": [GOOD_SERVER],
    "default_provider": GOOD_SERVER["base_url"],
    "default_model": "llama3",
    "window": {"splitter": [250, 900], "last_session": "abc"},
    "local_models": ["/models/a.gguf"],
}

# (what is changed, the value written there) -- one wrong field at a time.
WRONG_FIELDS: list[tuple[str, Any]] = [
    ("servers", 7),
    ("servers", "http://127.0.0.1/v1"),
    ("servers", {"base_url": "http://x/v1"}),
    ("servers", [7, None, "text"]),
    ("servers", [{"base_url": 12}]),
    ("servers", [{"base_url": "not a url"}]),
    ("servers", [{"base_url": "ftp://host/v1"}]),
    ("servers", [{"base_url": "http://[::1/v1"}]),
    ("servers", [{"base_url": "http://host:port/v1"}]),
    ("servers", [{"base_url": "http://h/v1", "name": ["x"], "models": "m"}]),
    ("servers", [{"base_url": "http://h/v1", "models": [1, {"a": 1}]}]),
    ("default_provider", ["local"]),
    ("default_provider", 3.5),
    ("default_provider", True),
    ("default_model", ["a", "b"]),
    ("default_model", {"name": "x"}),
    ("default_model", 0),
    ("window", "wide"),
    ("window", [1, 2]),
    ("window", {"splitter": [10**30, 1]}),
    ("window", {"splitter": [-5, 1]}),
    ("window", {"splitter": "250,900"}),
    ("window", {"geometry": 12, "last_session": ["x"]}),
    ("window", {"splitter": [True, False]}),
    ("local_models", "a.gguf"),
    ("local_models", [1, 2]),
]


def write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def assert_well_typed(prefs: Preferences) -> None:
    assert isinstance(prefs.servers, list)
    for server in prefs.servers:
        assert isinstance(server, ServerConfig)
        assert isinstance(server.base_url, str) and server.base_url.startswith("http")
        assert isinstance(server.name, str)
        assert all(isinstance(m, str) for m in server.models)
    assert isinstance(prefs.default_provider, str) and prefs.default_provider
    assert prefs.default_model is None or isinstance(prefs.default_model, str)
    assert isinstance(prefs.window, dict)
    sizes = prefs.window.get("splitter")
    assert sizes is None or (len(sizes) == 2 and all(0 <= s <= 100_000 for s in sizes))
    assert all(isinstance(m, str) for m in prefs.local_models)


@pytest.mark.parametrize(("key", "value"), WRONG_FIELDS)
def test_a_wrong_field_falls_back_to_its_default_with_a_warning(
    tmp_path: Path, key: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "settings.json"
    write(path, {**GOOD, key: value})
    with caplog.at_level(logging.WARNING, logger="chatdesk.settings"):
        prefs = Preferences.load(path)

    assert_well_typed(prefs)
    assert prefs.problems, "the wrong field was not reported"
    assert any(key in record.getMessage() for record in caplog.records)
    # The other fields are kept as they were.
    expected = Preferences.load(tmp_path / "missing.json")
    good = Preferences.load(_written(tmp_path / "good.json", GOOD))
    for name in ("servers", "default_provider", "default_model", "local_models"):
        if name != key and not (key == "servers" and name == "default_provider"):
            assert getattr(prefs, name) == getattr(good, name), name
    if key != "servers":
        assert prefs.servers == good.servers
    assert expected.problems == []


def _written(path: Path, data: Any) -> Path:
    write(path, data)
    return path


@pytest.mark.parametrize(
    "text",
    [
        '{"servers": [{"base_url": "http://127.0.0.1:11434/v1"},], "api_keys": {"x": "k"}}',
        "[1, 2, 3]",
        '"just text"',
        "",
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["trailing-comma", "a-list", "a-string", "empty", "deeply-nested"],
)
def test_an_unreadable_file_is_kept_aside_and_never_overwritten_silently(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="utf-8")

    prefs = Preferences.load(path)
    assert prefs == Preferences()
    assert len(prefs.problems) == 1 and "could not be read" in prefs.problems[0]
    backups = list(tmp_path.glob("settings.json.unreadable-*"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == text
    assert backups[0].name in prefs.problems[0]

    # Saving (as the app does on exit) replaces the file, the user's bytes stay aside,
    # and loading and saving again makes no second copy.
    prefs.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["default_provider"] == LOCAL_PROVIDER
    Preferences.load(tmp_path / "other.json")
    assert [b.read_text(encoding="utf-8") for b in tmp_path.glob("settings.json.*")] == [text]


def test_storing_a_key_in_an_unreadable_file_keeps_the_file_aside_first(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    original = '{"servers": [], "api_keys": {"http://a/v1": "sk-old"},}'
    path.write_text(original, encoding="utf-8")

    SecretStore(path).set("http://b/v1", "sk-new", persist_in_settings_file=True)

    backups = list(tmp_path.glob("settings.json.unreadable-*"))
    assert [b.read_text(encoding="utf-8") for b in backups] == [original]
    assert json.loads(path.read_text(encoding="utf-8"))["api_keys"] == {"http://b/v1": "sk-new"}


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, GOOD)
    before = path.read_bytes()
    prefs = Preferences.load(path)
    prefs.window["unserialisable"] = object()

    with pytest.raises(TypeError):
        prefs.save(path)

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_saving_keeps_keys_it_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, {**GOOD, "api_keys": {"http://a/v1": "k"}, "future_option": [1, 2]})
    Preferences.load(path).save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["api_keys"] == {"http://a/v1": "k"} and saved["future_option"] == [1, 2]
    assert (path.stat().st_mode & 0o777) == 0o600


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
settings_objects = st.dictionaries(
    st.sampled_from(
        ["servers", "default_provider", "default_model", "window", "local_models", "other"]
    ),
    json_values
    | st.lists(
        st.fixed_dictionaries(
            {"base_url": st.sampled_from(["http://127.0.0.1/v1", "x", "https://h:1/v1"])},
            optional={"name": json_values, "models": json_values},
        ),
        max_size=3,
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=settings_objects)
def test_any_json_object_loads_well_typed_and_survives_a_save_and_load(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    path = tmp_path / "fuzzed.json"
    write(path, data)

    prefs = Preferences.load(path)
    assert_well_typed(prefs)
    prefs.save(path)
    again = Preferences.load(path)
    assert again == prefs
    assert again.problems == []


def test_the_window_says_when_settings_could_not_be_used(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    write(tmp_path / "settings.json", {**GOOD, "servers": 7, "default_model": ["x"]})
    harness = Harness(qtbot, tmp_path, openai_server.base_url, openai_server.model)
    try:
        window = harness.window()
        announce_settings_problems(window, Preferences.load(tmp_path / "settings.json"))
        notice = window.composer.notice
        assert notice.isVisible()
        assert "Some settings could not be used: 'servers' should be a list" in notice.text()
        assert "and 1 more" in notice.text()
    finally:
        harness.close_all()
