"""The embedding model's precision setting: bfloat16 must give the vectors float32 gives."""

from __future__ import annotations

import pytest
import torch

from core.search.embeddings import (
    Embedder,
    native_bfloat16,
    resolve_precision,
    resolve_streams,
    usable_cores,
)

TEXTS = [
    "Ein topologischer Raum ist eine Menge mit einem System offener Teilmengen.",
    "The Vatican City is the smallest state in the world by area and population.",
    "Kurze Zeile.",
    " ".join(["Kompaktheit und Zusammenhang sind topologische Invarianten."] * 30),
]


def test_float32_never_autocasts() -> None:
    assert resolve_precision("float32", "cpu") is None


def test_auto_uses_bfloat16_only_where_the_hardware_has_it() -> None:
    expected = torch.bfloat16 if native_bfloat16("cpu") else None
    assert resolve_precision("auto", "cpu") == expected


def test_bfloat16_vectors_match_float32(embedder: Embedder) -> None:
    assert embedder.autocast_dtype is None  # the shared fixture is the float32 reference
    reduced = Embedder(precision="bfloat16")
    assert reduced.autocast_dtype == torch.bfloat16
    exact = torch.tensor(embedder.embed(TEXTS))
    approx = torch.tensor(reduced.embed(TEXTS))
    cosines = (exact * approx).sum(dim=1)
    assert approx.shape == (len(TEXTS), 384)
    assert cosines.min().item() > 0.999
    # Still unit vectors: the search uses cosine on normalised vectors.
    assert torch.allclose(approx.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_ranking_is_the_same_in_either_precision(precision: str) -> None:
    embedder = Embedder(precision=precision)  # type: ignore[arg-type]
    query = torch.tensor(embedder.embed_query("Was ist ein topologischer Raum?"))
    ranked = torch.tensor(embedder.embed(TEXTS)) @ query
    assert ranked.argmax().item() == 0


def test_streams_embed_exactly_what_one_stream_embeds(embedder: Embedder) -> None:
    # Many batches of uneven lengths: both streams busy, results put back in input order.
    texts = [f"{text} ({n})" for n in range(9) for text in TEXTS]
    streamed = Embedder(batch_size=4, streams=2)
    assert streamed.streams == 2
    one = torch.tensor(embedder.embed(texts))
    two = torch.tensor(streamed.embed(texts))
    assert torch.allclose(one, two, atol=1e-5)


def test_concurrent_callers_share_the_streams_safely() -> None:
    # Callers on several threads (the API embeds questions from a thread pool) never use the
    # tokenizer at once, which fast tokenizers refuse ("Already borrowed").
    from concurrent.futures import ThreadPoolExecutor

    streamed = Embedder(batch_size=2, streams=2)
    expected = streamed.embed(TEXTS)
    with ThreadPoolExecutor(4) as callers:
        results = list(callers.map(lambda _: streamed.embed(TEXTS), range(8)))
    for result in results:
        assert torch.allclose(torch.tensor(result), torch.tensor(expected), atol=1e-5)


def test_streams_default_to_two_on_a_multicore_cpu_and_respect_a_thread_budget() -> None:
    assert resolve_streams(3, "cpu") == 3
    assert resolve_streams(None, "cuda") == 1
    assert resolve_streams(None, "cpu", threads=1) == 1
    assert resolve_streams(None, "cpu", threads=8) == 2
    assert resolve_streams(None, "cpu") == (2 if usable_cores() >= 2 else 1)


def test_texts_cut_to_a_token_budget_embed_as_their_first_tokens(embedder: Embedder) -> None:
    text = "The backup runs every night at two and keeps thirty days of copies. " * 6
    ids = embedder.tokenizer.encode(text, add_special_tokens=False)[:16]
    start = str(embedder.tokenizer.decode(ids))
    [cut] = embedder.embed([text], max_tokens=16, batch_size=1)
    [whole] = embedder.embed([text])
    [first] = embedder.embed([start])
    assert sum(a * b for a, b in zip(cut, first, strict=True)) > 0.999
    assert sum(a * b for a, b in zip(cut, whole, strict=True)) < 0.999
