"""Ingestion's CPU work runs in child processes, at a lower CPU priority than the service.

Under ``make run`` the worker shares its process with the API; pypdf and the splitter hold the
GIL for seconds and the embedding model takes every core, which would stall status requests,
WebSocket fan-out and chat. In child processes they cannot hold the GIL, and at a raised nice
value the kernel gives the API and the worker's event loop the CPU first whenever they need it;
an idle machine still gives the children all of it. A pathological PDF that eats memory takes
down only its child (the step then fails and is retried) instead of the service.

Two pools, one process each: ``text`` (pypdf, the splitter) and ``embedding`` (the model), so
one document is extracted while another is embedded.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from core import extraction
from core.extraction import ExtractionLimits
from core.storage import PageText, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from core.embeddings import Embedder, Precision
    from core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_NICENESS = 10


class ChildProcessDied(RuntimeError):
    """The child died mid-step (e.g. killed for memory); the step is retried."""


class ChildPool:
    """A lazily started child process that runs functions for activities."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.niceness = DEFAULT_NICENESS
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        # Which pool ran a future: only that one is discarded when its process dies, never a
        # fresh one another thread started meanwhile.
        self._pool_of: weakref.WeakKeyDictionary[Future[Any], ProcessPoolExecutor] = (
            weakref.WeakKeyDictionary()
        )

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the parent holds threads (gRPC, torch) that fork would corrupt.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=context,
                    initializer=_child_setup,
                    initargs=(os.getpid(), self.niceness),
                )
            return self._pool

    def run(
        self,
        heartbeat: Callable[[], object],
        fn: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``fn`` in the child process, calling ``heartbeat`` every second while it works."""
        return self.result(self.submit(fn, *args, **kwargs), heartbeat)

    def submit(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Start ``fn`` in the child process; collect it with :meth:`result`."""
        executor = self._executor()
        try:
            future = executor.submit(fn, *args, **kwargs)
        except BrokenProcessPool as exc:
            raise self._died(exc, executor) from exc
        self._pool_of[future] = executor
        return future

    def result(self, future: Future[R], heartbeat: Callable[[], object]) -> R:
        """Wait for ``future``, calling ``heartbeat`` every second."""
        try:
            while True:
                try:
                    return future.result(timeout=1.0)
                except FutureTimeout:
                    heartbeat()
        except BrokenProcessPool as exc:
            raise self._died(exc, self._pool_of.get(future)) from exc
        finally:
            # Cancelled while waiting (the activity was cancelled): don't start it if queued.
            future.cancel()

    def _died(self, exc: BrokenProcessPool, broken: ProcessPoolExecutor | None) -> ChildProcessDied:
        with self._lock:
            if broken is not None and self._pool is broken:
                self._pool = None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        return ChildProcessDied(f"the {self.name} process died: {exc}")

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


text_work = ChildPool("extraction")
embedding_work = ChildPool("embedding")
POOLS = (text_work, embedding_work)


def configure(*, niceness: int) -> None:
    """Applies to child processes started from now on."""
    for pool in POOLS:
        pool.niceness = niceness


def shutdown() -> None:
    for pool in POOLS:
        pool.shutdown()


def _child_setup(parent_pid: int, niceness: int) -> None:
    """In the child: lower its priority, and leave when the parent is gone, even if it was
    SIGKILLed (no clean-up ran)."""
    if niceness:
        os.nice(niceness)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# --- the functions that run in the child -------------------------------------------------


def extract_to_file(
    source: Path,
    first_page: int,
    last_page: int,
    target: Path,
    *,
    max_chars: int | None = None,
    limits: ExtractionLimits | None = None,
    ocr_pages_before: int = 0,
) -> list[int]:
    """Extract pages (units, in formats other than PDF) ``first..last`` of ``source`` into
    ``target``; return chars per page. Stops with ``text_too_large`` as soon as the pages
    pass ``max_chars``. Pages without a text layer are OCRed as ``limits`` say."""
    caps = limits or ExtractionLimits()
    if max_chars is not None:
        caps = replace(caps, max_chars=max_chars)
    pages = [
        PageText(page=unit.number, text=unit.text, label=unit.label, ocr=unit.ocr)
        for unit in extraction.extract_units(
            source, first_page, last_page, caps, ocr_pages_before=ocr_pages_before
        )
    ]
    write_jsonl(target, (asdict(page) for page in pages))
    return [len(page.text) for page in pages]


def inspect_document(source: Path, limits: ExtractionLimits) -> extraction.DocumentInfo:
    """The format and unit count of ``source`` (see core.extraction), in the child: flowing
    formats are parsed whole for it, and the parse is kept for the extract batches."""
    return extraction.inspect_document(source, limits)


_tokenizers: dict[str, object] = {}


def chunk_to_file(
    pages_files: list[Path],
    target: Path,
    *,
    tokenizer_path: Path,
    chunk_tokens: int,
    overlap_tokens: int,
) -> int:
    """Chunk the pages in ``pages_files`` (in order) into ``target``; return the chunk count."""
    from core.chunking import TokenChunker
    from core.embeddings import load_tokenizer

    key = str(tokenizer_path)
    if key not in _tokenizers:
        _tokenizers[key] = load_tokenizer(tokenizer_path)
    chunker = TokenChunker(
        _tokenizers[key],  # type: ignore[arg-type]
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
    )
    pages = (PageText(**row) for path in pages_files for row in read_jsonl(path))
    chunks = list(chunker.chunk_pages(pages))
    write_jsonl(target, (vars(chunk) for chunk in chunks))
    return len(chunks)


@dataclass(frozen=True)
class EmbedderConfig:
    """What the embedding child needs to load the same model as the rest of the service."""

    model_path: Path | None
    device: str
    batch_size: int
    threads: int | None
    streams: int | None
    precision: Precision

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbedderConfig:
        return cls(
            model_path=settings.embedding_model_path,
            device=settings.embedding_device,
            batch_size=settings.embedding_batch_size,
            threads=settings.embedding_threads,
            streams=settings.embedding_streams,
            precision=settings.embedding_precision,
        )

    def load(self) -> Embedder:
        from core.embeddings import Embedder

        return Embedder(
            self.model_path,
            device=self.device,
            batch_size=self.batch_size,
            threads=self.threads,
            streams=self.streams,
            precision=self.precision,
        )

    @property
    def texts_per_call(self) -> int:
        """A model batch for each stream: what keeps every stream busy in one call."""
        from core.embeddings import resolve_streams

        return self.batch_size * resolve_streams(self.streams, self.device, self.threads)


_embedders: dict[EmbedderConfig, Embedder] = {}


def _embedder(config: EmbedderConfig) -> Embedder:
    if config not in _embedders:
        _embedders[config] = config.load()
    return _embedders[config]


def load_embedder(config: EmbedderConfig) -> None:
    """Load the model (and run torch's one-time set-up) before the first document needs it."""
    _embedder(config).embed(["warm-up"])


def embed_texts(config: EmbedderConfig, texts: list[str]) -> list[list[float]]:
    return _embedder(config).embed(texts)
