"""Pure-Python CPU work (pypdf, the text splitter) runs in a child process.

Under ``make run`` the worker shares its process with the API; pypdf and the splitter hold the
GIL for seconds, which would stall status requests and WebSocket fan-out. In a child process
they cannot, and a pathological PDF that eats memory takes down only the child (the step then
fails and is retried) instead of the service.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import ParamSpec, TypeVar

from core import pdf
from core.storage import PageText, read_jsonl, write_jsonl

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_processes = 1


class ChildProcessDied(RuntimeError):
    """The child died mid-step (e.g. killed for memory); the step is retried."""


def configure(processes: int) -> None:
    global _processes
    _processes = max(1, processes)


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: the parent holds threads (gRPC, torch) that fork would corrupt.
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(
                max_workers=_processes,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def run(
    heartbeat: Callable[[], object], fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run ``fn`` in the child process, calling ``heartbeat`` every second while it works."""
    executor = _executor()
    future: Future[R] = executor.submit(fn, *args, **kwargs)
    try:
        while True:
            try:
                return future.result(timeout=1.0)
            except FutureTimeout:
                heartbeat()
    except BrokenProcessPool as exc:
        _discard(executor)
        raise ChildProcessDied(f"the extraction process died: {exc}") from exc
    finally:
        # Cancelled while waiting (the activity was cancelled): don't start it if queued.
        future.cancel()


def _exit_with_parent(parent_pid: int) -> None:
    """In the child: leave when the parent is gone, even if it was SIGKILLed (no clean-up ran)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


# --- the functions that run in the child -------------------------------------------------


def extract_to_file(
    source: Path, first_page: int, last_page: int, target: Path, *, max_chars: int | None = None
) -> list[int]:
    """Extract pages ``first..last`` of ``source`` into ``target``; return chars per page.
    Stops with ``text_too_large`` as soon as the pages pass ``max_chars``."""
    pages = list(pdf.extract_pages(source, first_page, last_page, max_chars=max_chars))
    write_jsonl(target, (vars(page) for page in pages))
    return [len(page.text) for page in pages]


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
