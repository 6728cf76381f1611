"""An API key typed into a server URL is used as the key, and never stored with the URL,
logged or shown."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
import qasync
from hypothesis import given
from hypothesis import strategies as st
from pytestqt.qtbot import QtBot

from chatdesk.app import move_url_secrets
from chatdesk.providers import ModelNotFoundError, ProviderConnectionError
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.secrets import SecretStore
from chatdesk.settings import Preferences, parse_startup_options, split_url_secret
from chatdesk.ui.settings_dialog import SettingsDialog
from tests.core.test_secrets import DictKeyring
from tests.openai_test_server import OpenAITestServer
from tests.reliability.processes import child_env
from tests.ui.harness import Harness, wait_for
from tests.ui.test_settings_dialog import MemorySecrets

KEY = "sk-url-9f8e7d6c5b4a"


@pytest.fixture
def keyed_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(required_key=KEY) as server:
        yield server


def with_key_in_url(base_url: str, form: str) -> str:
    if form == "userinfo":
        return base_url.replace("http://", f"http://user:{KEY}@")
    if form == "bare-userinfo":
        return base_url.replace("http://", f"http://{KEY}@")
    return f"{base_url}?api-key={KEY}"


FORMS = ["userinfo", "bare-userinfo", "query"]


@given(
    key=st.text(st.characters(categories=["L", "N"]), min_size=8, max_size=40),
    form=st.sampled_from(FORMS),
    path=st.sampled_from(["/v1", "/api/v1", ""]),
)
def test_split_url_secret_takes_the_key_out_of_every_form(key: str, form: str, path: str) -> None:
    base = f"http://127.0.0.1:8080{path}"
    if form == "userinfo":
        url = base.replace("http://", f"http://me:{key}@")
    elif form == "bare-userinfo":
        url = base.replace("http://", f"http://{key}@")
    else:
        url = f"{base}?api_key={key}"
    clean, secret = split_url_secret(url)
    assert (clean, secret) == (base, key)


@pytest.mark.parametrize("form", FORMS)
async def test_the_provider_sends_the_url_key_as_the_key_and_never_shows_it(
    keyed_server: OpenAITestServer, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = OpenAICompatibleProvider(with_key_in_url(keyed_server.base_url, form), None, "")
    try:
        assert KEY not in provider.base_url and KEY not in repr(provider)
        assert await provider.list_models() == ["other-model", "test-model"]
        keyed_server.status = 404
        with pytest.raises(ModelNotFoundError) as missing:
            [d async for d in provider.stream([{"role": "user", "content": "hi"}], model="nope")]
    finally:
        await provider.close()
    assert keyed_server.model_requests[-1]["Authorization"] == f"Bearer {KEY}"
    down = OpenAICompatibleProvider(with_key_in_url("http://127.0.0.1:9/v1", form), None, "m")
    with pytest.raises(ProviderConnectionError) as refused:
        await down.list_models()
    await down.close()
    for text in (str(missing.value), str(refused.value), caplog.text):
        assert KEY not in text


def test_a_key_in_the_base_url_option_becomes_this_runs_key() -> None:
    options = parse_startup_options(
        ["--base-url", f"http://127.0.0.1:1234/v1?api-key={KEY}"], environ={}
    )
    assert (options.base_url, options.api_key) == ("http://127.0.0.1:1234/v1", KEY)


@pytest.fixture
def dict_keyring() -> Iterator[DictKeyring]:
    original = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(original)


def test_a_key_in_a_stored_server_url_moves_to_the_keyring(
    tmp_path: Path, dict_keyring: DictKeyring
) -> None:
    path = tmp_path / "settings.json"
    url = f"https://user:{KEY}@models.example/v1"
    path.write_text(
        json.dumps({"servers": [{"base_url": url}], "default_provider": url}), encoding="utf-8"
    )

    prefs = Preferences.load(path)
    assert [s.base_url for s in prefs.servers] == ["https://models.example/v1"]
    assert prefs.default_provider == "https://models.example/v1"
    assert all(KEY not in problem for problem in prefs.problems)
    secrets = SecretStore(path)
    move_url_secrets(prefs, secrets, lambda: prefs.save(path))

    assert KEY not in path.read_text(encoding="utf-8")
    assert SecretStore(path).get("https://models.example/v1") == KEY
    assert not list(tmp_path.glob("settings.json.*"))


def test_the_app_never_writes_a_url_key_to_its_files_or_output(
    tmp_path: Path, keyed_server: OpenAITestServer
) -> None:
    data_dir = tmp_path / "data"
    url = with_key_in_url(keyed_server.base_url, "userinfo")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatdesk",
            "--data-dir",
            str(data_dir),
            "--base-url",
            url,
            "--self-test",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "self-test passed" in run.stdout
    assert keyed_server.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in run.stdout + run.stderr
    for file in data_dir.rglob("*"):
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file.name


def test_a_key_typed_into_the_url_in_settings_goes_to_the_key_store(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path, keyed_server: OpenAITestServer
) -> None:
    harness = Harness(qtbot, tmp_path, keyed_server.base_url, keyed_server.model)
    try:
        window = harness.window()
        window.secrets = MemorySecrets()
        dialog = window.open_settings()
        assert isinstance(dialog, SettingsDialog)
        dialog.url_edit.setText(with_key_in_url(keyed_server.base_url, "query"))
        dialog.add_button.click()
        wait_for(qtbot, lambda: dialog.server_list.count() == 1)

        assert window.registry.preferences.server(keyed_server.base_url) is not None
        assert window.secrets.keys[keyed_server.base_url] == (KEY, False)
        assert KEY not in dialog.status.text()
        assert KEY not in (tmp_path / "settings.json").read_text(encoding="utf-8")
        dialog.reject()
    finally:
        harness.close_all()
