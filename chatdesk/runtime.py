"""The Qt-free core of a ChatDesk process: one manager, registry and engine, built once.

The window (``app.py``) and the headless ``chatdesk serve`` (``cli.py``) both start from
here, so they answer with the same models and write through the same kind of core.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatdesk.chat import ChatEngine
from chatdesk.context import ContextWindows, model_key
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.secrets import SecretStore
from chatdesk.sessions import SessionManager
from chatdesk.settings import LOCAL_PROVIDER, Preferences, StartupOptions

log = logging.getLogger(__name__)


def run_preferences(
    options: StartupOptions,
) -> tuple[Preferences, dict[str, str], Callable[[Path], None]]:
    """The preferences for this run, API keys given for this run, and how to save them.

    ``--provider``/``--base-url``/``--model`` choose the default model for this run only:
    saving writes the user's own default back unless they changed it meanwhile.
    """
    preferences = Preferences.load(options.preferences_path)
    persisted = (preferences.default_provider, preferences.default_model)
    runtime_keys: dict[str, str] = {}
    override: tuple[str, str | None] | None = None
    if options.provider == "openai" and options.base_url:
        override = (options.base_url, options.model)
        if options.api_key:
            runtime_keys[options.base_url] = options.api_key
    elif options.provider == LOCAL_PROVIDER:
        override = (LOCAL_PROVIDER, options.model)
    elif options.model:  # a model of the default provider (a .gguf file when it is local)
        override = (preferences.default_provider, options.model)
    if override is not None:
        preferences.default_provider, preferences.default_model = override

    def save(path: Path) -> None:
        on_disk = preferences
        if (preferences.default_provider, preferences.default_model) == override:
            on_disk = dataclasses.replace(
                preferences, default_provider=persisted[0], default_model=persisted[1]
            )
        on_disk.save(path)

    return preferences, runtime_keys, save


@dataclass(eq=False)
class Core:
    """The long-lived core objects of one process."""

    manager: SessionManager
    registry: ProviderRegistry
    engine: ChatEngine
    preferences: Preferences
    secrets: SecretStore
    save_preferences: Callable[[], None]

    async def close(self) -> None:
        """Finish titles, close providers, then the database (in that order)."""
        await self.engine.close()
        await self.registry.close()
        await self.manager.close()


def build_engine(
    manager: SessionManager,
    registry: ProviderRegistry,
    preferences: Preferences,
    save_preferences: Callable[[], None],
) -> ChatEngine:
    """The one ChatEngine of a process, as both the window and ``serve`` build it.

    It uses the context windows, the tools switch and the images switch set per model in
    Settings, and keeps what servers state in their errors (a window, a refusal of
    images), saved with the preferences.
    """

    def remember_window(key: str, limit: int) -> None:
        # Already in preferences.learned_context_windows (the dict the windows use).
        try:
            save_preferences()
        except OSError as exc:
            log.warning("could not save the context window learned for %s: %s", key, exc)

    def remember_text_only(key: str) -> None:
        # Next time the window warns before sending images to this model.
        if key in preferences.learned_text_only:
            return
        preferences.learned_text_only.append(key)
        try:
            save_preferences()
        except OSError as exc:
            log.warning("could not save that %s refused images: %s", key, exc)

    windows = ContextWindows(
        preferences.context_window,
        learned=preferences.learned_context_windows,
        on_learned=remember_window,
    )
    return ChatEngine(
        manager,
        registry.resolve_default()[0],
        resolve_provider=registry.resolve,
        context_windows=windows,
        tools_enabled=lambda provider, model: preferences.tools_enabled(model_key(provider, model)),
        reads_images=lambda provider, model: registry.image_support(provider, model).sees,
        on_images_refused=remember_text_only,
    )


async def open_core(options: StartupOptions) -> Core:
    """Open the database and build the registry and engine for ``options``.

    Raises StorageError when the database cannot be opened.
    """
    manager = await SessionManager.open(options.database_url)
    preferences, runtime_keys, save = run_preferences(options)
    secrets = SecretStore(options.preferences_path)
    registry = ProviderRegistry(preferences, secrets, runtime_keys=runtime_keys)

    engine = build_engine(manager, registry, preferences, lambda: save(options.preferences_path))
    return Core(
        manager=manager,
        registry=registry,
        engine=engine,
        preferences=preferences,
        secrets=secrets,
        save_preferences=lambda: save(options.preferences_path),
    )
