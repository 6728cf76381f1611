"""OpenAICompatibleProvider against a real HTTP server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from chatdesk.providers import (
    AuthenticationError,
    ContextTooLongError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from chatdesk.providers.openai_compat import OpenAICompatibleProvider, _retry_after, httpx
from tests.core.conftest import png_data_url
from tests.openai_test_server import DEFAULT_REPLY, OpenAITestServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-0123456789abcdef"
HELLO = [{"role": "user", "content": "Hello?"}]
LONG_REPLY = " ".join(f"word{i}" for i in range(100))


@pytest.fixture
async def provider(openai_server: OpenAITestServer) -> AsyncIterator[OpenAICompatibleProvider]:
    """A provider for the test server, without an API key."""
    built = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    yield built
    await built.close()


@pytest.fixture
def keyed_server() -> Iterator[OpenAITestServer]:
    """A test server that insists on the API key SECRET."""
    with OpenAITestServer(required_key=SECRET) as server:
        yield server


async def collect(provider: OpenAICompatibleProvider, messages=HELLO, **options) -> list[str]:
    stream = provider.stream(messages, **options)
    return [delta async for delta in stream]


def free_port() -> int:
    """A port nobody listens on (bound for a moment, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- streaming ------------------------------------------------------------------------------


async def test_streams_the_reply_as_deltas_with_finish_reason_and_usage(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    stream = provider.stream(HELLO)
    deltas = [delta async for delta in stream]

    assert len(deltas) == len(DEFAULT_REPLY.split(" ")) > 1
    assert "".join(deltas) == DEFAULT_REPLY
    assert stream.finish_reason == "stop"
    assert stream.usage is not None
    assert stream.usage.completion_tokens == len(deltas)
    assert stream.usage.prompt_tokens == 1
    sent = openai_server.requests[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "test-model"
    await wait_until(lambda: openai_server.completed_streams == 1)
    assert openai_server.client_disconnects == 0


async def test_messages_with_images_and_options_are_sent_unchanged(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": png_data_url()}},
            ],
        },
    ]
    await collect(provider, messages, model="other-model", max_tokens=20, temperature=0.2)

    sent = openai_server.requests[-1]
    assert sent["messages"] == messages
    assert sent["model"] == "other-model"
    assert openai_server.last_model == "other-model"
    assert sent["max_tokens"] == 20
    assert sent["temperature"] == 0.2


async def test_works_without_a_key(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    assert "".join(await collect(provider)) == DEFAULT_REPLY
    assert SECRET not in openai_server.headers[-1].get("Authorization", "")


async def test_sends_the_key_as_a_bearer_token(keyed_server: OpenAITestServer) -> None:
    provider = OpenAICompatibleProvider(keyed_server.base_url, SECRET, "test-model")
    try:
        assert "".join(await collect(provider)) == DEFAULT_REPLY
        assert await provider.list_models() == ["other-model", "test-model"]
    finally:
        await provider.close()
    assert keyed_server.headers[-1]["Authorization"] == f"Bearer {SECRET}"
    assert keyed_server.model_requests[-1]["Authorization"] == f"Bearer {SECRET}"


async def test_list_models_is_sorted(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.models = ["zeta", "alpha", "mid"]
    assert await provider.list_models() == ["alpha", "mid", "zeta"]


async def test_a_provider_without_a_model_uses_the_servers_first_model(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.models = ["zeta", "alpha"]
    provider = OpenAICompatibleProvider(openai_server.base_url, None, "")
    try:
        assert "".join([d async for d in provider.stream(HELLO)]) == DEFAULT_REPLY
        assert openai_server.last_model == "alpha"
        openai_server.models = []
        empty = OpenAICompatibleProvider(openai_server.base_url, None, "")
        with pytest.raises(ModelNotFoundError, match="lists no models"):
            [d async for d in empty.stream(HELLO)]
        await empty.close()
    finally:
        await provider.close()


async def test_servers_that_refuse_stream_options_are_asked_again_without(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.reject_stream_options = True
    stream = provider.stream(HELLO)
    assert "".join([delta async for delta in stream]) == DEFAULT_REPLY
    assert stream.finish_reason == "stop"
    assert stream.usage is None
    assert ["stream_options" in body for body in openai_server.requests] == [True, False]

    # The provider remembers: the next reply takes one request.
    assert "".join(await collect(provider)) == DEFAULT_REPLY
    assert len(openai_server.requests) == 3
    assert "stream_options" not in openai_server.requests[-1]


async def test_closing_the_stream_early_drops_the_connection(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.05
    stream = provider.stream(HELLO)
    first = await stream.__anext__()
    assert first == "word0 "
    await stream.aclose()

    await wait_until(lambda: openai_server.client_disconnects == 1)
    assert openai_server.completed_streams == 0
    # The provider still works afterwards.
    openai_server.chunk_delay = 0.0
    assert "".join(await collect(provider)) == LONG_REPLY


async def test_cancelling_the_consumer_stops_the_stream(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.05
    received: list[str] = []

    async def consume() -> None:
        stream = provider.stream(HELLO)
        try:
            async for delta in stream:
                received.append(delta)
        finally:
            await stream.aclose()

    task = asyncio.create_task(consume())
    await wait_until(lambda: len(received) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: openai_server.client_disconnects == 1)
    assert openai_server.completed_streams == 0


# -- errors ---------------------------------------------------------------------------------


async def test_a_rejected_key_is_an_authentication_error_that_never_shows_the_key(
    keyed_server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-9876543210"
    provider = OpenAICompatibleProvider(keyed_server.base_url, wrong, "test-model")
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AuthenticationError) as raised:
            await collect(provider)
        with pytest.raises(AuthenticationError) as raised_listing:
            await provider.list_models()
    finally:
        await provider.close()

    # The server echoes the key it got, like OpenAI does; none of it may get through.
    assert wrong in keyed_server.headers[-1]["Authorization"]
    for error in (raised.value, raised_listing.value):
        message = str(error)
        assert wrong not in message
        assert keyed_server.base_url in message and "API key" in message
        assert error.__cause__ is None
    assert wrong not in caplog.text


async def test_a_missing_key_is_an_authentication_error(keyed_server: OpenAITestServer) -> None:
    provider = OpenAICompatibleProvider(keyed_server.base_url, None, "test-model")
    try:
        with pytest.raises(AuthenticationError, match="needs an API key"):
            await collect(provider)
    finally:
        await provider.close()


async def test_rate_limiting_tells_when_to_retry(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.status = 429
    with pytest.raises(RateLimitError) as raised:
        await collect(provider)
    assert raised.value.retry_after == 7
    assert "try again in 7 s" in str(raised.value)


def test_retry_after_may_be_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    response = httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    seconds = _retry_after(response)
    assert seconds is not None and 25 <= seconds <= 30
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert _retry_after(httpx.Response(429)) is None


async def test_a_server_failure_is_a_server_error_with_its_status(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.status = 500
    with pytest.raises(ServerError) as raised:
        await collect(provider)
    assert raised.value.status == 500
    assert "500" in str(raised.value)
    assert "error while processing your request" in str(raised.value)


async def test_an_unknown_model_is_model_not_found(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.status = 404
    with pytest.raises(ModelNotFoundError) as raised:
        await collect(provider, model="no-such-model")
    assert "'no-such-model'" in str(raised.value)
    assert openai_server.base_url in str(raised.value)


async def test_a_too_long_conversation_is_context_too_long(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.status = 400
    with pytest.raises(ContextTooLongError, match="too long for model test-model"):
        await collect(provider)


async def test_a_server_nobody_listens_on_is_a_connection_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    provider = OpenAICompatibleProvider(base_url, None, "test-model", connect_timeout=2.0)
    try:
        with pytest.raises(ProviderConnectionError) as raised:
            await collect(provider)
        with pytest.raises(ProviderConnectionError):
            await provider.list_models()
    finally:
        await provider.close()
    assert str(raised.value) == f"Could not connect to {base_url}. Is the server running?"


async def test_a_server_that_does_not_answer_in_time_is_a_timeout(
    openai_server: OpenAITestServer,
) -> None:
    openai_server.first_byte_delay = 3.0
    provider = OpenAICompatibleProvider(openai_server.base_url, None, "test-model", timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeoutError):
            await collect(provider)
    finally:
        await provider.close()
    assert time.monotonic() - started < 2.5


async def test_a_connection_lost_mid_reply_is_stream_interrupted(
    provider: OpenAICompatibleProvider, openai_server: OpenAITestServer
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.hang_up_after = 2
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="lost mid-reply") as raised:
        async for delta in provider.stream(HELLO):
            received.append(delta)
    assert received == ["word0 ", "word1 "]
    assert isinstance(raised.value, ProviderError)
    assert openai_server.base_url in str(raised.value)


async def test_a_server_stopping_mid_reply_interrupts_the_stream_and_leaves_no_thread() -> None:
    server = OpenAITestServer().start()
    server.reply = LONG_REPLY
    server.chunk_delay = 0.05
    provider = OpenAICompatibleProvider(server.base_url, None, server.model)
    received: list[str] = []
    try:
        with pytest.raises(StreamInterruptedError):
            async for delta in provider.stream(HELLO):
                received.append(delta)
                if len(received) == 2:
                    started = time.monotonic()
                    await asyncio.to_thread(server.stop)
                    assert time.monotonic() - started < 3
    finally:
        await provider.close()
        server.stop()
    assert 2 <= len(received) < 100
    assert not any(t.name == "openai-test-server" for t in threading.enumerate())


# -- the package ----------------------------------------------------------------------------


def test_the_package_exports_the_provider_lazily() -> None:
    code = (
        "import sys\n"
        "import chatdesk.providers\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp'\n"
        "assert 'openai' not in sys.modules, 'openai'\n"
        "from chatdesk.providers import ProviderError, OpenAICompatibleProvider\n"
        "from chatdesk.providers.openai_compat import OpenAICompatibleProvider as direct\n"
        "assert OpenAICompatibleProvider is direct\n"
        "assert issubclass(chatdesk.providers.StreamInterruptedError, ProviderError)\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp after openai'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
