"""What an OpenAI client sends to ``/v1/chat/completions``, checked and turned into what
ChatDesk's providers take.

Agent clients send whole tool-calling conversations: assistant messages with
``content: null`` and ``tool_calls``, ``tool`` results with their ``tool_call_id``,
``developer`` messages (OpenAI's newer name for ``system``), content as lists of parts and
``name`` fields. All of these are accepted; anything ChatDesk cannot pass on is refused
with a 400 in OpenAI's error shape naming the field (``param``), never dropped silently.

``developer`` is sent as ``system`` (every server knows that role; OpenAI's own treats
the two alike), ``name`` fields are left out (many servers refuse them), and content lists
of a role other than ``user`` are joined into text, which is all those roles may hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from chatdesk.context import tool_messages_as_text
from chatdesk.domain import check_text, validate_content, validate_tool_calls
from chatdesk.providers.base import Provider

# The roles OpenAI's API accepts, and the one ChatDesk sends for each.
_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_TOOL_CHOICES = ("none", "auto", "required")


class OpenAIRequestError(HTTPException):
    """A request OpenAI's API would refuse too: 400 with the field at fault (``param``)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status_code=400, detail=message)
        self.param = param
        self.code = code


class ChatMessageIn(BaseModel):
    """One message of the conversation sent for completion, as OpenAI clients send it."""

    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    """``stream_options``: whether a last chunk reports the token usage."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request. Honoured: the generation options, ``tools``,
    ``tool_choice``, ``parallel_tool_calls``, ``response_format``, ``seed`` and
    ``stream_options``; ``n`` must be 1; ``user``, ``logprobs`` and fields ChatDesk does
    not know are ignored (``logprobs`` come back null)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    n: int | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What one provider is asked: the messages, the options, and whether tools went."""

    messages: list[dict[str, Any]]
    options: dict[str, Any]
    tools_offered: bool


def provider_request(body: ChatCompletionRequest, provider: Provider) -> ProviderRequest:
    """``body`` checked and translated for ``provider``; OpenAIRequestError when it cannot be.

    A backend that takes tools gets them and the conversation's tool messages as they
    are. One that does not (the embedded model) answers in text with the tools unseen when
    the client lets the model choose (``tool_choice`` "auto" or absent), as a model that
    chose not to call one; earlier tool calls and results reach it as text. A
    ``tool_choice`` that demands a call is a 400 for it: no answer could meet it.
    """
    if body.n is not None and body.n != 1:
        raise OpenAIRequestError(
            f"n={body.n} is not supported: ChatDesk generates one choice per request "
            "(send n=1, or several requests).",
            "n",
            "unsupported_value",
        )
    tools = _checked_tools(body.tools)
    tool_choice = _checked_tool_choice(body.tool_choice, tools)
    messages = [_provider_message(message, index) for index, message in enumerate(body.messages)]
    options: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_tokens or body.max_completion_tokens,
        "stop": body.stop,
        "seed": body.seed,
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "response_format": body.response_format,
    }
    offered = False
    if tools and provider.accepts_tools:
        options.update(
            tools=tools, tool_choice=tool_choice, parallel_tool_calls=body.parallel_tool_calls
        )
        offered = tool_choice != "none"
    elif tools and tool_choice not in (None, "auto", "none"):
        raise OpenAIRequestError(
            f"The model {body.model!r} cannot call tools, so a tool_choice that demands a "
            'call cannot be met. Send tool_choice "auto" (or none) to get a text answer, or use a '
            "model on a server that supports tools.",
            "tool_choice",
            "unsupported_value",
        )
    if not provider.accepts_tools:
        messages = [tool_messages_as_text(message) for message in messages]
    return ProviderRequest(
        messages, {k: v for k, v in options.items() if v is not None}, tools_offered=offered
    )


def _provider_message(message: ChatMessageIn, index: int) -> dict[str, Any]:
    """One message as providers take it (OpenAI's format, ``developer`` as ``system``)."""
    where = f"messages[{index}]"
    role = _ROLES.get(message.role)
    if role is None:
        hint = " ('function' messages are deprecated: send 'tool' messages)"
        raise OpenAIRequestError(
            f"{where}.role: unknown role {message.role!r}; expected one of "
            f"{', '.join(repr(r) for r in _ROLES)}{hint if message.role == 'function' else ''}.",
            f"{where}.role",
            "invalid_value",
        )
    content = message.content
    if content is None and role != "assistant":
        raise OpenAIRequestError(
            f"{where}.content: a {message.role} message needs content.", f"{where}.content"
        )
    try:
        if content is not None:
            validate_content(content)
        if isinstance(content, list) and role != "user":
            content = _joined_text(content, message.role)
        validate_tool_calls(message.tool_calls)
    except ValueError as exc:
        raise OpenAIRequestError(f"{where}: {exc}", where) from None
    converted: dict[str, Any] = {"role": role, "content": content}
    if message.tool_calls:
        if role != "assistant":
            raise OpenAIRequestError(
                f"{where}.tool_calls: only assistant messages carry tool calls.",
                f"{where}.tool_calls",
            )
        converted["tool_calls"] = [_tool_call(call) for call in message.tool_calls]
    if content is None:
        # OpenAI takes null beside tool calls; llama-cpp-python's server takes only text.
        converted["content"] = ""
    if role == "tool":
        if not message.tool_call_id:
            raise OpenAIRequestError(
                f"{where}.tool_call_id: a tool message needs the id of the call it answers.",
                f"{where}.tool_call_id",
            )
        converted["tool_call_id"] = message.tool_call_id
    return converted


def _joined_text(parts: list[dict[str, Any]], role: str) -> str:
    """The text parts of a system/developer/assistant/tool message, joined."""
    for part in parts:
        if part.get("type") != "text":
            raise ValueError(f"a {role} message may hold only text parts, not {part.get('type')!r}")
    return "".join(str(part["text"]) for part in parts)


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call reduced to OpenAI's fields (clients may add their own)."""
    function = call["function"]
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": function["name"], "arguments": function.get("arguments", "")},
    }


def _checked_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise OpenAIRequestError(
                f'{where}: expected {{"type": "function", "function": {{"name": ...}}}}.', where
            )
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise OpenAIRequestError(
                f"{where}.function.name: a tool needs a name.", f"{where}.function.name"
            )
        check_text(name, where=f"{where}.function.name")
    return tools


def _checked_tool_choice(
    choice: str | dict[str, Any] | None, tools: list[dict[str, Any]] | None
) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise OpenAIRequestError(
                f"tool_choice: unknown value {choice!r}; expected 'none', 'auto', 'required' "
                'or {"type": "function", "function": {"name": ...}}.',
                "tool_choice",
                "invalid_value",
            )
    elif _forced_tool_name(choice) is None:
        raise OpenAIRequestError(
            'tool_choice: expected {"type": "function", "function": {"name": ...}}.',
            "tool_choice",
            "invalid_value",
        )
    if tools is None:
        if choice == "none":
            return None
        raise OpenAIRequestError(
            "tool_choice is only allowed when tools are given.", "tool_choice", "invalid_value"
        )
    name = _forced_tool_name(choice)
    if name is not None and name not in {tool["function"]["name"] for tool in tools}:
        raise OpenAIRequestError(
            f"tool_choice names the function {name!r}, which is not among the tools.",
            "tool_choice",
            "invalid_value",
        )
    return choice


def _forced_tool_name(tool_choice: object) -> str | None:
    """The function a ``tool_choice`` like ``{"type": "function", "function": {"name":
    ...}}`` names, or None for any other choice ("auto", "required", "none", absent)."""
    if not isinstance(tool_choice, dict):
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None
