"""The models the API offers: an id a client can name, mapped to a provider and model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatdesk.providers.registry import ProviderRegistry
from chatdesk.settings import LOCAL_PROVIDER

# The id of the embedded SmolLM2 model.
LOCAL_MODEL_ID = "local"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which provider answers a model id, and the model it is asked for there."""

    provider_id: str
    model: str | None
    label: str


def model_catalog(registry: ProviderRegistry) -> dict[str, ModelRef]:
    """Every model ChatDesk can use, by the id clients name it with.

    The embedded model is ``local``, another local ``.gguf`` file ``local/<file name>``, a
    server's model its own name (the first server offering a name wins). The default
    model chosen on the command line is included even when no saved server lists it.
    """
    found: dict[str, ModelRef] = {}
    for choice in registry.choices():
        if choice.provider_id == LOCAL_PROVIDER:
            model_id = LOCAL_MODEL_ID
            if choice.model is not None:
                model_id = f"local/{Path(choice.model).name}"
        else:
            model_id = choice.model or choice.provider_id
        found.setdefault(model_id, ModelRef(choice.provider_id, choice.model, choice.label))
    provider_id, model = registry.default_choice()
    if provider_id != LOCAL_PROVIDER and model:
        found.setdefault(model, ModelRef(provider_id, model, f"{model} — {provider_id}"))
    return found
