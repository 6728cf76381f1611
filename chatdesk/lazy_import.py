"""Modules loaded on first use, so start-up imports only what the first paint needs."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class _DeferredModule(ModuleType):
    """Stands for a module not imported yet: the first attribute asked for imports it.

    Nothing is looked up before that, not even the parent package (the standard
    library's LazyLoader needs the module's spec, and finding a submodule's spec imports
    its package: APScheduler's alone costs 15 ms of start-up).
    """

    def __getattr__(self, attribute: str) -> Any:
        # Called only for names not found here: each is kept once looked up, so later
        # uses cost what a module attribute costs.
        value = getattr(importlib.import_module(self.__name__), attribute)
        setattr(self, attribute, value)
        return value


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported when one of its attributes is first used.

    A module already imported is returned as it is; a missing one raises ImportError
    at that first use.
    """
    return sys.modules.get(name) or _DeferredModule(name)
