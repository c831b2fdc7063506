"""Ingestion's child processes: lower priority than the service, same vectors as in-process;
the text child is stopped whenever a call is abandoned, and its callers take turns."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import torch

from core.ingestion import offload
from core.search.embeddings import Embedder
from tests.core.ingestion.child_calls import identity, nap_then_die, nap_then_identity


class Cancelled(Exception):
    """What Temporal raises into an activity's thread when the activity is cancelled."""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


NO_WATCH = offload.Watch(heartbeat=lambda: None)


@pytest.fixture
def pool() -> Iterator[offload.ChildPool]:
    child = offload.ChildPool("test")
    child.niceness = 7
    yield child
    child.shutdown()


@pytest.fixture
def text_child() -> Iterator[offload.ChildProcess]:
    child = offload.ChildProcess("text-test")
    child.niceness = 5
    yield child
    child.shutdown()


def test_text_child_runs_at_the_configured_nice_value(text_child: offload.ChildProcess) -> None:
    text_child.start()  # started ahead of the first call, which it then serves
    started = text_child.pid
    assert started is not None
    pid, niceness = text_child.run(NO_WATCH, identity)
    assert pid == started != os.getpid()
    assert niceness == os.nice(0) + 5
    # The same child serves the next call.
    assert text_child.run(NO_WATCH, identity)[0] == pid


def test_a_cancelled_call_stops_the_child_and_the_next_call_gets_a_new_one(
    text_child: offload.ChildProcess,
) -> None:
    first, _ = text_child.run(NO_WATCH, identity)

    def cancel() -> None:
        raise Cancelled

    started = time.monotonic()
    with pytest.raises(Cancelled):
        text_child.run(offload.Watch(heartbeat=cancel), time.sleep, 60)
    assert time.monotonic() - started < 10, "the cancel must not wait for the call"
    assert _gone(first), "the child that ran the abandoned call must be stopped"
    second, _ = text_child.run(NO_WATCH, identity)
    assert second != first


def test_a_call_past_its_time_limit_stops_the_child(text_child: offload.ChildProcess) -> None:
    first, _ = text_child.run(NO_WATCH, identity)
    with pytest.raises(offload.ChildTimedOut):
        text_child.run(offload.Watch(heartbeat=lambda: None, timeout=0.5), time.sleep, 60)
    assert _gone(first)
    assert text_child.run(NO_WATCH, identity)[0] != first


def test_a_child_error_is_raised_and_keeps_the_child(text_child: offload.ChildProcess) -> None:
    first, _ = text_child.run(NO_WATCH, identity)
    with pytest.raises(ZeroDivisionError):
        text_child.run(NO_WATCH, divmod, 1, 0)
    assert text_child.run(NO_WATCH, identity)[0] == first


def test_a_child_that_dies_fails_only_its_own_call(text_child: offload.ChildProcess) -> None:
    outcomes: dict[str, object] = {}

    def dying() -> None:
        try:
            text_child.run(NO_WATCH, nap_then_die, 1.0)
        except offload.ChildProcessDied as exc:
            outcomes["dying"] = exc

    doomed = threading.Thread(target=dying)
    doomed.start()
    deadline = time.monotonic() + 60
    while text_child.pid is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the dying call holds the child
    # Queued behind the call whose child dies: it is served by a fresh child.
    pid, _ = text_child.run(NO_WATCH, identity)
    doomed.join()
    assert isinstance(outcomes.get("dying"), offload.ChildProcessDied)
    assert pid == text_child.pid


def test_callers_take_turns_in_the_order_they_asked(text_child: offload.ChildProcess) -> None:
    text_child.run(NO_WATCH, identity)  # started: the timing below is the calls' own
    order: list[str] = []
    first_call_running = threading.Event()

    def long_document() -> None:
        for number in range(4):
            first_call_running.set()
            text_child.run(NO_WATCH, nap_then_identity, 0.5)
            order.append(f"long-{number}")

    slow = threading.Thread(target=long_document)
    slow.start()
    first_call_running.wait()
    text_child.run(NO_WATCH, identity)
    order.append("short")
    slow.join()
    # The short document waits for the call under way, not for the whole long document.
    assert order.index("short") <= 1, order


def test_children_run_at_the_configured_nice_value(pool: offload.ChildPool) -> None:
    beats: list[None] = []
    pid, niceness = pool.run(lambda: beats.append(None), identity)
    assert pid != os.getpid()
    assert niceness == os.nice(0) + 7


def test_a_dead_child_is_a_typed_failure_and_the_next_call_gets_a_new_one(
    pool: offload.ChildPool,
) -> None:
    first, _ = pool.run(lambda: None, identity)
    with pytest.raises(offload.ChildProcessDied):
        pool.run(lambda: None, os._exit, 3)
    second, _ = pool.run(lambda: None, identity)
    assert second != first


def test_embedding_process_gives_the_in_process_vectors(embedder: Embedder) -> None:
    config = offload.EmbedderConfig(
        model_path=None,
        device="cpu",
        batch_size=8,
        threads=None,
        streams=None,
        precision="float32",
    )
    texts = ["Was ist ein topologischer Raum?", "The smallest state in the world."]
    pool = offload.ChildPool("embedding-test")
    try:
        remote = pool.run(lambda: None, offload.embed_texts, config, texts)
    finally:
        pool.shutdown()
    local = embedder.embed(texts)
    assert torch.allclose(torch.tensor(remote), torch.tensor(local), atol=1e-5)
