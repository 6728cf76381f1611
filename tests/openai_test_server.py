"""A real OpenAI-compatible HTTP server for tests, scriptable from the test.

It runs aiohttp on 127.0.0.1 in a thread of its own with its own event loop, so it serves
plain asyncio tests and Qt tests (whose loop is qasync) alike. Set the public attributes
to script what the next request gets; every chat completion request is recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from typing import Any

from aiohttp import web

DEFAULT_REPLY = "Hello from the test server."
CONTEXT_LIMIT_MESSAGE = "This model's maximum context length is 8 tokens"

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: (
        CONTEXT_LIMIT_MESSAGE
        + ". However, your messages resulted in 120 tokens. Please reduce the length of"
        " the messages.",
        "invalid_request_error",
        "context_length_exceeded",
    ),
    403: ("You are not allowed to use this model.", "invalid_request_error", None),
    404: ("The model `{model}` does not exist.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests", None),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded. Please try again later.", "server_error", None),
}


class OpenAITestServer:
    """``/v1/chat/completions`` (streaming and not) and ``/v1/models`` on a free port."""

    def __init__(self, required_key: str | None = None) -> None:
        """With ``required_key`` set, requests without ``Bearer <key>`` get HTTP 401."""
        self.required_key = required_key
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._active: set[asyncio.Task[Any]] = set()
        self.reset()

    def reset(self) -> None:
        """Restore every scriptable attribute to its default and forget recorded requests."""
        self.model = "test-model"
        self.models: list[str] = ["test-model", "other-model"]
        self.reply = DEFAULT_REPLY
        self.chunk_delay = 0.0
        self.first_byte_delay = 0.0
        self.status = 200
        self.hang_up_after: int | None = None
        self.reject_stream_options = False
        # A malformed server: with ``script`` set, a chat completion answers HTTP 200 with
        # ``script_content_type`` and writes the script's bytes as they are (a float is a
        # pause in seconds), then ends the body cleanly; nothing is checked or added.
        self.script: list[bytes | float] | None = None
        self.script_content_type = "text/event-stream"
        # A context window in tokens (a token is a word here, as in the usage reported).
        # A longer request gets a 400 context_length_exceeded, or, streamed with
        # ``empty_stream_when_too_long``, an empty 200 (what llama-cpp-python's server does).
        self.context_window: int | None = None
        self.empty_stream_when_too_long = False
        # And then, as llama-cpp-python's server does after that empty stream, drop the
        # kept-alive connection: the next request sent on it gets no answer at all.
        self.drop_connection_after_empty_stream = False
        self._dropped_transports: set[object] = set()
        # How many of the next chat requests get a 400 context-too-long whatever their size,
        # stating ``stated_limit`` as the window.
        self.context_errors = 0
        self.stated_limit = 8
        # Where the window is reported: None, "models" (vLLM's max_model_len), "llama.cpp"
        # (/props), "lmstudio" (/api/v0/models/<id>) or "ollama" (/api/show).
        self.report_window: str | None = None
        # Where whether the model sees images is reported, the same places ("models" is
        # OpenRouter's architecture.input_modalities), and what is reported.
        self.report_images: str | None = None
        self.sees_images = False
        # Behave as llama-cpp-python's server does where it differs from OpenAI: the name
        # of a streamed tool call repeated in every piece, and a 500 for a message whose
        # content is null (its request schema takes text only).
        self.like_llama_cpp_python = False
        # Seconds the endpoints that tell about a model (list, /props, /api/show, LM
        # Studio's) wait before answering.
        self.info_delay = 0.0
        # A request holding an image gets llama.cpp's 500 for a model without a projector.
        self.refuse_images = False
        # Any content list fails as llama-cpp-python's chat templates fail on one (a 500
        # with Python's words), as a text-only model's server does when sent an image.
        self.fail_on_content_lists = False
        # Tool calls to stream instead of text, one list per request that offers tools:
        # each call is {"name": ..., "arguments": "<json text>"}.
        self.tool_call_script: list[list[dict[str, str]]] = []
        # Stream the scripted calls even to a request that offers no tools (a bad model).
        self.tool_calls_unasked = False
        # A request whose tools could not be used: 400, like a server without tool support.
        self.reject_tools = False
        # Answer a request whose last message is a tool result with that result:
        # "Tool <tool_call_id> said: <content>", as a model finishing an agent's loop
        # (no scripted call is made then).
        self.answer_tool_results = False
        # What was received: the JSON body and the headers of every chat completion request.
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # The headers of every GET /v1/models.
        self.model_requests: list[dict[str, str]] = []
        # Streams the client went away from before the end, and streams sent to the end.
        self.client_disconnects = 0
        self.completed_streams = 0

    # -- life cycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, what a client is configured with."""
        if self.port is None:
            raise RuntimeError("the test server is not running")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def last_model(self) -> str | None:
        """The model the last chat completion request asked for."""
        return self.requests[-1].get("model") if self.requests else None

    def start(self) -> OpenAITestServer:
        """Start serving (returns once the port accepts connections)."""
        if self._thread is not None:
            raise RuntimeError("the test server is already running")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="openai-test-server", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start_site(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, end open streams, and join the server thread (``base_url`` stays)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def _start_site(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/props", self._props)
        app.router.add_get("/api/v0/models/{model}", self._lm_studio_model)
        app.router.add_post("/api/show", self._ollama_show)
        app.middlewares.append(self._track)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, 0))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()

    async def _shutdown(self) -> None:
        for task in list(self._active):
            task.cancel()
        if self._active:
            await asyncio.wait(list(self._active), timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers -----------------------------------------------------------------------

    @web.middleware
    async def _track(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Remember running handlers, so stop() can end them instead of waiting."""
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            return await handler(request)
        finally:
            self._active.discard(task)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _error(400, "The request body is not a JSON object.", "invalid_request_error")
        if request.transport in self._dropped_transports:
            self._hang_up(request)  # the connection a crashed stream left: closed, no answer
            return web.Response()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        refused = await self._refusal(request, body.get("model"))
        if refused is not None:
            return refused
        if self.reject_stream_options and "stream_options" in body:
            return _error(
                400,
                "Unrecognized request argument supplied: stream_options",
                "invalid_request_error",
                param="stream_options",
            )
        if self.refuse_images and _holds_image(body):
            return _error(
                500,
                "image input is not supported - hint: if this is unexpected, you may need "
                "to provide the mmproj",
                "server_error",
            )
        if self.like_llama_cpp_python and any(
            isinstance(m, dict) and m.get("content") is None for m in body.get("messages") or []
        ):
            return _error(500, "messages: Input should be a valid string", "server_error")
        if self.fail_on_content_lists and any(
            isinstance(m, dict) and isinstance(m.get("content"), list)
            for m in body.get("messages") or []
        ):
            return _error(500, 'can only concatenate str (not "list") to str', "server_error")
        if self.reject_tools and body.get("tools"):
            return _error(
                400, "This model does not support tools.", "invalid_request_error", param="tools"
            )
        if self.context_errors > 0:
            self.context_errors -= 1
            return self._too_long(body, self.stated_limit)
        too_long = self.context_window is not None and _prompt_tokens(body) > self.context_window
        if too_long and not (body.get("stream") and self.empty_stream_when_too_long):
            return self._too_long(body, self.context_window)
        model = body.get("model") or self.model
        if self.script is not None:
            return await self._play_script(request, self.script)
        if too_long:
            # llama-cpp-python's server: 200, an event stream, and not a single event.
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write_eof()
            if self.drop_connection_after_empty_stream:
                self._dropped_transports.add(request.transport)
            return response
        answer = self._tool_result_answer(body)
        reply = self.reply if answer is None else answer
        asked = (body.get("tools") or self.tool_calls_unasked) and answer is None
        calls = self.tool_call_script.pop(0) if asked and self.tool_call_script else None
        if not body.get("stream"):
            return web.json_response(self._completion(model, reply, calls))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, model, include_usage, calls, reply)

    def _tool_result_answer(self, body: dict[str, Any]) -> str | None:
        """With :attr:`answer_tool_results`, the answer to a request ending in a tool result."""
        messages = body.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        if self.answer_tool_results and last.get("role") == "tool":
            return f"Tool {last.get('tool_call_id')} said: {last.get('content')}"
        return None

    def _too_long(self, body: dict[str, Any], limit: int | None) -> web.Response:
        return _error(
            400,
            f"This model's maximum context length is {limit} tokens. However, your messages "
            f"resulted in {_prompt_tokens(body)} tokens. Please reduce the length of the "
            "messages.",
            "invalid_request_error",
            code="context_length_exceeded",
        )

    def _reports(self, where: str) -> tuple[bool, bool]:
        """Whether the endpoint ``where`` reports the window, and whether images."""
        window = self.report_window == where and self.context_window is not None
        return window, self.report_images == where

    async def _props(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.info_delay)
        window, images = self._reports("llama.cpp")
        if not (window or images):
            return _error(404, "Not found.", "invalid_request_error")
        props: dict[str, Any] = {}
        if window:
            props["default_generation_settings"] = {"n_ctx": self.context_window}
        if images:
            props["modalities"] = {"vision": self.sees_images, "audio": False}
        return web.json_response(props)

    async def _lm_studio_model(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.info_delay)
        window, images = self._reports("lmstudio")
        if not (window or images):
            return _error(404, "Not found.", "invalid_request_error")
        model = request.match_info["model"]
        info: dict[str, Any] = {"id": model}
        if window:
            info["max_context_length"] = self.context_window
        if images:
            info["type"] = "vlm" if self.sees_images else "llm"
        return web.json_response(info)

    async def _ollama_show(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.info_delay)
        window, images = self._reports("ollama")
        if not (window or images):
            return _error(404, "Not found.", "invalid_request_error")
        info: dict[str, Any] = {"parameters": "temperature 0.7"}
        if window:
            info["model_info"] = {"llama.context_length": self.context_window}
        if images:
            info["capabilities"] = ["completion", "vision"] if self.sees_images else ["completion"]
        return web.json_response(info)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        self.model_requests.append(dict(request.headers))
        refused = await self._refusal(request, None)
        if refused is not None:
            return refused
        data: list[dict[str, Any]] = [
            {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.models
        ]
        if self.report_window == "models" and self.context_window is not None:
            for entry in data:
                entry["max_model_len"] = self.context_window
        if self.report_images == "models":
            modalities = ["text", "image"] if self.sees_images else ["text"]
            for entry in data:
                entry["architecture"] = {"input_modalities": modalities}
        return web.json_response({"object": "list", "data": data})

    async def _refusal(self, request: web.Request, model: str | None) -> web.Response | None:
        """Wait ``first_byte_delay``; the error response the script asks for, if any."""
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        given = request.headers.get("Authorization", "")
        key_refused = self.required_key is not None and given != f"Bearer {self.required_key}"
        if key_refused or self.status == 401:
            key = given.removeprefix("Bearer ")
            return _error(
                401,
                f"Incorrect API key provided: {key}. You can find your API key in your account.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if self.status == 200:
            return None
        message, kind, code = _ERRORS.get(
            self.status, (f"The server failed with status {self.status}.", "server_error", None)
        )
        headers = {"Retry-After": "7"} if self.status == 429 else None
        return _error(
            self.status,
            message.format(model=model or self.model),
            kind,
            code=code,
            headers=headers,
        )

    async def _stream(
        self,
        request: web.Request,
        model: str,
        include_usage: bool,
        tool_calls: list[dict[str, str]] | None = None,
        reply: str | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        pieces = [] if tool_calls else _word_chunks(self.reply if reply is None else reply)

        def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": choices,
            }
            if usage is not None or include_usage:
                chunk["usage"] = usage
            return f"data: {json.dumps(chunk)}\n\n".encode()

        try:
            for index, piece in enumerate(pieces):
                if index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                if self.hang_up_after is not None and index >= self.hang_up_after:
                    self._hang_up(request)
                    return response
                delta = {"content": piece}
                if index == 0:
                    delta = {"role": "assistant", **delta}
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                await self._write(request, response, event([choice]))
            if self.hang_up_after is not None and len(pieces) >= self.hang_up_after:
                self._hang_up(request)
                return response
            for number, call in enumerate(tool_calls or ()):
                # As OpenAI streams a call: id and name first, the arguments in pieces.
                arguments = call.get("arguments", "")
                half = len(arguments) // 2
                fragments = [
                    {
                        "id": f"call_{uuid.uuid4().hex[:8]}",
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    },
                    {"function": {"arguments": arguments[:half]}},
                    {"function": {"arguments": arguments[half:]}},
                ]
                if self.like_llama_cpp_python:
                    # It names the function again in every piece.
                    for fragment in fragments[1:]:
                        fragment["function"]["name"] = call["name"]
                for fragment in fragments:
                    delta = {"tool_calls": [{"index": number, **fragment}]}
                    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                    await self._write(request, response, event([choice]))
            finish = "tool_calls" if tool_calls else "stop"
            stop = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
            await self._write(request, response, event([stop]))
            if include_usage:
                usage = _usage(self.requests[-1] if self.requests else {}, pieces)
                await self._write(request, response, event([], usage))
            await self._write(request, response, b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionError:
            self.client_disconnects += 1
            return response
        self.completed_streams += 1
        return response

    async def _play_script(
        self, request: web.Request, script: list[bytes | float]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": self.script_content_type})
        await response.prepare(request)
        try:
            for step in script:
                if isinstance(step, bytes):
                    await self._write(request, response, step)
                else:
                    await asyncio.sleep(step)
            await response.write_eof()
        except ConnectionError:
            self.client_disconnects += 1
            return response
        self.completed_streams += 1
        return response

    @staticmethod
    async def _write(request: web.Request, response: web.StreamResponse, data: bytes) -> None:
        if request.transport is None or request.transport.is_closing():
            raise ConnectionResetError("the client went away")
        await response.write(data)

    @staticmethod
    def _hang_up(request: web.Request) -> None:
        """Drop the connection mid-body: the client sees an incomplete chunked response."""
        # close() sends what was already written, then the FIN, but never the last chunk.
        request.protocol.force_close()
        if request.transport is not None:
            request.transport.close()

    def _completion(
        self, model: str, reply: str, tool_calls: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        pieces = [] if tool_calls else _word_chunks(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if tool_calls:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{uuid.uuid4().hex[:8]}",
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call.get("arguments", "")},
                    }
                    for call in tool_calls
                ],
            }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_test",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": _usage(self.requests[-1] if self.requests else {}, pieces),
        }


def sse_chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    """One ``data:`` event of a streamed chat completion, for ``OpenAITestServer.script``."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    chunk = {
        "id": "chatcmpl-script",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [choice],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _word_chunks(text: str) -> list[str]:
    """``"a b c"`` -> ``["a ", "b ", "c"]``: words, each keeping the space after it."""
    words = text.split(" ")
    pieces = [w + " " for w in words[:-1]] + [words[-1]]
    return [p for p in pieces if p]


def _prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's size in this server's tokens: the words of every message's content."""
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


def _usage(body: dict[str, Any], pieces: list[str]) -> dict[str, int]:
    prompt = _prompt_tokens(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(pieces),
        "total_tokens": prompt + len(pieces),
    }


def _error(
    status: int,
    message: str,
    kind: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error the way OpenAI words one."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _holds_image(body: dict[str, Any]) -> bool:
    """Whether a chat request has an image block in any message."""
    return any(
        isinstance(block, dict) and block.get("type") == "image_url"
        for message in body.get("messages") or []
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in message["content"]
    )
