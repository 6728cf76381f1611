"""What an OpenAI-compatible server tells about one of its models beyond the protocol:
its context window and whether it sees images.

The OpenAI protocol has no field for either, so each server's own endpoints are asked
in turn and the first answer to each question wins:

- the model list's entries (vLLM ``max_model_len``, ``context_length``; OpenRouter's
  ``architecture.input_modalities``; ``capabilities`` as some proxies give);
- llama.cpp server's ``/props`` (``n_ctx``, and ``modalities.vision``);
- LM Studio's ``/api/v0/models/<model>`` (``loaded_context_length``, ``type: vlm``);
- Ollama's ``/api/show`` (``num_ctx`` or the trained length, ``capabilities``).

A probe is only a hint: any failure means "not reported", never an error for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:  # openai >= 3 talks through httpx2, earlier releases through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[no-redef]

# Asking a server about a model is a hint, worth a short wait only.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What a server reported about a model; None where it said nothing."""

    context_window: int | None = None
    sees_images: bool | None = None

    @property
    def complete(self) -> bool:
        """Whether both questions are answered (no further endpoint need be asked)."""
        return self.context_window is not None and self.sees_images is not None

    def filled_from(self, window: int | None, images: bool | None) -> ModelFacts:
        """These facts with the gaps filled by a later source (earlier sources win)."""
        return ModelFacts(
            self.context_window if self.context_window is not None else window,
            self.sees_images if self.sees_images is not None else images,
        )


async def probe_model(base_url: str, api_key: str | None, model: str) -> ModelFacts:
    """Ask the server at ``base_url`` what it knows about ``model``."""
    base = base_url.rstrip("/")
    root = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    facts = ModelFacts()
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, headers=headers) as client:

        async def get_json(method: str, url: str, **kwargs: Any) -> Any:
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            try:
                return response.json()
            except ValueError:
                return None

        listing = await get_json("GET", f"{base}/models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and entry.get("id") == model:
                facts = facts.filled_from(_listed_window(entry), _listed_images(entry))
        if facts.complete:
            return facts
        props = await get_json("GET", f"{root}/props")
        if isinstance(props, dict):
            facts = facts.filled_from(_llama_cpp_window(props), _llama_cpp_images(props))
        if facts.complete:
            return facts
        lm_studio = await get_json("GET", f"{root}/api/v0/models/{model}")
        if isinstance(lm_studio, dict):
            facts = facts.filled_from(_lm_studio_window(lm_studio), _lm_studio_images(lm_studio))
        if facts.complete:
            return facts
        ollama = await get_json("POST", f"{root}/api/show", json={"model": model})
        if isinstance(ollama, dict):
            facts = facts.filled_from(_ollama_window(ollama), _ollama_images(ollama))
    return facts


def positive_int(value: object) -> int | None:
    """``value`` as a positive int when it is one (a number or a string of digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _first_int(source: object, *names: str) -> int | None:
    if isinstance(source, dict):
        for name in names:
            found = positive_int(source.get(name))
            if found:
                return found
    return None


def _listed_window(entry: dict[str, Any]) -> int | None:
    return _first_int(entry, "max_model_len", "context_length", "max_context_length")


def _listed_images(entry: dict[str, Any]) -> bool | None:
    architecture = entry.get("architecture")
    if isinstance(architecture, dict):
        modalities = architecture.get("input_modalities")
        if isinstance(modalities, list):
            return "image" in modalities
    return _capabilities_images(entry.get("capabilities"))


def _capabilities_images(capabilities: object) -> bool | None:
    """``capabilities`` as a list of names (Ollama) or a map of switches (some proxies)."""
    if isinstance(capabilities, list):
        return "vision" in capabilities
    if isinstance(capabilities, dict):
        for name in ("vision", "image_input", "images"):
            if isinstance(capabilities.get(name), bool):
                return bool(capabilities[name])
    return None


def _llama_cpp_window(props: dict[str, Any]) -> int | None:
    return _first_int(props.get("default_generation_settings"), "n_ctx") or _first_int(
        props, "n_ctx"
    )


def _llama_cpp_images(props: dict[str, Any]) -> bool | None:
    modalities = props.get("modalities")
    if isinstance(modalities, dict) and isinstance(modalities.get("vision"), bool):
        return bool(modalities["vision"])
    return None


def _lm_studio_window(info: dict[str, Any]) -> int | None:
    return _first_int(info, "loaded_context_length", "max_context_length")


def _lm_studio_images(info: dict[str, Any]) -> bool | None:
    kind = info.get("type")
    if kind == "vlm":
        return True
    if kind == "llm":
        return False
    return None


def _ollama_window(info: dict[str, Any]) -> int | None:
    """Ollama's runtime window: ``num_ctx`` when the model sets it, else its trained one."""
    for line in str(info.get("parameters") or "").splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "num_ctx":
            found = positive_int(value.strip())
            if found:
                return found
    model_info = info.get("model_info")
    if isinstance(model_info, dict):
        for key, value in model_info.items():
            if str(key).endswith(".context_length"):
                return positive_int(value)
    return None


def _ollama_images(info: dict[str, Any]) -> bool | None:
    return _capabilities_images(info.get("capabilities"))
