"""What agent-style OpenAI clients send to ``/v1/chat/completions``, and what they need back.

One real ``chatdesk serve`` process over the OpenAI test server (which answers with tool
calls when given tools, as a real server does), driven with the real openai SDK. The
test server records what reached it, so each test also checks what the model was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from tests.e2e.api_process import ServeProcess, create_token
from tests.openai_test_server import OpenAITestServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@dataclass
class Served:
    """The serve process, a client with a token of its, and the model server behind it."""

    url: str
    client: openai.OpenAI
    model_server: OpenAITestServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``chatdesk serve`` over a fresh data folder, answering with the OpenAI test server."""
    data_dir = tmp_path_factory.mktemp("agents")
    token = create_token(data_dir, "agent")
    with OpenAITestServer() as model_server:
        serve = ServeProcess(
            "--data-dir",
            str(data_dir),
            "--base-url",
            model_server.base_url,
            "--model",
            "test-model",
        )
        client = openai.OpenAI(base_url=f"{serve.url}/v1", api_key=token, max_retries=0)
        try:
            yield Served(serve.url, client, model_server)
        finally:
            client.close()
            serve.close()


@pytest.fixture
def served_fresh(served: Served) -> Served:
    """``served`` with the test server back to its default script."""
    served.model_server.reset()
    return served


def complete(served: Served, stream: bool, **request: Any) -> dict[str, Any]:
    """One completion through the SDK, as a dict; a stream is put together the way agent
    clients do it (text joined, tool call pieces merged by index). ``chunks`` holds every
    chunk of a stream."""
    if not stream:
        return served.client.chat.completions.create(model="test-model", **request).model_dump()
    chunks = list(served.client.chat.completions.create(model="test-model", stream=True, **request))
    text, finish, calls = "", None, {}
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for piece in choice.delta.tool_calls or ():
                call = calls.setdefault(piece.index, {"id": None, "function": {}})
                call["id"] = piece.id or call["id"]
                call["type"] = piece.type or call.get("type")
                if piece.function is not None:
                    for field in ("name", "arguments"):
                        part = getattr(piece.function, field) or ""
                        call["function"][field] = call["function"].get(field, "") + part
    message = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return {
        "choices": [{"message": message, "finish_reason": finish}],
        "chunks": [chunk.model_dump() for chunk in chunks],
    }


@pytest.mark.parametrize("upstream", ["openai", "llama-cpp-python"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_agent_loop_gets_the_tool_call_and_then_the_answer(
    served_fresh: Served, stream: bool, upstream: str
) -> None:
    server = served_fresh.model_server
    # Found trying llama-cpp-python's own server: the name repeated in every streamed
    # piece came back as "get_weatherget_weather…", and its null content was refused.
    server.like_llama_cpp_python = upstream == "llama-cpp-python"
    server.tool_call_script = [[{"name": "get_weather", "arguments": '{"city": "Paris"}'}]]
    server.answer_tool_results = True
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": "You are a weather agent."},
        {"role": "user", "content": "Weather in Paris?"},
    ]

    first = complete(served_fresh, stream, messages=messages, tools=[WEATHER_TOOL])

    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    sent = server.requests[-1]
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["messages"][0] == {"role": "system", "content": "You are a weather agent."}

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"},
    ]
    second = complete(served_fresh, stream, messages=messages, tools=[WEATHER_TOOL])

    assert second["choices"][0]["finish_reason"] == "stop"
    assert second["choices"][0]["message"]["content"] == f"Tool {call['id']} said: 18 C, sunny"
    assert not second["choices"][0]["message"].get("tool_calls")
    sent_messages = server.requests[-1]["messages"]
    assert sent_messages[-2:] == [
        {
            "role": "assistant",
            "content": "",  # what every server takes (llama-cpp-python's refuses null)
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C, sunny", "tool_call_id": call["id"]},
    ]


def test_tool_call_chunks_come_as_openai_streams_them(served_fresh: Served) -> None:
    served_fresh.model_server.tool_call_script = [
        [
            {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            {"name": "get_time", "arguments": "{}"},
        ]
    ]
    streamed = complete(
        served_fresh,
        True,
        messages=[{"role": "user", "content": "Weather and time?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice="required",
        parallel_tool_calls=True,
    )

    pieces = [
        piece
        for chunk in streamed["chunks"]
        for choice in chunk["choices"]
        for piece in choice["delta"].get("tool_calls") or ()
    ]
    heads = [piece for piece in pieces if piece["id"]]
    assert [(h["index"], h["type"], h["function"]["name"]) for h in heads] == [
        (0, "function", "get_weather"),
        (1, "function", "get_time"),
    ]
    assert all(piece["index"] in (0, 1) for piece in pieces)
    calls = streamed["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Oslo"}', "{}"]
    assert streamed["choices"][0]["finish_reason"] == "tool_calls"
    sent = served_fresh.model_server.requests[-1]
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is True


def test_include_usage_ends_the_stream_with_a_usage_chunk(served_fresh: Served) -> None:
    streamed = complete(
        served_fresh,
        True,
        messages=[{"role": "user", "content": "two words"}],
        stream_options={"include_usage": True},
    )

    last = streamed["chunks"][-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 2  # the test server counts words
    assert last["usage"]["completion_tokens"] == 5  # "Hello from the test server."
    assert last["usage"]["total_tokens"] == 7
    assert all(chunk["usage"] is None for chunk in streamed["chunks"][:-1])
    assert streamed["choices"][0]["message"]["content"] == "Hello from the test server."
    whole = complete(served_fresh, False, messages=[{"role": "user", "content": "two words"}])
    assert whole["usage"] == last["usage"]


def test_content_parts_names_and_null_content_are_accepted(served_fresh: Served) -> None:
    whole = complete(
        served_fresh,
        False,
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "name": "bot", "content": None},
            {"role": "user", "content": "Again"},
        ],
    )

    assert whole["choices"][0]["message"]["content"] == "Hello from the test server."
    assert served_fresh.model_server.requests[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Again"},
    ]


def test_other_openai_fields_are_honoured_or_ignored(served_fresh: Served) -> None:
    whole = complete(
        served_fresh,
        False,
        messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_object"},
        seed=7,
        n=1,
        user="someone@example.com",
        logprobs=True,
        top_logprobs=2,
    )

    assert whole["choices"][0]["message"]["content"] == "Hello from the test server."
    sent = served_fresh.model_server.requests[-1]
    assert sent["response_format"] == {"type": "json_object"} and sent["seed"] == 7
    assert not {"user", "logprobs", "top_logprobs", "n"} & set(sent)


@pytest.mark.parametrize(
    ("request_fields", "param", "words"),
    [
        pytest.param(
            {"messages": [{"role": "robot", "content": "beep"}]},
            "messages[0].role",
            "unknown role 'robot'",
            id="unknown-role",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}], "n": 2},
            "n",
            "n=2 is not supported",
            id="n-above-one",
        ),
        pytest.param(
            {"messages": [{"role": "tool", "content": "18 C"}]},
            "messages[0].tool_call_id",
            "needs the id of the call",
            id="tool-without-id",
        ),
        pytest.param(
            {"messages": []},
            "messages",
            "at least 1 item",
            id="no-messages",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}], "temperature": 5},
            "temperature",
            "less than or equal to 2",
            id="temperature-out-of-range",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"},
            "tool_choice",
            "only allowed when tools are given",
            id="tool-choice-without-tools",
        ),
    ],
)
def test_a_request_openai_would_refuse_is_a_clear_400(
    served_fresh: Served, request_fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        served_fresh.client.chat.completions.create(model="test-model", **request_fields)

    error = refused.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]
    assert served_fresh.model_server.requests == []


def test_the_embedded_model_refuses_a_demanded_tool_call_in_words(served_fresh: Served) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        served_fresh.client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL],
            tool_choice="required",
        )

    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "tool_choice"
    assert "'local' cannot call tools" in error["message"]


def test_the_embedded_model_answers_an_agent_conversation_in_text(served_fresh: Served) -> None:
    answer = served_fresh.client.chat.completions.create(
        model="local",
        messages=[
            {"role": "developer", "content": "You are a weather agent."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        ],
        tools=[WEATHER_TOOL],
        max_tokens=8,
        temperature=0,
    )

    choice = answer.choices[0]
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.content


def test_a_server_refusing_the_tools_is_a_400_with_its_words(served_fresh: Served) -> None:
    served_fresh.model_server.reject_tools = True
    with pytest.raises(openai.BadRequestError) as refused:
        served_fresh.client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL]
        )

    assert "This model does not support tools." in str(refused.value.message)


def test_failures_of_the_model_keep_their_meaning_for_the_client(served_fresh: Served) -> None:
    server = served_fresh.model_server
    messages = [{"role": "user", "content": "hi"}]
    server.context_errors = 1
    with pytest.raises(openai.BadRequestError) as too_long:
        served_fresh.client.chat.completions.create(model="test-model", messages=messages)
    server.status = 429
    with pytest.raises(openai.RateLimitError) as limited:
        served_fresh.client.chat.completions.create(model="test-model", messages=messages)

    assert isinstance(too_long.value.body, dict)
    assert too_long.value.body["code"] == "context_length_exceeded"
    assert limited.value.response.headers["retry-after"] == "7"
