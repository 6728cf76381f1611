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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import platformdirs

from chatdesk import __version__
from chatdesk.presets import STARTER_PRESETS, ChatPreset

log = logging.getLogger(__name__)

APP_NAME = "chatdesk"
DATABASE_FILE = "chat.db"
PREFERENCES_FILE = "settings.json"
LOCAL_PROVIDER = "local"
# The looks the window offers: following the desktop's palette, or one of its own.
THEMES = ("system", "light", "dark")
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
    # Absolute, so the database URL and the file checks agree whatever the working folder.
    data_dir = (args.data_dir or default_data_dir()).expanduser().absolute()
    database_url = (
        args.database_url
        or (env.get("CHATDESK_DATABASE_URL") if args.data_dir is None else None)
        or sqlite_url(data_dir / DATABASE_FILE)
    )
    base_url = args.base_url or env.get("CHATDESK_BASE_URL") or None
    url_key: str | None = None
    if base_url:
        # A key typed into the URL is used for this run and never kept with the URL.
        base_url, url_key = split_url_secret(base_url)
    provider = args.provider or ("openai" if base_url else None)
    if provider == "openai" and base_url is None:
        base_url = OPENAI_BASE_URL
    return StartupOptions(
        data_dir=data_dir,
        database_url=database_url,
        provider=provider,
        base_url=base_url,
        model=args.model or env.get("CHATDESK_MODEL") or None,
        api_key=env.get("OPENAI_API_KEY") or url_key or None,
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
    # Per model: whether it sees images, as the user set it (absent: as its server
    # reports), and the models whose server refused images once.
    image_input: dict[str, bool] = field(default_factory=dict)
    learned_text_only: list[str] = field(default_factory=list)
    # The look: one of THEMES, and the text size in points (None: the system's).
    theme: str = "system"
    text_size: float | None = None
    # The user's chat presets (None: none saved yet, so the starters are offered).
    presets: list[ChatPreset] | None = None

    # What went wrong reading the file (each a sentence); shown or logged, never saved.
    problems: list[str] = field(default_factory=list, compare=False, repr=False)
    # API keys found typed into server URLs of the file, by the cleaned URL: the caller
    # moves them to the key store; they are never saved back into the file.
    url_secrets: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path) -> Preferences:
        """Read preferences; every wrong or unreadable part falls back to its default.

        Each fallback is logged as a warning and listed in ``problems``. A file that is not
        a JSON object is first copied aside (``settings.json.unreadable-<time>``), so no
        later save loses it.
        """
        problems: list[str] = []
        secrets: dict[str, str] = {}
        try:
            raw = load_json_object(path)
        except UnreadableSettingsError as exc:
            problems.append(str(exc))
            raw = {}
        except OSError as exc:
            problems.append(f"{path} could not be read ({exc.strerror or exc}); defaults used.")
            raw = {}
        window = _window(raw.get("window", {}), problems)
        # The look and the presets were kept in the window state before they had fields.
        old_look = window.pop("look", None)
        old_look = old_look if isinstance(old_look, dict) else {}
        old_presets = window.pop("presets", None)
        loaded = cls(
            servers=_servers(raw.get("servers", []), problems, secrets),
            default_provider=split_url_secret(
                _typed(raw, "default_provider", str, LOCAL_PROVIDER, problems) or LOCAL_PROVIDER
            )[0],
            default_model=_typed(raw, "default_model", str, None, problems) or None,
            window=window,
            local_models=_strings(raw.get("local_models", []), "local_models", problems),
            problems=problems,
            url_secrets=secrets,
            api_enabled=raw.get("api_enabled") is True,
            api_port=_port(raw.get("api_port")),
            context_windows=_context_windows(raw.get("context_windows")),
            tools_off=[str(k) for k in raw.get("tools_off") or [] if isinstance(k, str)],
            learned_context_windows=_context_windows(raw.get("learned_context_windows")),
            image_input=_switches(raw.get("image_input")),
            learned_text_only=_strings(
                raw.get("learned_text_only", []), "learned_text_only", problems
            ),
            theme=_theme(raw.get("theme", old_look.get("theme")), problems),
            text_size=_text_size(raw.get("text_size", old_look.get("font_size")), problems),
            presets=_presets(raw.get("presets", old_presets), problems),
        )
        for problem in problems:
            log.warning("settings: %s", problem)
        return loaded

    def save(self, path: Path) -> None:
        """Write preferences atomically (a crash mid-write never leaves half a file).

        Keys this class does not know (e.g. a key the user chose to store in the file) are
        kept. A file that exists but cannot be read is not replaced (OSError); one that is
        not JSON was copied aside before it is replaced.
        """
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
            "image_input": self.image_input,
            "learned_text_only": self.learned_text_only,
            "theme": self.theme,
            "text_size": self.text_size,
            "presets": None
            if self.presets is None
            else [preset.to_json() for preset in self.presets],
        }
        try:
            existing = load_json_object(path)
        except UnreadableSettingsError:
            existing = {}
        data = {**existing, **data}
        write_private_json(path, data)

    def context_window(self, key: str) -> int | None:
        """The context window the user set for the model ``key``, if any."""
        return self.context_windows.get(key)

    def tools_enabled(self, key: str) -> bool:
        """Whether the model ``key`` may be offered tools (on unless switched off)."""
        return key not in self.tools_off

    def chat_presets(self) -> list[ChatPreset]:
        """The user's presets, or the starter ones while there are none."""
        return list(self.presets) if self.presets else list(STARTER_PRESETS)

    def keep_preset(self, preset: ChatPreset) -> None:
        """Keep ``preset`` among the user's presets, replacing one of the same name."""
        kept = [p for p in self.chat_presets() if p.name != preset.name]
        self.presets = [*kept, preset]

    def server(self, base_url: str) -> ServerConfig | None:
        """The configured server with ``base_url``, if any."""
        return next((s for s in self.servers if s.base_url == base_url), None)


# Larger numbers in a window size are no screen's.
_MAX_PIXELS = 100_000
_URL_SCHEMES = ("http", "https")


class UnreadableSettingsError(ValueError):
    """``settings.json`` is not a JSON object; ``backup`` is where its bytes were kept."""

    def __init__(self, path: Path, backup: Path | None, reason: str) -> None:
        kept = f"; it was kept as {backup.name}" if backup is not None else ""
        super().__init__(f"{path} could not be read ({reason}){kept}. Defaults are used.")
        self.path = path
        self.backup = backup


def load_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when there is no file).

    Raises OSError when the file cannot be read, and UnreadableSettingsError when it is
    not a JSON object, after copying its bytes aside so that a later write loses nothing.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    reason: str
    data: Any = None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except ValueError as exc:
        reason = f"it is not valid JSON: {exc}"
    except RecursionError:
        reason = "it is nested too deeply"
    else:
        if isinstance(data, dict):
            return data
        reason = f"it holds {_kind(data)}, not a JSON object"
    raise UnreadableSettingsError(path, _keep_aside(path, raw), reason)


def _keep_aside(path: Path, raw: bytes) -> Path | None:
    """Copy ``raw`` (the bytes of ``path``) next to it once; the copy's path."""
    for existing in path.parent.glob(f"{path.name}.unreadable-*"):
        with contextlib.suppress(OSError):
            if existing.read_bytes() == raw:
                return existing
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.unreadable-{stamp}")
    try:
        descriptor = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(raw)
    except OSError as exc:
        log.warning("could not keep a copy of %s: %s", path, exc)
        return None
    return backup


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any, problems: list[str]) -> Any:
    """``raw[key]`` when it is a ``kind`` (or missing/null: ``default``)."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    problems.append(f"'{key}' should be {kind.__name__}, not {_kind(value)}; default used.")
    return default


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "null")


def _strings(value: object, key: str, problems: list[str]) -> list[str]:
    """A list of strings; wrong entries (or a wrong list) are dropped with a problem."""
    if not isinstance(value, list):
        problems.append(f"'{key}' should be a list, not {_kind(value)}; it was ignored.")
        return []
    kept = [item for item in value if isinstance(item, str) and item]
    if len(kept) != len(value):
        problems.append(f"'{key}': {len(value) - len(kept)} entries that are not text ignored.")
    return kept


# Query parameters that carry a credential (compared lower-case, "-" read as "_").
_SECRET_PARAMETERS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "auth", "password", "secret", "sig"}
)


def split_url_secret(url: str) -> tuple[str, str | None]:
    """``url`` without the credentials typed into it, and that credential (None if none).

    ``https://user:KEY@host/v1`` and ``https://host/v1?api-key=KEY`` both give
    ``("https://host/v1", "KEY")``: a key belongs in the keyring, never in a URL that is
    stored, logged or shown.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return url, None
    secret: str | None = None
    netloc = parts.netloc
    if "@" in netloc:
        user_info = netloc.rpartition("@")[0]
        user, _, password = user_info.partition(":")
        secret = unquote(password or user) or None
        netloc = host or ""
        if ":" in netloc:  # an IPv6 address
            netloc = f"[{netloc}]"
        if port is not None:
            netloc += f":{port}"
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower().replace("-", "_") in _SECRET_PARAMETERS:
            secret = secret or value or None
        else:
            kept.append((name, value))
    if netloc == parts.netloc and len(kept) == len(parse_qsl(parts.query, keep_blank_values=True)):
        return url, secret
    clean = urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment))
    return clean, secret


def server_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a server's base URL, or None when it can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in _URL_SCHEMES or not host:
        return "it must start with http:// or https:// and name a host"
    if any(ord(c) < 33 for c in url):
        return "it contains spaces or control characters"
    return None


def _servers(value: object, problems: list[str], secrets: dict[str, str]) -> list[ServerConfig]:
    if not isinstance(value, list):
        problems.append(f"'servers' should be a list, not {_kind(value)}; it was ignored.")
        return []
    servers: list[ServerConfig] = []
    for index, item in enumerate(value):
        where = f"servers[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} should be an object, not {_kind(item)}; it was ignored.")
            continue
        url = item.get("base_url")
        if not isinstance(url, str) or server_url_problem(url) is not None:
            why = server_url_problem(url) if isinstance(url, str) else "it is missing"
            problems.append(f"{where}: the base URL is unusable ({why}); the server was ignored.")
            continue
        url, secret = split_url_secret(url)
        if secret is not None:
            secrets[url] = secret
            problems.append(
                f"{where}: an API key was written into the URL of {url}; it is moved to the "
                "key store and removed from the file."
            )
        if any(s.base_url == url for s in servers):
            problems.append(f"{where}: {url} is listed twice; the second was ignored.")
            continue
        name = item.get("name", "")
        if not isinstance(name, str):
            problems.append(f"{where}: 'name' should be text; it was ignored.")
            name = ""
        models = _strings(item.get("models", []), f"{where}.models", problems)
        servers.append(ServerConfig(base_url=url, name=name, models=models))
    return servers


def _window(value: object, problems: list[str]) -> dict[str, Any]:
    """The window state, without entries of the wrong kind (a huge size, a bad geometry)."""
    if not isinstance(value, dict):
        problems.append(f"'window' should be an object, not {_kind(value)}; it was ignored.")
        return {}
    window = dict(value)
    sizes = window.get("splitter")
    if sizes is not None and not (
        isinstance(sizes, list)
        and len(sizes) == 2
        and all(type(s) is int and 0 <= s <= _MAX_PIXELS for s in sizes)
    ):
        problems.append("'window.splitter' should be two sizes in pixels; it was ignored.")
        del window["splitter"]
    for key in ("geometry", "last_session"):
        if key in window and not isinstance(window[key], str):
            problems.append(f"'window.{key}' should be text; it was ignored.")
            del window[key]
    return window


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


def _theme(value: object, problems: list[str]) -> str:
    if value is None or value in THEMES:
        return value or "system"
    problems.append(f"'theme' should be one of {', '.join(THEMES)}; the system's look is used.")
    return "system"


def _text_size(value: object, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 100:
        return float(value)
    problems.append("'text_size' should be a size in points; the system's size is used.")
    return None


def _presets(value: object, problems: list[str]) -> list[ChatPreset] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        problems.append(f"'presets' should be a list, not {_kind(value)}; it was ignored.")
        return None
    found = [preset for preset in map(ChatPreset.from_json, value) if preset is not None]
    if len(found) != len(value):
        problems.append(f"'presets': {len(value) - len(found)} entries without a name ignored.")
    return found or None


def _switches(raw: object) -> dict[str, bool]:
    """The per-model on/off switches of settings.json, dropping anything not a bool."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, bool)}


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
