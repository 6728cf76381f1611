"""Model backends: the Provider interface, its typed errors, and the concrete providers.

The base names are imported eagerly. The concrete providers are imported on first use
(``chatdesk.providers.OpenAICompatibleProvider``), so importing this package does not load
the ``openai`` SDK or ``llama_cpp``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chatdesk.providers.base import (
    AuthenticationError,
    ContextTooLongError,
    ModelNotFoundError,
    Provider,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ReplyStream,
    ServerError,
    StreamEnd,
    StreamInterruptedError,
    Usage,
)

if TYPE_CHECKING:
    from chatdesk.providers.local import LocalModelProvider
    from chatdesk.providers.openai_compat import OpenAICompatibleProvider

__all__ = [
    "AuthenticationError",
    "ContextTooLongError",
    "LocalModelProvider",
    "ModelNotFoundError",
    "OpenAICompatibleProvider",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ReplyStream",
    "ServerError",
    "StreamEnd",
    "StreamInterruptedError",
    "Usage",
]

# Attribute name -> module that defines it, imported only when the attribute is asked for.
_LAZY = {
    "OpenAICompatibleProvider": "chatdesk.providers.openai_compat",
    "LocalModelProvider": "chatdesk.providers.local",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
