"""API keys of the servers the user added: in the system keyring whenever there is one.

Keys are stored under the service name ``chatdesk`` with the provider id (the server's
base URL) as the user name. Without a usable keyring (a headless machine, a locked or
broken keyring) a key lives in memory for this run only, unless the user ticks "Store in
settings file": then it is written, unencrypted, to the ``api_keys`` map of
``settings.json`` (file mode 0600). A key is never written to a log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdesk.settings import (
    PREFERENCES_FILE,
    UnreadableSettingsError,
    default_data_dir,
    load_json_object,
    write_private_json,
)

# keyring is imported on first use: its import costs ~0.15 s, which start-up need not pay.
if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)

SERVICE = "chatdesk"
API_KEYS = "api_keys"
NO_KEYRING_WARNING = (
    "No system keyring was found, so API keys are kept only until ChatDesk closes. "
    "Tick 'Store the key in the settings file' to keep it (not encrypted)."
)


def usable_keyring() -> keyring.backend.KeyringBackend | None:
    """The active keyring backend if it can really store secrets, else None."""
    import keyring

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyring configuration must not stop the app
        log.warning("the system keyring could not be opened: %s", type(exc).__name__)
        return None
    return backend if _is_real(backend) else None


def _is_real(backend: keyring.backend.KeyringBackend) -> bool:
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(_is_real(b) for b in backend.backends)
    try:
        priority = float(backend.priority)
    except Exception:
        return False
    return priority > 0


class SecretStore:
    """Gets, sets and deletes API keys by provider id (a server's base URL)."""

    def __init__(self, settings_file: Path | None = None) -> None:
        """``settings_file`` is the ``settings.json`` keys may be stored in when asked
        (default: the one in the user data folder). The keyring is probed on first use."""
        self.settings_file = settings_file or default_data_dir() / PREFERENCES_FILE
        self._memory: dict[str, str] = {}
        self._backend: keyring.backend.KeyringBackend | None = None
        self._probed = False

    # -- what the settings dialog shows -------------------------------------------------

    @property
    def keyring_available(self) -> bool:
        """Whether keys go to a real system keyring."""
        return self._keyring() is not None

    @property
    def warning(self) -> str | None:
        """Why keys are not kept safely, or None when the keyring works."""
        return None if self.keyring_available else NO_KEYRING_WARNING

    # -- keys ---------------------------------------------------------------------------

    def get(self, provider_id: str) -> str | None:
        """The key for ``provider_id``: this run's, then the keyring's, then the file's."""
        if provider_id in self._memory:
            return self._memory[provider_id]
        backend = self._keyring()
        if backend is not None:
            import keyring.errors

            try:
                key = backend.get_password(SERVICE, provider_id)
            except keyring.errors.KeyringError as exc:
                self._log_failure("read", provider_id, exc)
            else:
                if key:
                    self._memory[provider_id] = key
                    return key
        key = self._file_keys().get(provider_id)
        if key:
            self._memory[provider_id] = key
            return key
        return None

    def set(self, provider_id: str, key: str, *, persist_in_settings_file: bool = False) -> None:
        """Keep ``key`` for ``provider_id``: in the keyring when there is one; otherwise
        for this run only, or in the settings file if ``persist_in_settings_file``."""
        self._memory[provider_id] = key
        backend = self._keyring()
        if backend is not None:
            import keyring.errors

            try:
                backend.set_password(SERVICE, provider_id, key)
            except keyring.errors.KeyringError as exc:
                self._log_failure("store", provider_id, exc, key)
            else:
                self._remove_from_file(provider_id)  # an older plain-text copy
                return
        if persist_in_settings_file:
            self._write_file_key(provider_id, key)
        else:
            # Don't let an old key in the file come back on the next start.
            self._remove_from_file(provider_id)

    def delete(self, provider_id: str) -> None:
        """Forget the key for ``provider_id`` everywhere; nothing happens if there is none."""
        self._memory.pop(provider_id, None)
        backend = self._keyring()
        if backend is not None:
            import keyring.errors

            try:
                if backend.get_password(SERVICE, provider_id) is not None:
                    backend.delete_password(SERVICE, provider_id)
            except keyring.errors.PasswordDeleteError:
                pass
            except keyring.errors.KeyringError as exc:
                self._log_failure("delete", provider_id, exc)
        self._remove_from_file(provider_id)

    # -- internals ----------------------------------------------------------------------

    def _keyring(self) -> keyring.backend.KeyringBackend | None:
        if not self._probed:
            self._probed = True
            self._backend = usable_keyring()
            if self._backend is None:
                log.info("no system keyring; API keys are kept for this run only")
        return self._backend

    @staticmethod
    def _log_failure(
        action: str, provider_id: str, exc: BaseException, key: str | None = None
    ) -> None:
        detail = str(exc)
        if key:
            detail = detail.replace(key, "***")
        log.warning(
            "the system keyring could not %s the API key for %s (%s: %s); "
            "it is kept in memory for this run",
            action,
            provider_id,
            type(exc).__name__,
            detail,
        )

    def _read_file(self) -> dict[str, Any]:
        try:
            return load_json_object(self.settings_file)
        except (OSError, ValueError) as exc:  # an unreadable file was kept aside
            log.warning("could not read %s: %s", self.settings_file, type(exc).__name__)
            return {}

    def _file_keys(self) -> dict[str, str]:
        keys = self._read_file().get(API_KEYS)
        if not isinstance(keys, dict):
            return {}
        return {str(k): v for k, v in keys.items() if isinstance(v, str) and v}

    def _write_file_key(self, provider_id: str, key: str | None) -> None:
        try:
            data = load_json_object(self.settings_file)
        except UnreadableSettingsError:
            data = {}  # its bytes were kept aside before this replaces it
        except OSError as exc:
            # A file that exists but cannot be read is never replaced blindly.
            log.warning(
                "could not read %s (%s); the API key for %s is kept for this run only",
                self.settings_file,
                type(exc).__name__,
                provider_id,
            )
            return
        keys = data.get(API_KEYS)
        keys = dict(keys) if isinstance(keys, dict) else {}
        if key is None:
            keys.pop(provider_id, None)
        else:
            keys[provider_id] = key
        if keys:
            data[API_KEYS] = keys
        else:
            data.pop(API_KEYS, None)
        try:
            write_private_json(self.settings_file, data)
        except OSError as exc:
            log.warning(
                "could not write %s (%s); the API key for %s is kept for this run only",
                self.settings_file,
                type(exc).__name__,
                provider_id,
            )

    def _remove_from_file(self, provider_id: str) -> None:
        if provider_id in self._file_keys():
            self._write_file_key(provider_id, None)
