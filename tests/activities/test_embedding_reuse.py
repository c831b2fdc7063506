"""The vectorize activity embeds a chunk text once: a second run of the same chunks takes every
vector from the embedding cache, and the stored vectors are the same."""

from __future__ import annotations

from pathlib import Path

from tests.activities.test_ingest import Stack, stack  # noqa: F401  (the fixture)
from workflows.contracts import ChunkInput, ExtractInput, ValidateInput, VectorizeInput


def test_a_second_vectorize_reuses_every_cached_vector(stack: Stack, corpus: Path) -> None:  # noqa: F811
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    stack.run(stack.activities.validate_upload, ValidateInput(task.id, document.id))
    stack.run(stack.activities.extract_pages, ExtractInput(task.id, document.id, 1, 4, 4))
    count = stack.run(stack.activities.chunk_document, ChunkInput(task.id, document.id)).chunk_count
    job = VectorizeInput(task.id, document.id, 0, count, count)
    vectors = stack.resources.vectors

    first = stack.run(stack.activities.vectorize_chunks, job)
    assert (first.vectors, first.embedded, first.reused) == (count, count, 0)
    before = dict(zip(*vectors.export_chunks(), strict=True))

    vectors.delete_document(document.id)
    again = stack.run(stack.activities.vectorize_chunks, job)
    assert (again.vectors, again.embedded, again.reused) == (count, 0, count)
    # The vectors the model made the first time, chunk by chunk (to the store's float32
    # rounding: Qdrant normalises each vector it is given for cosine).
    after = dict(zip(*vectors.export_chunks(), strict=True))
    assert after.keys() == before.keys()
    for text, vector in after.items():
        assert max(abs(a - b) for a, b in zip(vector, before[text], strict=True)) < 1e-6
    assert len(before) == len(
        {chunk.text for chunk in stack.resources.storage.read_chunks(document.id)}
    )
