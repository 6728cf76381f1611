"""Where ChatDesk keeps its files, how it was asked to start, and the user's preferences.

Start-up options come from the command line first, then the environment, then defaults:

* ``--data-dir DIR``: the folder holding ``chat.db`` and ``settings.json``
  (default: the user data directory from platformdirs, ``.../chatdesk``).
* ``--database-url URL`` / ``CHATDESK_DATABASE_URL``: a SQLAlchemy SQLite URL instead.
* ``--provider local|openai``, ``--base-url`` / ``CHATDESK_BASE_URL``,
  ``--model`` / ``CHATDESK_MODEL``, and ``OPENAI_API_KEY``: the default model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from chatdesk import __version__

log = logging.getLogger(__name__)

APP_NAME = "chatdesk"
DATABASE_FILE = "chat.db"
PREFERENCES_FILE = "settings.json"
LOCAL_PROVIDER = "local"
# The port of the local HTTP API, in the window and for ``chatdesk serve``.
DEFAULT_API_PORT = 8484
# Where ``--provider openai`` goes when no --base-url is given: OpenAI's own API.
OPENAI_BASE_URL = "https://api.openai.com/v1"


def default_data_dir() -> Path:
    """The per-user data folder, e.g. ``~/.local/share/chatdesk`` on Linux."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy async URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True, slots=True)
class StartupOptions:
    """How this run was asked to start, after command line and environment are combined."""

    data_dir: Path
    database_url: str
    provider: str | None
    base_url: str | None
    model: str | None
    api_key: str | None
    self_test: bool = False
    # A folder made for this run only (the self-test's), removed when the app exits.
    temporary_data_dir: bool = False

    @property
    def preferences_path(self) -> Path:
        """The JSON file of user preferences."""
        return self.data_dir / PREFERENCES_FILE


def build_arg_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``chatdesk``."""
    parser = argparse.ArgumentParser(prog="chatdesk", description="ChatDesk: desktop AI chat.")
    parser.add_argument("--version", action="version", version=f"ChatDesk {__version__}")
    parser.add_argument("--data-dir", type=Path, help="folder for the database and settings")
    parser.add_argument("--database-url", help="SQLAlchemy SQLite URL of the database")
    parser.add_argument(
        "--provider", choices=(LOCAL_PROVIDER, "openai"), help="default model backend"
    )
    parser.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    parser.add_argument("--model", help="model name (or a .gguf path for the local provider)")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="open the window over a temporary database, send one message, check the reply",
    )
    return parser


def parse_startup_options(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> StartupOptions:
    """Combine command-line arguments and environment variables into StartupOptions."""
    env = os.environ if environ is None else environ
    args = build_arg_parser().parse_args(argv)
    temporary = args.self_test and args.data_dir is None and args.database_url is None
    if temporary:
        args.data_dir = Path(tempfile.mkdtemp(prefix="chatdesk-self-test-"))
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    database_url = (
        args.database_url
        or (env.get("CHATDESK_DATABASE_URL") if args.data_dir is None else None)
        or sqlite_url(data_dir / DATABASE_FILE)
    )
    base_url = args.base_url or env.get("CHATDESK_BASE_URL") or None
    provider = args.provider or ("openai" if base_url else None)
    if provider == "openai" and base_url is None:
        base_url = OPENAI_BASE_URL
    return StartupOptions(
        data_dir=data_dir,
        database_url=database_url,
        provider=provider,
        base_url=base_url,
        model=args.model or env.get("CHATDESK_MODEL") or None,
        api_key=env.get("OPENAI_API_KEY") or None,
        self_test=args.self_test,
        temporary_data_dir=temporary,
    )


@dataclass(slots=True)
class ServerConfig:
    """An OpenAI-compatible server the user added (its key lives in the keyring)."""

    base_url: str
    name: str = ""
    models: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """What the model selector shows for this server."""
        return self.name or self.base_url


@dataclass(slots=True)
class Preferences:
    """User preferences kept in ``settings.json``: servers and the default model.

    ``default_provider`` is ``"local"`` or the base URL of one of ``servers``;
    ``default_model`` is a model of that provider (None: the provider's own default).
    """

    servers: list[ServerConfig] = field(default_factory=list)
    default_provider: str = LOCAL_PROVIDER
    default_model: str | None = None
    window: dict[str, Any] = field(default_factory=dict)
    # Paths of .gguf files the user added as extra local models.
    local_models: list[str] = field(default_factory=list)
    # The window's local HTTP API (Settings → Local API): off unless the user turns it on.
    api_enabled: bool = False
    api_port: int = DEFAULT_API_PORT
    # Per model (keyed by :func:`model_settings_key`): the context window the user set,
    # and the models not to offer tools to (servers get tools by default).
    context_windows: dict[str, int] = field(default_factory=dict)
    tools_off: list[str] = field(default_factory=list)
    # Windows servers stated in their "context too long" errors, remembered per model.
    learned_context_windows: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Preferences:
        """Read preferences; a missing or unreadable file gives the defaults (and a log line)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable preferences file %s: %s", path, exc)
            return cls()
        if not isinstance(raw, dict):
            return cls()
        servers = [
            ServerConfig(
                base_url=str(s["base_url"]),
                name=str(s.get("name", "")),
                models=[str(m) for m in s.get("models", [])],
            )
            for s in raw.get("servers", [])
            if isinstance(s, dict) and s.get("base_url")
        ]
        window = raw.get("window")
        return cls(
            servers=servers,
            default_provider=str(raw.get("default_provider") or LOCAL_PROVIDER),
            default_model=raw.get("default_model") or None,
            window=window if isinstance(window, dict) else {},
            local_models=[str(m) for m in raw.get("local_models", []) if isinstance(m, str)],
            api_enabled=raw.get("api_enabled") is True,
            api_port=_port(raw.get("api_port")),
            context_windows=_context_windows(raw.get("context_windows")),
            tools_off=[str(k) for k in raw.get("tools_off") or [] if isinstance(k, str)],
            learned_context_windows=_context_windows(raw.get("learned_context_windows")),
        )

    def save(self, path: Path) -> None:
        """Write preferences atomically (a crash mid-write never leaves half a file)."""
        data = {
            "servers": [asdict(s) for s in self.servers],
            "default_provider": self.default_provider,
            "default_model": self.default_model,
            "window": self.window,
            "local_models": self.local_models,
            "api_enabled": self.api_enabled,
            "api_port": self.api_port,
            "context_windows": self.context_windows,
            "tools_off": self.tools_off,
            "learned_context_windows": self.learned_context_windows,
        }
        # Other keys (e.g. a key the user chose to store in this file) are kept.
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        if isinstance(existing, dict):
            data = {**existing, **data}
        write_private_json(path, data)

    def context_window(self, key: str) -> int | None:
        """The context window the user set for the model ``key``, if any."""
        return self.context_windows.get(key)

    def tools_enabled(self, key: str) -> bool:
        """Whether the model ``key`` may be offered tools (on unless switched off)."""
        return key not in self.tools_off

    def server(self, base_url: str) -> ServerConfig | None:
        """The configured server with ``base_url``, if any."""
        return next((s for s in self.servers if s.base_url == base_url), None)


def _port(value: object) -> int:
    """A TCP port from the settings file, or the default for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return DEFAULT_API_PORT


def model_settings_key(provider_id: str, model: str | None) -> str:
    """How per-model settings name a model: its provider id and its name."""
    return f"{provider_id} {model or ''}".strip()


def _context_windows(raw: object) -> dict[str, int]:
    """The per-model windows of settings.json, dropping anything that is not a size."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): v
        for k, v in raw.items()
        if isinstance(v, int) and not isinstance(v, bool) and v > 0
    }


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically (a crash never leaves half a file).

    The file is readable by its owner only: it may hold API keys the user chose to store.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):  # mkstemp made it 0600 already; be explicit
                os.fchmod(handle.fileno(), 0o600)
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
