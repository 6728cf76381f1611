"""Which model answers which session: the local model and each configured server.

A session names its provider by id: ``"local"`` for the embedded model (its ``model`` is
None for the bundled SmolLM2, or the path of another ``.gguf`` file), or the base URL of
an OpenAI-compatible server from the preferences (its ``model`` is a model name there).
A session with no provider uses the user's default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatdesk.providers.base import Provider, model_key
from chatdesk.settings import LOCAL_PROVIDER, Preferences

if TYPE_CHECKING:
    from chatdesk.domain import Session
    from chatdesk.secrets import SecretStore

DEFAULT_LOCAL_LABEL = "SmolLM2 135M (local)"

ProviderFactory = Callable[[str, str | None, str | None], Provider]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One entry of the model selector."""

    provider_id: str
    model: str | None
    label: str


@dataclass(frozen=True, slots=True)
class ImageSupport:
    """Whether a model sees images (None: nobody said), how that is known (in words),
    and whether a setting can change it (not for the embedded models)."""

    sees: bool | None
    source: str
    settable: bool = True


def short_model_name(model: str) -> str:
    """A model's name as a list shows it: a model file's name without its folders."""
    if model.lower().endswith(".gguf") or model.startswith(("/", "~")):
        return Path(model).name
    return model


def build_provider(provider_id: str, model: str | None, api_key: str | None) -> Provider:
    """Create the provider for ``provider_id`` (the app's default factory)."""
    if provider_id == LOCAL_PROVIDER:
        from chatdesk.providers.local import LocalModelProvider

        return LocalModelProvider(model)
    from chatdesk.providers.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider(provider_id, api_key, model or "")


class ProviderRegistry:
    """Builds, caches and chooses providers from the preferences and the keyring."""

    def __init__(
        self,
        preferences: Preferences,
        secrets: SecretStore | None = None,
        *,
        factory: ProviderFactory = build_provider,
        runtime_keys: dict[str, str] | None = None,
    ) -> None:
        """``runtime_keys`` are API keys given for this run only (e.g. OPENAI_API_KEY)."""
        self.preferences = preferences
        self._secrets = secrets
        self._factory = factory
        self._runtime_keys = dict(runtime_keys or {})
        self._providers: dict[tuple[str, str | None], Provider] = {}
        self._retired: list[Provider] = []  # dropped providers, closed with the registry

    def api_key(self, provider_id: str) -> str | None:
        """The API key for a server: given for this run, else from the secret store."""
        if provider_id in self._runtime_keys:
            return self._runtime_keys[provider_id]
        return self._secrets.get(provider_id) if self._secrets is not None else None

    def provider(self, provider_id: str, model: str | None = None) -> Provider:
        """The (cached) provider for ``provider_id``; local models are one per file."""
        key = (provider_id, model if provider_id == LOCAL_PROVIDER else None)
        provider = self._providers.get(key)
        if provider is None:
            api_key = None if provider_id == LOCAL_PROVIDER else self.api_key(provider_id)
            provider = self._factory(provider_id, model, api_key)
            self._providers[key] = provider
        return provider

    def default_choice(self) -> tuple[str, str | None]:
        """The (provider id, model) a new session uses."""
        return self.preferences.default_provider, self.preferences.default_model

    def resolve(self, session: Session) -> tuple[Provider, str | None]:
        """The provider and model that answer ``session``."""
        return self._resolve(session.provider, session.model)

    def resolve_choice(
        self, provider_id: str | None, model: str | None
    ) -> tuple[Provider, str | None]:
        """The provider and model that would answer a session set to this choice."""
        return self._resolve(provider_id, model)

    def resolve_default(self) -> tuple[Provider, str | None]:
        """The provider and model that answer a new session."""
        return self._resolve(None, None)

    def reads_images(self, session: Session) -> bool | None:
        """Whether the model answering ``session`` can see images (None: not known)."""
        return self.image_support(*self.resolve(session)).sees

    def image_support(self, provider: Provider, model: str | None) -> ImageSupport:
        """Whether ``model`` sees images: as set in Settings, else as its backend reports
        (asked by :meth:`learn_image_support`), else text only if its server refused
        images before. Servers that say nothing are trusted (None)."""
        key = model_key(provider, model)
        chosen = self.preferences.image_input.get(key)
        if chosen is not None:
            return ImageSupport(chosen, "set in Settings")
        reported = provider.reported_image_input(model)
        if provider.name == LOCAL_PROVIDER:
            return ImageSupport(False, "an embedded model", settable=False)
        if key in self.preferences.learned_text_only:
            return ImageSupport(False, "its server refused images before")
        if reported is not None:
            return ImageSupport(reported, "as its server reports")
        return ImageSupport(None, "its server does not say")

    async def learn_image_support(self, provider: Provider, model: str | None) -> ImageSupport:
        """:meth:`image_support`, after asking ``provider`` once."""
        await provider.reads_images(model)
        return self.image_support(provider, model)

    def is_removed(self, provider_id: str | None) -> bool:
        """Whether ``provider_id`` names a server that is no longer configured."""
        return bool(
            provider_id
            and provider_id != LOCAL_PROVIDER
            and provider_id != self.preferences.default_provider
            and self.preferences.server(provider_id) is None
        )

    def _resolve(self, provider_id: str | None, model: str | None) -> tuple[Provider, str | None]:
        if self.is_removed(provider_id):
            # A chat set to a server that was removed is answered by the default model.
            provider_id, model = None, None
        if not provider_id:
            provider_id, default_model = self.default_choice()
            model = model or default_model
        if provider_id != LOCAL_PROVIDER and not model:
            server = self.preferences.server(provider_id)
            model = server.models[0] if server and server.models else None
        provider = self.provider(provider_id, model)
        return provider, (None if provider_id == LOCAL_PROVIDER else model)

    def choices(self) -> list[ModelChoice]:
        """Every model the selector offers: the local model(s), then each server's models."""
        found = [ModelChoice(LOCAL_PROVIDER, None, DEFAULT_LOCAL_LABEL)]
        local_files = list(self.preferences.local_models)
        # A file chosen for this run only (--model x.gguf) is offered too.
        for provider_id, model in self._providers:
            if provider_id == LOCAL_PROVIDER and model and model not in local_files:
                local_files.append(model)
        for path in local_files:
            found.append(ModelChoice(LOCAL_PROVIDER, path, f"{Path(path).stem} (local file)"))
        for server in self.preferences.servers:
            for model in server.models:
                found.append(ModelChoice(server.base_url, model, f"{model} — {server.label}"))
        default = self.default_choice()
        if default[0] != LOCAL_PROVIDER and self.preferences.server(default[0]) is None:
            # A server given for this run only (--base-url): named by the model that
            # answers, once known (see name_default_model).
            provider = self._providers.get((default[0], None))
            named = default[1] or (provider.model if provider is not None else None)
            shown = short_model_name(named) if named else "the server's first model"
            found.append(ModelChoice(default[0], default[1], f"{shown} — {default[0]}"))
        return found

    async def name_default_model(self) -> str | None:
        """Ask the default model's backend which model answers (a --base-url server
        started without --model answers with its first); None when it cannot say."""
        provider, _ = self.resolve_default()
        return await provider.default_model()

    def forget(self, provider_id: str) -> None:
        """Drop cached providers of ``provider_id`` (after its URL, key or models changed)."""
        for key in [k for k in self._providers if k[0] == provider_id]:
            self._retired.append(self._providers.pop(key))

    def forget_local(self, path: str) -> None:
        """Stop offering the local model file at ``path``.

        A reply may still be streaming from it, so it is closed with the registry, not now.
        """
        provider = self._providers.pop((LOCAL_PROVIDER, path), None)
        if provider is not None:
            self._retired.append(provider)

    async def close(self) -> None:
        """Close every provider that was created."""
        providers, self._providers = [*self._providers.values(), *self._retired], {}
        self._retired = []
        for provider in providers:
            await provider.close()
