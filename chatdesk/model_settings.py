"""What changing the model settings means: servers and their keys, local model files,
the default model, and the model a new chat gets. Qt-free; the settings dialog only
calls these and shows their result.

Each change is applied to the preferences (and the key store) and saved at once, and
cached providers of what changed are forgotten, so the next reply uses the new setting.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from chatdesk.providers.base import model_key
from chatdesk.providers.registry import ImageSupport, ProviderRegistry, build_provider
from chatdesk.settings import (
    LOCAL_PROVIDER,
    Preferences,
    ServerConfig,
    server_url_problem,
    split_url_secret,
)

GGUF_MAGIC = b"GGUF"
# A window below this cannot hold a system prompt, a summary and a reply.
MIN_CONTEXT_WINDOW = 256
_MODELS_SHOWN = 4


class KeyStore(Protocol):
    """Where API keys are kept (the keyring, this run's memory or the settings file)."""

    @property
    def keyring_available(self) -> bool:
        """Whether keys go to a real system keyring."""
        ...

    @property
    def warning(self) -> str | None:
        """Why keys are not kept safely, or None when they are."""
        ...

    def get(self, provider_id: str) -> str | None:
        """The key for ``provider_id``, if one is kept."""
        ...

    def set(self, provider_id: str, key: str, *, persist_in_settings_file: bool = False) -> None:
        """Keep ``key`` for ``provider_id``."""
        ...

    def delete(self, provider_id: str) -> None:
        """Forget the key for ``provider_id``."""
        ...


class SettingsRefused(ValueError):
    """A change that was not made, with the reason in words."""


def new_chat_model(preferences: Preferences) -> tuple[str, str | None]:
    """The (provider, model) a new chat is stamped with: the default model.

    A server default without a model means "the server's first model", as the registry
    resolves it when sending; it is stamped so a later change of that list or of the
    default changes new chats only, never an existing one.
    """
    provider, model = preferences.default_provider, preferences.default_model
    if model is None and provider != LOCAL_PROVIDER:
        server = preferences.server(provider)
        model = server.models[0] if server is not None and server.models else None
    return provider, model


def describe_models(models: list[str]) -> str:
    """A short sentence listing the models a server offers."""
    if not models:
        return "Connected, but the server lists no models."
    shown = ", ".join(models[:_MODELS_SHOWN])
    more = f" and {len(models) - _MODELS_SHOWN} more" if len(models) > _MODELS_SHOWN else ""
    noun = "model" if len(models) == 1 else "models"
    return f"Connected: {len(models)} {noun} ({shown}{more})."


async def fetch_models(base_url: str, api_key: str | None) -> list[str]:
    """Ask the server at ``base_url`` for its models (raises ProviderError in words)."""
    provider = build_provider(base_url, None, api_key)
    try:
        return sorted(await provider.list_models())
    finally:
        await provider.close()


def check_gguf_file(path: str | Path) -> str:
    """The resolved path of a readable GGUF model file; SettingsRefused says why not."""
    file = Path(path)
    if file.suffix.lower() != ".gguf" or not file.is_file():
        raise SettingsRefused(f"{file.name} is not a .gguf model file; nothing was added.")
    try:
        with file.open("rb") as handle:
            magic = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise SettingsRefused(f"{file.name} cannot be read ({exc.strerror}).") from exc
    if magic != GGUF_MAGIC:
        raise SettingsRefused(f"{file.name} does not look like a GGUF model (wrong file header).")
    return str(file.resolve())


def normalise_url(url: str) -> str:
    """A server's base URL as it is stored (no surrounding spaces, no trailing slash, and
    no API key typed into it: that goes to the key store, see url_key)."""
    return split_url_secret(url.strip())[0].rstrip("/")


def url_key(url: str) -> str | None:
    """The API key typed into ``url`` (``user:KEY@host``, ``?api-key=KEY``), if any."""
    return split_url_secret(url.strip())[1]


class ModelSettings:
    """The model settings over the registry's preferences, a key store and a saver."""

    def __init__(
        self,
        registry: ProviderRegistry,
        save: Callable[[], None],
        secrets: KeyStore | None = None,
    ) -> None:
        """``save`` writes the preferences (it raises OSError when it cannot)."""
        self.registry = registry
        self.preferences = registry.preferences
        self.secrets = secrets
        self._save = save

    def _key(self, provider_id: str, model: str | None) -> str:
        """The name the engine remembers the model by: a server chosen without a model
        is named by the model that answers (its first), once the server said which."""
        return model_key(*self.registry.resolve_choice(provider_id, model))

    def check_new_server(self, url: str) -> str:
        """The stored form of ``url``; SettingsRefused when empty or already in the list."""
        url = normalise_url(url)
        if not url:
            raise SettingsRefused("Enter the server's base URL first.")
        problem = server_url_problem(url)
        if problem is not None:
            raise SettingsRefused(f"That URL cannot be used: {problem}.")
        if self.preferences.server(url) is not None:
            raise SettingsRefused("That server is already in the list.")
        return url

    def add_server(
        self,
        url: str,
        models: list[str],
        *,
        name: str = "",
        key: str | None = None,
        persist_key_in_file: bool = False,
    ) -> ServerConfig:
        """Add the server at ``url`` offering ``models``, its key kept first."""
        url = self.check_new_server(url)
        if key and self.secrets is not None:
            self.secrets.set(url, key, persist_in_settings_file=persist_key_in_file)
        server = ServerConfig(base_url=url, name=name, models=models)
        self.preferences.servers.append(server)
        self.registry.forget(url)
        self._save()
        return server

    def update_server_models(self, url: str, models: list[str]) -> ServerConfig | None:
        """Keep ``models`` as what ``url`` offers; None when that server is gone."""
        server = self.preferences.server(url)
        if server is None:
            return None
        server.models = models
        self.registry.forget(url)
        self._save()
        return server

    def remove_server(self, url: str) -> ServerConfig | None:
        """Remove a server and its key; a default on it falls back to the local model."""
        server = self.preferences.server(url)
        if server is None:
            return None
        self.preferences.servers.remove(server)
        if self.secrets is not None:
            self.secrets.delete(server.base_url)
        if self.preferences.default_provider == server.base_url:
            self.preferences.default_provider = LOCAL_PROVIDER
            self.preferences.default_model = None
        self.registry.forget(server.base_url)
        self._save()
        return server

    def add_local_model(self, path: str | Path) -> str:
        """Offer the .gguf file at ``path`` as a local model; its resolved path."""
        resolved = check_gguf_file(path)
        if resolved in self.preferences.local_models:
            raise SettingsRefused(f"{Path(resolved).name} is already in the list.")
        self.preferences.local_models.append(resolved)
        self._save()
        return resolved

    def remove_local_model(self, path: str) -> bool:
        """Stop offering a model file (the file itself is left alone); False if not listed."""
        if path not in self.preferences.local_models:
            return False
        self.preferences.local_models.remove(path)
        if (self.preferences.default_provider, self.preferences.default_model) == (
            LOCAL_PROVIDER,
            path,
        ):
            self.preferences.default_model = None
        self.registry.forget_local(path)
        self._save()
        return True

    def set_default(self, provider_id: str, model: str | None) -> None:
        """New chats get ``model`` of ``provider_id`` from now on."""
        self.preferences.default_provider = provider_id
        self.preferences.default_model = model
        self._save()

    # -- per model: context window and tools ------------------------------------------------

    def context_window(self, provider_id: str, model: str | None) -> int | None:
        """The context window set for a model, or None for "as the server reports"."""
        return self.preferences.context_window(self._key(provider_id, model))

    def learned_context_window(self, provider_id: str, model: str | None) -> int | None:
        """The window the model's server stated in an error, if it did."""
        return self.preferences.learned_context_windows.get(self._key(provider_id, model))

    def set_context_window(self, provider_id: str, model: str | None, tokens: int | None) -> None:
        """Use ``tokens`` as the model's context window (None: what its server reports)."""
        if tokens is not None and tokens < MIN_CONTEXT_WINDOW:
            raise SettingsRefused(
                f"A context window of {tokens} tokens is too small; use at least "
                f"{MIN_CONTEXT_WINDOW}, or 0 for what the server reports."
            )
        key = self._key(provider_id, model)
        # What the user sets replaces a window learned from the server's errors.
        self.preferences.learned_context_windows.pop(key, None)
        if tokens is None:
            self.preferences.context_windows.pop(key, None)
        else:
            self.preferences.context_windows[key] = tokens
        self._save()

    def tools_enabled(self, provider_id: str, model: str | None) -> bool:
        """Whether the model is offered the manage_session tool."""
        return self.preferences.tools_enabled(self._key(provider_id, model))

    def set_tools_enabled(self, provider_id: str, model: str | None, enabled: bool) -> None:
        """Offer the manage_session tool to the model, or stop offering it."""
        key = self._key(provider_id, model)
        if enabled:
            while key in self.preferences.tools_off:
                self.preferences.tools_off.remove(key)
        elif key not in self.preferences.tools_off:
            self.preferences.tools_off.append(key)
        self._save()

    # -- per model: images ----------------------------------------------------------------

    def image_input(self, provider_id: str, model: str | None) -> bool | None:
        """Whether the model was set to see images (True) or not (False); None: as reported."""
        return self.preferences.image_input.get(self._key(provider_id, model))

    def set_image_input(self, provider_id: str, model: str | None, sees: bool | None) -> None:
        """Say whether the model sees images (None: go by what its server reports)."""
        if provider_id == LOCAL_PROVIDER and sees:
            raise SettingsRefused("The embedded models read text only; they cannot see images.")
        key = self._key(provider_id, model)
        # What the user sets replaces what a refusal taught.
        while key in self.preferences.learned_text_only:
            self.preferences.learned_text_only.remove(key)
        if sees is None:
            self.preferences.image_input.pop(key, None)
        else:
            self.preferences.image_input[key] = sees
        self._save()

    def image_support(self, provider_id: str, model: str | None) -> ImageSupport:
        """Whether the model sees images now, and how that is known."""
        provider = self.registry.provider(provider_id, model)
        return self.registry.image_support(provider, model)

    async def learn_image_support(self, provider_id: str, model: str | None) -> ImageSupport:
        """:meth:`image_support` after asking the model's server once."""
        return await self.registry.learn_image_support(
            self.registry.provider(provider_id, model), model
        )
