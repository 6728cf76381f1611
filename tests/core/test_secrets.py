"""SecretStore over real keyring backends: a working one (an in-test dict backend), the
``fail``/``null`` backends of a machine without a keyring, and one that raises errors."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.backends import fail, null

from chatdesk.secrets import API_KEYS, SERVICE, SecretStore
from chatdesk.settings import Preferences

# Let keyring pick this machine's backend now, before the test backends below exist, so
# they can never be chosen as the default keyring of a later test.
keyring.get_keyring()

URL = "https://api.example.com/v1"
KEY = "sk-test-0123456789abcdef"
OTHER_SETTINGS = {"servers": [{"base_url": URL, "name": "Example", "models": []}], "x": 1}


class DictKeyring(keyring.backend.KeyringBackend):
    """A working keyring kept in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("no such password") from None


class LockedKeyring(keyring.backend.KeyringBackend):
    """A keyring that exists but refuses every operation (e.g. locked)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the keyring is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        # A careless backend might even echo the secret; it must still never be logged.
        raise keyring.errors.KeyringError(f"cannot store {password!r}: the keyring is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringError("the keyring is locked")


@pytest.fixture(autouse=True)
def restore_keyring() -> Iterator[None]:
    """Every test may replace the keyring; the original comes back afterwards."""
    original = keyring.get_keyring()
    yield
    keyring.set_keyring(original)


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """A settings.json holding other preferences."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(OTHER_SETTINGS), encoding="utf-8")
    return path


@pytest.fixture
def dict_keyring() -> DictKeyring:
    backend = DictKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture(params=[fail.Keyring, null.Keyring], ids=["fail", "null"])
def no_keyring(request: pytest.FixtureRequest) -> None:
    keyring.set_keyring(request.param())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# -- a working keyring --------------------------------------------------------------------


def test_available_keyring_keeps_keys_out_of_the_settings_file(
    dict_keyring: DictKeyring, settings_file: Path
) -> None:
    before = settings_file.read_bytes()
    store = SecretStore(settings_file)
    assert store.keyring_available
    assert store.warning is None

    store.set(URL, KEY)
    assert dict_keyring.passwords == {(SERVICE, URL): KEY}
    assert store.get(URL) == KEY
    assert SecretStore(settings_file).get(URL) == KEY  # a later run reads the keyring

    store.set(URL, KEY + "2", persist_in_settings_file=True)  # the keyring still wins
    assert dict_keyring.passwords == {(SERVICE, URL): KEY + "2"}
    assert settings_file.read_bytes() == before

    store.delete(URL)
    assert dict_keyring.passwords == {}
    assert store.get(URL) is None
    assert SecretStore(settings_file).get(URL) is None
    assert settings_file.read_bytes() == before


def test_available_keyring_replaces_an_old_copy_in_the_file(
    dict_keyring: DictKeyring, settings_file: Path
) -> None:
    settings_file.write_text(json.dumps({**OTHER_SETTINGS, API_KEYS: {URL: "old"}}))
    store = SecretStore(settings_file)
    assert store.get(URL) == "old"  # a key stored while there was no keyring still works
    store.set(URL, KEY)
    assert dict_keyring.passwords == {(SERVICE, URL): KEY}
    assert read_json(settings_file) == OTHER_SETTINGS


def test_deleting_a_missing_key_is_quiet(dict_keyring: DictKeyring, settings_file: Path) -> None:
    SecretStore(settings_file).delete("https://never.example/v1")
    SecretStore(settings_file.parent / "absent.json").delete(URL)
    assert not (settings_file.parent / "absent.json").exists()


# -- no keyring ---------------------------------------------------------------------------


def test_without_keyring_a_warning_is_given(no_keyring: None, settings_file: Path) -> None:
    store = SecretStore(settings_file)
    assert not store.keyring_available
    assert store.warning is not None
    assert "keyring" in store.warning
    assert "Store the key in the settings file" in store.warning


def test_without_keyring_keys_live_in_memory_only(no_keyring: None, settings_file: Path) -> None:
    before = settings_file.read_bytes()
    store = SecretStore(settings_file)
    store.set(URL, KEY)
    assert store.get(URL) == KEY
    assert settings_file.read_bytes() == before
    assert SecretStore(settings_file).get(URL) is None  # the next run does not see it


def test_without_keyring_a_key_can_be_stored_in_the_settings_file(
    no_keyring: None, settings_file: Path
) -> None:
    store = SecretStore(settings_file)
    store.set(URL, KEY, persist_in_settings_file=True)

    assert stat.S_IMODE(os.stat(settings_file).st_mode) == 0o600
    data = read_json(settings_file)
    assert data[API_KEYS] == {URL: KEY}
    assert {k: v for k, v in data.items() if k != API_KEYS} == OTHER_SETTINGS
    assert SecretStore(settings_file).get(URL) == KEY

    # Saving the preferences keeps the stored key.
    preferences = Preferences.load(settings_file)
    preferences.save(settings_file)
    assert SecretStore(settings_file).get(URL) == KEY


def test_without_keyring_a_settings_file_is_created_private(
    no_keyring: None, tmp_path: Path
) -> None:
    path = tmp_path / "new" / "settings.json"
    SecretStore(path).set(URL, KEY, persist_in_settings_file=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_json(path) == {API_KEYS: {URL: KEY}}
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp files left


def test_without_keyring_delete_removes_the_key_everywhere(
    no_keyring: None, settings_file: Path
) -> None:
    other = "https://other.example/v1"
    store = SecretStore(settings_file)
    store.set(URL, KEY, persist_in_settings_file=True)
    store.set(other, "other-key", persist_in_settings_file=True)
    store.delete(URL)
    assert store.get(URL) is None
    assert SecretStore(settings_file).get(URL) is None
    assert read_json(settings_file)[API_KEYS] == {other: "other-key"}
    store.delete(other)
    assert read_json(settings_file) == OTHER_SETTINGS
    store.delete(other)  # again: nothing to do, no error


def test_a_key_not_persisted_replaces_the_stored_one(no_keyring: None, settings_file: Path) -> None:
    SecretStore(settings_file).set(URL, "old", persist_in_settings_file=True)
    store = SecretStore(settings_file)
    store.set(URL, KEY)
    assert store.get(URL) == KEY
    assert SecretStore(settings_file).get(URL) is None  # the old key does not come back


# -- a failing keyring ----------------------------------------------------------------------


def test_keyring_errors_fall_back_to_memory_and_never_log_the_key(
    settings_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keyring.set_keyring(LockedKeyring())
    caplog.set_level(logging.DEBUG)
    store = SecretStore(settings_file)
    assert store.keyring_available

    store.set(URL, KEY)
    assert store.get(URL) == KEY
    assert SecretStore(settings_file).get(URL) is None
    store.delete(URL)
    assert store.get(URL) is None

    store.set(URL, KEY, persist_in_settings_file=True)
    assert SecretStore(settings_file).get(URL) == KEY

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings
    assert any(URL in r.getMessage() for r in warnings)
    assert KEY not in caplog.text


def test_the_default_settings_file_is_settings_json() -> None:
    assert SecretStore().settings_file.name == "settings.json"
