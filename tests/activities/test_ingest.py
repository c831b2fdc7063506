"""The ingestion activities on their own, with the real text child, pypdf, SQLite and storage:
what their heartbeats say, what a batch reads, what a cancel or a deletion leaves behind."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities import ingest
from activities.ingest import IngestActivities, IngestDependencies
from core.ingestion import offload, records
from core.ingestion.tables import Document, FileProcessingTask
from core.runtime import Resources, open_resources
from core.search.embeddings import bundled_model_path
from core.settings import Settings
from core.texts import PageText
from workflows.contracts import ChunkInput, ExtractInput, StepProgress, ValidateInput


@dataclasses.dataclass
class Stack:
    resources: Resources
    activities: IngestActivities
    env: ActivityEnvironment
    beats: list[StepProgress | None]

    def add_document(self, source: Path) -> tuple[Document, FileProcessingTask]:
        document = Document(
            filename=source.name,
            stored_name=f"{source.stem}.pdf",
            size_bytes=source.stat().st_size,
            sha256=source.stem.ljust(64, "0")[:64],
            owner="alice",
        )
        shutil.copy(source, self.resources.storage.upload_path(document.stored_name))
        task = FileProcessingTask(document_id=document.id, workflow_id="w", owner="alice")
        records.create_document_and_task(self.resources.engine, document=document, task=task)
        return document, task

    def run(self, fn: Any, *args: Any) -> Any:
        return self.env.run(fn, *args)

    def done(self, step: str) -> list[int]:
        """The distinct counts the heartbeats of ``step`` reported, in order."""
        counts: list[int] = []
        for beat in self.beats:
            if beat is not None and beat.step == step and (not counts or counts[-1] != beat.done):
                counts.append(beat.done)
        return counts


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    resources = open_resources(Settings(data_dir=tmp_path / "data"))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(),
        start_to_close_timeout=timedelta(minutes=10),
        started_time=datetime.now(UTC),
    )
    beats: list[StepProgress | None] = []
    env.on_heartbeat = lambda *details: beats.append(
        StepProgress.from_details(details[0]) if details else None
    )
    yield Stack(
        resources, IngestActivities(IngestDependencies.from_resources(resources)), env, beats
    )
    offload.text_work.shutdown()
    resources.close()


@pytest.fixture
def page_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call to the text child extracts one page: the finest progress there is."""
    monkeypatch.setattr(ingest, "EXTRACT_CALL_SECONDS", 0.0)


def test_validation_parses_the_pdf_in_the_text_child(stack: Stack, corpus: Path) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    offload.text_work.shutdown()
    assert offload.text_work.pid is None
    result = stack.run(stack.activities.validate_upload, ValidateInput(task.id, document.id))
    assert result.page_count == 4
    assert offload.text_work.pid is not None, "validation must start (and use) the text child"


@pytest.mark.usefixtures("page_per_call")
def test_extract_heartbeats_count_the_pages_of_the_whole_document(
    stack: Stack, corpus: Path
) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    job = ExtractInput(task.id, document.id, 2, 4, 4, characters_before=0)
    result = stack.run(stack.activities.extract_pages, job)
    assert result.pages == 3
    assert stack.done("extract") == [2, 3, 4]
    assert {beat.total for beat in stack.beats if beat} == {4}
    stored = list(stack.resources.storage.read_pages(document.id))
    assert [page.page for page in stored] == [2, 3, 4]
    assert result.characters == sum(len(page.text) for page in stored)


def test_a_later_batch_does_not_read_the_earlier_pages(stack: Stack, corpus: Path) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    earlier = stack.resources.storage.pages_path(document.id, 1)
    earlier.parent.mkdir(parents=True)
    earlier.write_text("this is not what batch 1 wrote\n")
    # The workflow carries what the earlier batches found: a batch in the middle never opens
    # their files. (The last batch reads the whole document once, for the no-text check.)
    result = stack.run(
        stack.activities.extract_pages,
        ExtractInput(task.id, document.id, 2, 3, 4, characters_before=100, ocr_pages_before=0),
    )
    assert result.pages == 2
    # Without the carried count (a workflow of an older release) it must read them, and so
    # fails on the broken file: the case above really skipped it.
    with pytest.raises(ValueError):
        stack.run(stack.activities.extract_pages, ExtractInput(task.id, document.id, 2, 3, 4))


def test_the_carried_count_counts_against_the_text_cap(stack: Stack, corpus: Path) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    cap = stack.activities._deps.max_extracted_chars
    job = ExtractInput(
        task.id, document.id, 3, 4, 4, characters_before=cap - 10, ocr_pages_before=0
    )
    with pytest.raises(ApplicationError) as refused:
        stack.run(stack.activities.extract_pages, job)
    assert refused.value.type == "text_too_large" and refused.value.non_retryable


def test_the_last_batch_checks_the_ocr_cap_for_the_whole_document(
    stack: Stack, corpus: Path
) -> None:
    # Batches that ran at once each stayed under the cap, their sum did not: the last batch,
    # which needs no OCR itself, is the one that sees the sum and refuses the document.
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    cap = stack.activities._deps.formats.ocr_max_pages
    middle = ExtractInput(
        task.id, document.id, 2, 3, 4, characters_before=0, ocr_pages_before=cap + 1
    )
    assert stack.run(stack.activities.extract_pages, middle).pages == 2  # only the last checks
    job = ExtractInput(task.id, document.id, 4, 4, 4, characters_before=0, ocr_pages_before=cap + 1)
    with pytest.raises(ApplicationError) as refused:
        stack.run(stack.activities.extract_pages, job)
    assert refused.value.type == "ocr_limit_exceeded" and refused.value.non_retryable


def test_a_cancel_stops_the_child_at_once_and_writes_nothing(
    stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # All 117 pages in one call to the child (tens of seconds): the cancel lands mid-call.
    monkeypatch.setattr(ingest, "EXTRACT_CALL_SECONDS", 3600.0)
    document, task = stack.add_document(corpus / "GeoTopo-komprimiert.pdf")
    children: list[int] = []

    def heartbeat(*details: Any) -> None:
        # The first heartbeat comes from waiting on the child, a second into the call.
        if not children and offload.text_work.pid is not None:
            children.append(offload.text_work.pid)
            stack.env.cancel()  # as Temporal does: raised into the activity's thread

    stack.env.on_heartbeat = heartbeat
    started = time.monotonic()
    with pytest.raises(CancelledError):
        stack.run(
            stack.activities.extract_pages,
            ExtractInput(task.id, document.id, 1, 117, 117, characters_before=0),
        )
    assert time.monotonic() - started < 10, "the step must stop without waiting for the child"
    assert children, "the step must heartbeat while the child works"
    assert offload.text_work.pid is None and gone(children[0]), "the working child is stopped"
    assert not stack.resources.storage.artifact_dir(document.id).exists()


@pytest.mark.usefixtures("page_per_call")
def test_a_document_deleted_during_extraction_leaves_no_artifacts(
    stack: Stack, corpus: Path
) -> None:
    document, task = stack.add_document(corpus / "GeoTopo-komprimiert.pdf")
    storage = stack.resources.storage

    def heartbeat(*details: Any) -> None:
        beat = StepProgress.from_details(details[0]) if details else None
        if beat is not None and beat.done == 2:  # the delete lands while the step runs
            records.delete_document_rows(stack.resources.engine, document.id)
            storage.remove_document(document.id, document.stored_name)

    stack.env.on_heartbeat = heartbeat
    with pytest.raises(ApplicationError) as stopped:
        stack.run(
            stack.activities.extract_pages,
            ExtractInput(task.id, document.id, 1, 5, 117, characters_before=0),
        )
    assert stopped.value.type == "file_missing"
    assert not storage.artifact_dir(document.id).exists()


def test_chunking_a_few_pages_per_call_reports_pages_and_keeps_the_chunks(
    stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    stack.run(
        stack.activities.extract_pages,
        ExtractInput(task.id, document.id, 1, 4, 4, characters_before=0),
    )
    pages: list[PageText] = list(stack.resources.storage.read_pages(document.id))
    deps = stack.activities._deps
    in_one_call = offload.chunk_pages(
        pages,
        first_index=0,
        tokenizer_path=bundled_model_path(),
        chunk_tokens=deps.chunk_tokens,
        overlap_tokens=deps.overlap_tokens,
    )
    monkeypatch.setattr(ingest, "CHUNK_CALL_CHARS", 1)  # one page per call
    result = stack.run(stack.activities.chunk_document, ChunkInput(task.id, document.id))
    # (0 while the child loads the tokenizer on its first call, then one more per page)
    assert stack.done("chunk")[-4:] == [1, 2, 3, 4]
    assert result.chunk_count == len(in_one_call)
    assert stack.resources.storage.read_chunks(document.id) == in_one_call


def test_discarding_a_document_removes_its_artifacts_without_its_row(
    stack: Stack, corpus: Path
) -> None:
    document, task = stack.add_document(corpus / "pdflatex-4-pages.pdf")
    stack.run(
        stack.activities.extract_pages,
        ExtractInput(task.id, document.id, 1, 4, 4, characters_before=0),
    )
    records.delete_document_rows(stack.resources.engine, document.id)
    stack.run(stack.activities.discard_document, document.id)
    assert not stack.resources.storage.artifact_dir(document.id).exists()
