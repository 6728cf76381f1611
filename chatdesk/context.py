"""Context that always fits: the window, token counts, the budget, and compaction.

Every request must fit the model's context window: system prompt + history + a reserve
for the reply. This module knows

* the **window** of a model (:class:`ContextWindows`): a limit the model's server stated
  in an error wins, then a value the user set in Settings, then what the backend reports
  (the local model's ``n_ctx``, a server's model metadata), else 8,192 tokens;
* **token counts** (:class:`TokenCounter`): the model's own tokenizer where one is at
  hand (llama.cpp), else an estimate (about four characters a token) that the ``usage``
  servers report corrects over time; an image counts a fixed estimate;
* the **budget** (:func:`measure`), cheap enough to run before every send on a chat of
  10,000 messages (counts are cached per message);
* **compaction**: which oldest messages to fold into a summary (:func:`plan_compaction`),
  and the summary itself, written by the chat's own model, in chunks when the messages
  do not fit one request (:func:`summarise`). Storing it (originals kept) is the
  SessionManager's job; the ChatEngine puts the pieces together.

Nothing here imports Qt or touches the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatdesk.domain import Message, Session, content_text
from chatdesk.providers.base import ContextTooLongError, Provider
from chatdesk.providers.base import model_key as model_key  # re-exported

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 8192
# What one image costs: OpenAI bills a detailed 512x512 tile about 765 tokens, and a
# vision model on llama.cpp spends a few hundred; one fixed figure keeps the budget simple.
IMAGE_TOKENS = 768
# The chat template's markers around each message (<|im_start|>role ... <|im_end|>).
MESSAGE_OVERHEAD = 4
# The template's opening of the assistant's reply.
REPLY_PRIME = 3
# The reply's reserve: this, or a quarter of the window when that is smaller.
DEFAULT_REPLY_RESERVE = 1024
CHARS_PER_TOKEN = 4.0
# An estimate is kept this much below the window, for what it may miss; a real tokenizer
# leaves only the template's own additions (e.g. a default system prompt) to chance.
ESTIMATE_MARGIN = 0.10
TOKENIZER_MARGIN = 0.04
# Compaction folds the oldest messages until the history takes at most this share of
# what the window leaves after the reserve; "harder" (after the server still refused)
# goes further.
COMPACT_TARGET = 0.5
COMPACT_TARGET_HARDER = 0.25
# The summary's own length limit: this, or an eighth of the window when that is smaller
# (a summary taking much of a small window would leave no room for the chat it serves).
SUMMARY_MAX_TOKENS = 512
# Partial summaries merged by further requests at most this many times over.
MAX_SUMMARY_LEVELS = 3

SUMMARY_INSTRUCTIONS = (
    "You summarise conversations. Write a concise summary of the conversation you are "
    "given: the facts, names, numbers, decisions and open questions someone needs to "
    "continue it. Write plain sentences, no preamble."
)
SUMMARY_PREFIX = "Summary of the earlier conversation:"


def reply_reserve(window: int, max_tokens: object = None) -> int:
    """The tokens kept free for the reply in a window of ``window`` tokens."""
    wanted = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
    return max(16, min(wanted or DEFAULT_REPLY_RESERVE, window // 4))


class TokenCounter:
    """Counts tokens: with a model's tokenizer, or by estimate corrected from usage.

    Counts are cached per message (and per text for the tokenizer), so measuring a
    long chat again costs a dictionary lookup per message.
    """

    def __init__(self, tokenize: Callable[[str], int] | None = None) -> None:
        """``tokenize`` counts a text's tokens exactly; without it the count is estimated."""
        self._tokenize = tokenize
        # Estimates are multiplied by this; servers' reported usage moves it.
        self.scale = 1.0
        self._by_message: dict[str, tuple[object, object, int, int]] = {}
        self._by_text: dict[str, int] = {}

    @property
    def exact(self) -> bool:
        """Whether counts come from the model's own tokenizer."""
        return self._tokenize is not None

    @property
    def margin(self) -> float:
        """The share of the window kept free for what counting may miss."""
        return TOKENIZER_MARGIN if self.exact else ESTIMATE_MARGIN

    def text(self, text: str) -> int:
        """The tokens of ``text`` (unscaled for an estimate)."""
        if not text:
            return 0
        if self._tokenize is None:
            return int(len(text) / CHARS_PER_TOKEN) + 1
        found = self._by_text.get(text)
        if found is None:
            if len(self._by_text) > 50_000:  # a bound, not a policy: start again
                self._by_text.clear()
            found = self._tokenize(text)
            self._by_text[text] = found
        return found

    def message(self, message: Message) -> tuple[int, int]:
        """(text tokens including the template overhead, number of images) of a message."""
        cached = self._by_message.get(message.id)
        # Content is replaced, not mutated, when a message changes: identity says enough.
        if cached is not None and cached[0] is message.content and cached[1] is message.tool_calls:
            return cached[2], cached[3]
        content = message.content
        images = 0
        if isinstance(content, list):
            images = sum(1 for b in content if b.get("type") == "image_url")
            text = content_text(content)
        else:
            text = content
        tokens = MESSAGE_OVERHEAD + self.text(text)
        if message.tool_calls:
            tokens += self.text(json.dumps(message.tool_calls, ensure_ascii=False))
        if message.is_summary:
            tokens += self.text(SUMMARY_PREFIX)
        self._by_message[message.id] = (message.content, message.tool_calls, tokens, images)
        return tokens, images

    def uncached(self, messages: Sequence[Message], *, enough: int = 256) -> int:
        """How many of ``messages`` have no count yet (stops looking at ``enough``)."""
        missing = 0
        for message in messages:
            cached = self._by_message.get(message.id)
            if cached is None or cached[0] is not message.content:
                missing += 1
                if missing >= enough:
                    break
        return missing

    def scaled(self, tokens: int) -> int:
        """An estimate corrected by what servers reported (a tokenizer count as it is)."""
        return tokens if self.exact else int(tokens * self.scale + 0.5)

    def observe(self, estimated: int, reported: int | None) -> None:
        """Move the estimate towards a server's reported prompt size (``usage``).

        ``estimated`` is what this counter said (already scaled) for that prompt.
        """
        if self.exact or not reported or estimated <= 0:
            return
        wanted = min(max(self.scale * reported / estimated, 0.25), 4.0)
        # Smoothed, so one odd request (a cached prompt, say) does not swing the budget.
        self.scale = 0.7 * self.scale + 0.3 * wanted


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """Where a chat's context stands against its model's window, in tokens."""

    window: int
    system: int
    summary: int
    messages: int
    images: int
    image_count: int
    reserve: int
    margin: int = 0
    # Counted with the model's own tokenizer (else estimated).
    exact: bool = False

    @property
    def used(self) -> int:
        """What the request takes before the reply."""
        return self.system + self.summary + self.messages + self.images

    @property
    def limit(self) -> int:
        """What the request may take: the window less the reply's reserve and the margin."""
        return max(self.window - self.reserve - self.margin, 0)

    @property
    def fits(self) -> bool:
        """Whether the request and the reply's reserve fit the window."""
        return self.used <= self.limit

    @property
    def fraction(self) -> float:
        """How full the window is, reply reserve included (1.0 = full)."""
        return (self.used + self.reserve) / self.window if self.window else 1.0


def measure(
    session: Session,
    counter: TokenCounter,
    window: int,
    reserve: int,
    history: Sequence[Message] | None = None,
) -> ContextBudget:
    """The budget of sending ``session`` (or ``history`` with its system prompt) now."""
    messages = session.history if history is None else history
    system = summary = text = images = 0
    if session.system_prompt:
        system = MESSAGE_OVERHEAD + counter.text(session.system_prompt)
    for message in messages:
        tokens, count = counter.message(message)
        if message.compaction_id is not None:
            summary += tokens
        else:
            text += tokens
        images += count
    return ContextBudget(
        window=window,
        system=counter.scaled(system),
        summary=counter.scaled(summary),
        messages=counter.scaled(text + REPLY_PRIME),
        images=images * IMAGE_TOKENS,
        image_count=images,
        reserve=reserve,
        margin=int(window * counter.margin),
        exact=counter.exact,
    )


def build_context(session: Session, *, tools: bool = True) -> list[dict[str, Any]]:
    """What the model is sent: the system prompt with the summaries at the start of the
    history folded into it, then every other message.

    A summary is a system message to us; folding it into the one system message keeps
    chat templates that allow a single system message at the start working. With
    ``tools`` False, tool calls and results become plain text, for a model that does not
    take tools.
    """
    history = session.history
    start = 0
    system_parts = [session.system_prompt] if session.system_prompt else []
    while start < len(history) and history[start].is_summary:
        system_parts.append(f"{SUMMARY_PREFIX}\n{content_text(history[start].content)}")
        start += 1
    context: list[dict[str, Any]] = []
    if system_parts:
        context.append({"role": "system", "content": "\n\n".join(system_parts)})
    for message in history[start:]:
        if message.is_summary:
            context.append(
                {"role": "system", "content": f"{SUMMARY_PREFIX}\n{content_text(message.content)}"}
            )
        elif tools:
            context.append(message.to_context())
        else:
            context.append(tool_messages_as_text(message.to_context()))
    return context


def tool_messages_as_text(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` (a context dict) readable by a model that does not take tools.

    A tool result becomes a user message ``[Tool result] ...``, a reply that called tools
    an assistant message ending ``[Tool call] name(arg=...)``; any other message is
    returned as it is.
    """
    if message.get("role") == "tool":
        return {"role": "user", "content": f"[Tool result] {content_text(message['content'])}"}
    if not message.get("tool_calls"):
        return message
    calls = "; ".join(describe_tool_call(call) for call in message["tool_calls"])
    text = content_text(message.get("content") or "")
    return {"role": "assistant", "content": f"{text}\n[Tool call] {calls}".strip()}


def describe_tool_call(call: Mapping[str, Any]) -> str:
    """``manage_session(action="rename", title="Trip")`` for a tool call, readable."""
    function = call.get("function") or {}
    name = function.get("name") or "tool"
    raw = function.get("arguments") or ""
    try:
        arguments = json.loads(raw) if raw else {}
    except ValueError:
        return f"{name}({raw})"
    if not isinstance(arguments, dict):
        return f"{name}({raw})"
    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    return f"{name}({shown})"


class ContextWindows:
    """The context window of each model: learned, set by the user, reported, or default.

    ``settings`` maps a :func:`model_key` to a window the user set (a mapping, or a
    function looked up each time so changes in Settings apply at once); limits stated in
    servers' errors are remembered here and handed to ``on_learned`` so the app keeps
    them across runs.
    """

    def __init__(
        self,
        settings: Mapping[str, int] | Callable[[str], int | None] | None = None,
        *,
        default: int = DEFAULT_CONTEXT_WINDOW,
        learned: dict[str, int] | None = None,
        on_learned: Callable[[str, int], None] | None = None,
    ) -> None:
        """``settings`` gives the window the user set for a model key, if any;
        ``learned`` holds windows stated by servers (the app's own dict: what is learned
        goes into it, and what Settings clears from it is forgotten at once)."""
        if settings is None:
            settings = {}
        self._setting = settings if callable(settings) else settings.get
        self._default = default
        self._learned: dict[str, int] = learned if learned is not None else {}
        self._reported: dict[str, int | None] = {}
        self._counters: dict[str, TokenCounter] = {}
        self._on_learned = on_learned

    def learn(self, key: str, limit: int | None) -> None:
        """Remember a window a server stated (ignored when None or not a sane size)."""
        if limit is None or limit < 16 or self._learned.get(key) == limit:
            return
        # The newest statement wins: a server restarted with a larger window says so too.
        self._learned[key] = limit
        if self._on_learned is not None:
            self._on_learned(key, self._learned[key])

    def learned(self, key: str) -> int | None:
        """The window a server stated for ``key``, if one did."""
        return self._learned.get(key)

    async def window(self, provider: Provider, model: str | None) -> int:
        """The window of ``model`` on ``provider``, in tokens."""
        key = model_key(provider, model)
        if key in self._learned:
            return self._learned[key]
        configured = self._setting(key)
        if isinstance(configured, int) and configured > 0:
            return configured
        if key not in self._reported:
            self._reported[key] = await provider.context_window(model)
        return self._reported[key] or self._default

    def is_known(self, provider: Provider, model: str | None) -> bool:
        """Whether the window was stated, set or reported rather than the default guess."""
        key = model_key(provider, model)
        return bool(key in self._learned or self._setting(key) or self._reported.get(key))

    async def counter(
        self, provider: Provider, model: str | None, *, load: bool = True
    ) -> TokenCounter:
        """The token counter of ``model``: its tokenizer if the backend has one.

        With ``load`` False a model not loaded yet is not loaded for this (the meter must
        not load a model): its counts are estimated until it is.
        """
        key = model_key(provider, model)
        counter = self._counters.get(key)
        if counter is not None and (counter.exact or not provider.has_tokenizer):
            return counter
        tokenize = await provider.tokenizer(model, load=load) if provider.has_tokenizer else None
        if tokenize is not None or counter is None:
            counter = TokenCounter(tokenize)
            self._counters[key] = counter
        return counter


def plan_compaction(
    session: Session,
    counter: TokenCounter,
    budget: ContextBudget,
    *,
    harder: bool = False,
    everything: bool = False,
) -> list[Message]:
    """The oldest messages to fold into a summary so the rest fits comfortably, or [].

    From the newest message back, messages are kept while they fit the target share of
    the window (none with ``everything``); the last user message and everything after
    it are always kept, and a tool result is never separated from the call it answers.
    """
    history = session.history
    if len(history) < 2:
        return []
    last_user = max((i for i, m in enumerate(history) if m.role == "user"), default=len(history))
    target = int(budget.limit * (COMPACT_TARGET_HARDER if harder else COMPACT_TARGET))
    target = 0 if everything else target - budget.system
    kept = 0
    cut = len(history)
    while cut > 0:
        message = history[cut - 1]
        tokens, images = counter.message(message)
        cost = counter.scaled(tokens) + images * IMAGE_TOKENS
        if cut - 1 < last_user and kept + cost > target:
            break
        kept += cost
        cut -= 1
    # The first kept message must not be a tool result whose call would be summarised.
    while 0 < cut < len(history) and history[cut].role == "tool":
        cut -= 1
    if harder and cut == 0 and last_user > 0:
        cut = last_user  # the server refused: fold everything but the last exchange
    return list(history[:cut]) if cut >= 1 and not (cut == 1 and history[0].is_summary) else []


def transcript_lines(messages: Sequence[Message]) -> list[str]:
    """One readable line (or paragraph) per message, what a summary is written from."""
    lines = []
    for message in messages:
        text = content_text(message.content).strip()
        if isinstance(message.content, list):
            images = sum(1 for b in message.content if b.get("type") == "image_url")
            text = (text + " " + "[image]" * images).strip()
        if message.is_summary:
            lines.append(f"{SUMMARY_PREFIX} {text}")
        elif message.role == "tool":
            lines.append(f"Tool result: {text}")
        elif message.tool_calls:
            calls = "; ".join(describe_tool_call(c) for c in message.tool_calls)
            lines.append(f"Assistant: {text} [called {calls}]".replace(":  [", ": ["))
        else:
            lines.append(f"{message.role.capitalize()}: {text}")
    return lines


def _shorten(text: str, counter: TokenCounter, limit: int) -> str:
    """``text`` cut in the middle to about ``limit`` tokens (the original stays stored)."""
    if counter.scaled(counter.text(text)) <= limit:
        return text
    chars = max(int(limit * CHARS_PER_TOKEN * 0.9 / max(counter.scale, 0.25)), 40)
    while (
        chars > 40
        and counter.scaled(counter.text(text[: chars // 2] + text[-chars // 2 :])) > limit
    ):
        chars = int(chars * 0.8)
    return f"{text[: chars // 2]} […] {text[-chars // 2 :]}"


def chunk_lines(lines: Sequence[str], counter: TokenCounter, limit: int) -> list[str]:
    """``lines`` joined into chunks of at most ``limit`` tokens each (long lines cut)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = _shorten(line, counter, limit)
        cost = counter.scaled(counter.text(line)) + 1
        if current and size + cost > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += cost
    if current:
        chunks.append("\n".join(current))
    return chunks


async def summarise(
    messages: Sequence[Message],
    provider: Provider,
    model: str | None,
    counter: TokenCounter,
    window: int,
    *,
    timeout: float = 300.0,
) -> str:
    """A summary of ``messages`` written by ``model``; made in chunks when they do not
    fit one request, the partial summaries then summarised in turn.

    Raises the provider's error when the model fails; a model that answers nothing
    gives an extract of the messages instead (the originals are kept either way).
    """
    max_tokens = max(32, min(SUMMARY_MAX_TOKENS, window // 8))
    overhead = counter.scaled(counter.text(SUMMARY_INSTRUCTIONS)) + 3 * MESSAGE_OVERHEAD
    room = int(window * (1 - counter.margin)) - max_tokens - overhead
    room = max(room, 32)
    lines = transcript_lines(messages)
    shrinks = 0
    for _level in range(MAX_SUMMARY_LEVELS):
        while True:
            try:
                chunks = chunk_lines(lines, counter, room)
                # The parts share the summary's length, so together they rarely need
                # another round of summarising.
                each = max(32, max_tokens // len(chunks))
                parts = [
                    await _ask_summary(chunk, provider, model, each, timeout) for chunk in chunks
                ]
                break
            except ContextTooLongError:
                # The estimate was too kind to this model: smaller chunks, a few times.
                shrinks += 1
                if shrinks > MAX_SUMMARY_LEVELS or room <= 64:
                    raise
                room //= 2
        parts = [p for p in parts if p]
        if not parts:
            break
        if len(parts) == 1:
            return parts[0]
        joined = "\n".join(parts)
        if counter.scaled(counter.text(joined)) <= max_tokens * 2:
            return joined
        lines = parts
    return _extract(lines, counter, max_tokens)


async def _ask_summary(
    transcript: str, provider: Provider, model: str | None, max_tokens: int, timeout: float
) -> str:
    request = [
        {"role": "system", "content": SUMMARY_INSTRUCTIONS},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nSummary:"},
    ]
    text = ""
    async with asyncio.timeout(timeout):
        stream = provider.stream(request, model=model, max_tokens=max_tokens, temperature=0.2)
        try:
            async for delta in stream:
                text += delta
        finally:
            await stream.aclose()
    return text.strip()


def _extract(lines: Sequence[str], counter: TokenCounter, max_tokens: int) -> str:
    """The start of each line, as many as fit: a summary when the model wrote none."""
    per_line = max(max_tokens // max(len(lines), 1), 8)
    picked = [_shorten(line, counter, per_line) for line in lines]
    return "\n".join(picked) or "(no text)"
