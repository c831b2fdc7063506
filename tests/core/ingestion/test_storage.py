"""core/ingestion/storage.py: a vectorize batch reads only its own chunks; artifacts go by
document id."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ingestion.storage import DocumentStorage
from core.texts import Chunk


@pytest.fixture
def storage(tmp_path: Path) -> DocumentStorage:
    return DocumentStorage(uploads_dir=tmp_path / "uploads", artifacts_dir=tmp_path / "artifacts")


def chunks(count: int) -> list[Chunk]:
    return [
        Chunk(index=i, page=1 + i // 3, text=f"chunk {i} — Grüße", token_count=i)
        for i in range(count)
    ]


def corrupt_first_line(path: Path) -> None:
    """Replace the first line with bytes of the same length that are no JSON."""
    content = path.read_bytes()
    end = content.index(b"\n")
    path.write_bytes(b"#" * end + content[end:])


def test_chunks_round_trip_with_slices(storage: DocumentStorage) -> None:
    written = chunks(10)
    assert storage.write_chunks("doc", written) == 10
    assert storage.read_chunks("doc") == written
    assert storage.read_chunks("doc", 3, 7) == written[3:7]
    assert storage.read_chunks("doc", 8, 100) == written[8:]
    assert storage.read_chunks("doc", 10, 12) == []


def test_a_batch_decodes_only_its_own_lines(storage: DocumentStorage) -> None:
    written = chunks(10)
    storage.write_chunks("doc", written)
    corrupt_first_line(storage.chunks_path("doc"))
    # A batch further in never reads the broken first line...
    assert storage.read_chunks("doc", 4, 8) == written[4:8]
    # ...which is really broken: the batch that holds it fails on it.
    with pytest.raises(ValueError):
        storage.read_chunks("doc", 0, 2)


def test_chunks_written_without_an_index_are_still_read(storage: DocumentStorage) -> None:
    written = chunks(6)
    storage.write_chunks("doc", written)
    storage.chunks_index_path("doc").unlink()  # as chunked by a release without the index
    assert storage.read_chunks("doc", 2, 5) == written[2:5]


def test_an_index_of_another_run_is_not_trusted(storage: DocumentStorage) -> None:
    storage.write_chunks("doc", chunks(6))
    index = storage.chunks_index_path("doc").read_bytes()
    longer = chunks(9)
    storage.write_chunks("doc", longer)
    storage.chunks_index_path("doc").write_bytes(index)  # a crash between the two renames
    assert storage.read_chunks("doc", 5, 9) == longer[5:9]


def test_artifacts_are_removed_by_document_id_alone(storage: DocumentStorage) -> None:
    storage.write_chunks("doc", chunks(2))
    storage.write_chunks("other", chunks(2))
    storage.remove_artifacts("doc")
    assert not storage.artifact_dir("doc").exists()
    assert storage.read_chunks("other") == chunks(2)
