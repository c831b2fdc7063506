"""Ingestion's child processes: lower priority than the service, same vectors as in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from core import offload
from core.embeddings import Embedder


def _identity() -> tuple[int, int]:
    return os.getpid(), os.nice(0)


@pytest.fixture
def pool() -> Iterator[offload.ChildPool]:
    child = offload.ChildPool("test")
    child.niceness = 7
    yield child
    child.shutdown()


def test_children_run_at_the_configured_nice_value(pool: offload.ChildPool) -> None:
    beats: list[None] = []
    pid, niceness = pool.run(lambda: beats.append(None), _identity)
    assert pid != os.getpid()
    assert niceness == os.nice(0) + 7


def test_a_dead_child_is_a_typed_failure_and_the_next_call_gets_a_new_one(
    pool: offload.ChildPool,
) -> None:
    first, _ = pool.run(lambda: None, _identity)
    with pytest.raises(offload.ChildProcessDied):
        pool.run(lambda: None, os._exit, 3)
    second, _ = pool.run(lambda: None, _identity)
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
