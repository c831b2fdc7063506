"""Ingestion's CPU work runs in child processes, at a lower CPU priority than the service.

Under ``make run`` the worker shares its process with the API; pypdf and the splitter hold the
GIL for seconds and the embedding model takes every core, which would stall status requests,
WebSocket fan-out and chat. In child processes they cannot hold the GIL, and at a raised nice
value the kernel gives the API and the worker's event loop the CPU first whenever they need it;
an idle machine still gives the children all of it. A pathological PDF that eats memory takes
down only its child (the step then fails and is retried) instead of the service.

Two children: ``text_work`` (pypdf, the splitter) and ``embedding_work`` (the model), so one
document is extracted while another is embedded.

The text child (:class:`ChildProcess`) serves one call at a time, in the order they were asked,
and its calls are short (a few pages, about half a second), so documents take turns and a slow
or hostile PDF cannot hold it for the others. A call that is abandoned (the activity was
cancelled or timed out) or that outlives its time limit stops the child: it is killed and the
next call starts a new one, so no work of a cancelled step goes on behind its back. The child
only computes and returns what it found; the worker writes every artifact itself.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from core.ingestion import extraction
from core.ingestion.extraction import ExtractionLimits
from core.texts import Chunk, PageText

if TYPE_CHECKING:
    from core.search.embeddings import Embedder, Precision
    from core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_NICENESS = 10
# How often a caller waiting on a child is given the chance to heartbeat (and so to notice a
# cancel): the heartbeats themselves are throttled by the Temporal worker.
BEAT_EVERY_S = 1.0
_POLL_S = 0.1


class ChildProcessDied(RuntimeError):
    """The child died mid-step (e.g. killed for memory); the step is retried."""


class ChildTimedOut(RuntimeError):
    """A call ran past its time limit; the child was stopped and the step is retried."""


@dataclass(frozen=True)
class Watch:
    """How a caller waits for a child: ``heartbeat`` is called at least every second while it
    waits (for its turn or for the answer); ``timeout`` bounds the call itself."""

    heartbeat: Callable[[], object]
    timeout: float | None = None


class ChildProcess:
    """One lazily started child process that runs calls one at a time, first come first
    served, and is stopped (killed, then replaced on the next call) whenever a call does not
    end with an answer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.niceness = DEFAULT_NICENESS
        self._turns: collections.deque[object] = collections.deque()
        self._changed = threading.Condition()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._busy = False

    @property
    def busy(self) -> bool:
        """A call is under way in the child."""
        return self._busy

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child now rather than on the first call: it takes seconds to import what
        it needs, which the first document's validation would otherwise wait for."""
        with self._turn(lambda: None):
            self._started()

    def run(self, watch: Watch, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` in the child and return its result or raise its error.

        Raises :class:`ChildProcessDied` if the child died, :class:`ChildTimedOut` after
        ``watch.timeout``; whatever ``watch.heartbeat`` raises (a cancel) stops the child too.
        """
        with self._turn(watch.heartbeat):
            try:
                conn = self._started()
                self._busy = True
                conn.send((fn, args, kwargs))
                kind, value = self._answer(conn, watch)
            except BaseException:
                # No answer: the child may still be at work on this call. Stop it, so nothing
                # of an abandoned call goes on (and the next caller gets a fresh child).
                self._stop()
                raise
            finally:
                self._busy = False
        if kind == "error":
            raise value
        result: R = value
        return result

    @contextlib.contextmanager
    def _turn(self, heartbeat: Callable[[], object]) -> Iterator[None]:
        """Wait, heartbeating, until every call asked for before this one has ended."""
        me = object()
        with self._changed:
            self._turns.append(me)
        try:
            while True:
                with self._changed:
                    if self._turns[0] is me:
                        break
                    self._changed.wait(BEAT_EVERY_S)
                heartbeat()
            yield
        finally:
            with self._changed:
                self._turns.remove(me)
                self._changed.notify_all()

    def _started(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._stop()
        # spawn, not fork: the parent holds threads (gRPC, torch) that fork would corrupt.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(theirs, os.getpid(), self.niceness),
            name=f"docchat-{self.name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        return ours

    def _answer(self, conn: Connection, watch: Watch) -> tuple[str, Any]:
        started = last_beat = time.monotonic()
        while True:
            try:
                if conn.poll(_POLL_S):
                    answer: tuple[str, Any] = conn.recv()
                    return answer
            except (EOFError, OSError) as exc:
                code = self._process.exitcode if self._process is not None else None
                raise ChildProcessDied(
                    f"the {self.name} process died (exit code {code}): {exc or 'no answer'}"
                ) from exc
            now = time.monotonic()
            if watch.timeout is not None and now - started > watch.timeout:
                raise ChildTimedOut(
                    f"the {self.name} process took more than {watch.timeout:.0f} s; stopped it"
                )
            if now - last_beat >= BEAT_EVERY_S:
                last_beat = now
                watch.heartbeat()

    def _stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.kill()
            process.join(timeout=5)

    def shutdown(self) -> None:
        with self._changed:
            self._stop()


class ChildPool:
    """A lazily started child process that runs functions for activities, several queued at
    once (the embedding pipeline keeps the next call waiting while the last one is stored)."""

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
                    return future.result(timeout=BEAT_EVERY_S)
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


text_work = ChildProcess("extraction")
embedding_work = ChildPool("embedding")
POOLS: tuple[ChildProcess | ChildPool, ...] = (text_work, embedding_work)


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


def _serve(conn: Connection, parent_pid: int, niceness: int) -> None:
    """The text child's loop: answer each call with ``("ok", result)`` or ``("error", exc)``."""
    _child_setup(parent_pid, niceness)
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed its end: it stopped us or is gone
        try:
            answer: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except Exception as exc:
            answer = ("error", exc)
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an answer that does not pickle: say what it was
            conn.send(("error", RuntimeError(f"unsendable answer from {fn!r}: {exc!r}")))


# --- the functions that run in the text child ------------------------------------------------


def extract_some(
    source: Path,
    first_page: int,
    last_page: int,
    *,
    limits: ExtractionLimits,
    max_chars: int | None,
    ocr_pages_before: int,
    seconds: float,
) -> list[PageText]:
    """Pages (units, in formats other than PDF) from ``first_page`` on, at least one and at
    most up to ``last_page``, for about ``seconds``. Stops with ``text_too_large`` as soon as
    they pass ``max_chars``; pages without a text layer are OCRed as ``limits`` say. Readers
    and parses stay open between calls (core.ingestion.extraction), so each call goes on where the
    last one stopped."""
    caps = limits if max_chars is None else replace(limits, max_chars=max_chars)
    deadline = time.monotonic() + seconds
    pages: list[PageText] = []
    units = extraction.extract_units(
        source, first_page, last_page, caps, ocr_pages_before=ocr_pages_before
    )
    for unit in units:
        pages.append(PageText(page=unit.number, text=unit.text, label=unit.label, ocr=unit.ocr))
        if time.monotonic() >= deadline:
            break
    return pages


def inspect_document(source: Path, limits: ExtractionLimits) -> extraction.DocumentInfo:
    """The format and unit count of ``source`` (see core.ingestion.extraction), in the child:
    flowing formats are parsed whole for it, and the parse is kept for the extract batches."""
    return extraction.inspect_document(source, limits)


_tokenizers: dict[str, object] = {}


def chunk_pages(
    pages: list[PageText],
    *,
    first_index: int,
    tokenizer_path: Path,
    chunk_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Chunk ``pages``, numbering the chunks from ``first_index``. Chunks never cross a page,
    so a document chunked a few pages per call gives the same chunks as in one call."""
    from core.ingestion.chunking import TokenChunker
    from core.search.embeddings import load_tokenizer

    key = str(tokenizer_path)
    if key not in _tokenizers:
        _tokenizers[key] = load_tokenizer(tokenizer_path)
    chunker = TokenChunker(
        _tokenizers[key],  # type: ignore[arg-type]
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
    )
    return [replace(chunk, index=first_index + chunk.index) for chunk in chunker.chunk_pages(pages)]


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
        from core.search.embeddings import Embedder

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
        from core.search.embeddings import resolve_streams

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
