"""Chat presets: a named system prompt with a temperature and a longest reply.

A chat starts from one (File ▸ New Chat from Preset, or the chat's settings); the user's
own are kept in the preferences, and a few starters are offered until there are any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ChatPreset:
    """One preset; None means "the model's default" for each setting."""

    name: str
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def chat_settings(self) -> dict[str, Any]:
        """The preset's settings, as ``SessionManager.update_session`` takes them."""
        return {
            "system_prompt": self.system_prompt or None,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def to_json(self) -> dict[str, Any]:
        """The preset as settings.json keeps it."""
        return {"name": self.name, **self.chat_settings()}

    @classmethod
    def from_json(cls, raw: object) -> ChatPreset | None:
        """A preset from settings.json; None for an entry without a name. Settings of the
        wrong kind fall back to the model's default."""
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            return None
        name = raw["name"].strip()
        if not name:
            return None
        prompt = raw.get("system_prompt")
        temperature = raw.get("temperature")
        max_tokens = raw.get("max_tokens")
        return cls(
            name,
            prompt if isinstance(prompt, str) and prompt.strip() else None,
            float(temperature)
            if isinstance(temperature, int | float)
            and not isinstance(temperature, bool)
            and 0 <= temperature <= 2
            else None,
            max_tokens
            if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
            else None,
        )


# Offered until the user saves presets of their own.
STARTER_PRESETS: tuple[ChatPreset, ...] = (
    ChatPreset(
        "Concise answers",
        "Answer briefly and directly. Use lists when they help.",
        temperature=0.3,
        max_tokens=400,
    ),
    ChatPreset(
        "Code helper",
        "You are a careful programming assistant. Answer with working code in fenced "
        "blocks that name their language, then explain briefly.",
        temperature=0.2,
    ),
    ChatPreset(
        "Creative writing",
        "You are an imaginative writer with a vivid, concrete style.",
        temperature=1.0,
    ),
)
