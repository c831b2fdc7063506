"""Progress inside a step, read back from an activity's heartbeat details: it only ever adds
to what the workflow's state says, and only for the step that is running."""

from __future__ import annotations

from typing import Any

from core.ingestion.service import apply_step_progress, combine_step_progress
from workflows.contracts import Progress, StepProgress


def running(step: str, **fields: Any) -> Progress:
    progress = Progress(status="running", current_step=step, upload_progress=100.0, **fields)
    progress.refresh_overall()
    return progress


def test_extraction_moves_with_the_pages_done() -> None:
    progress = running("extract", extraction_progress=20.0, pages_extracted=20)
    apply_step_progress(progress, StepProgress("extract", 50, 100))
    assert progress.pages_extracted == 50
    assert progress.extraction_progress == 50.0
    assert progress.progress_percentage == 37.5  # 25 for the upload, half of extraction's 25


def test_vectorization_moves_with_the_chunks_embedded() -> None:
    progress = running("vectorize", extraction_progress=100.0, chunking_progress=100.0)
    apply_step_progress(progress, StepProgress("vectorize", 30, 120))
    assert progress.chunks_embedded == 30
    assert progress.vectorization_progress == 25.0
    assert progress.progress_percentage == 81.25


def test_chunking_counts_pages() -> None:
    progress = running("chunk", extraction_progress=100.0)
    apply_step_progress(progress, StepProgress("chunk", 3, 4))
    assert progress.chunking_progress == 75.0
    assert progress.chunk_count is None  # not known until the step ends


def test_never_below_the_workflows_own_state() -> None:
    progress = running("extract", extraction_progress=60.0, pages_extracted=60)
    apply_step_progress(progress, StepProgress("extract", 10, 100))  # an older attempt's
    assert progress.pages_extracted == 60 and progress.extraction_progress == 60.0


def test_details_of_another_step_or_shape_change_nothing() -> None:
    progress = running("vectorize", extraction_progress=100.0, chunking_progress=100.0)
    before = progress.progress_percentage
    apply_step_progress(progress, StepProgress("extract", 50, 100))  # the step before
    apply_step_progress(progress, StepProgress("vectorize", 5, 0))  # no total
    assert progress.progress_percentage == before and progress.chunks_embedded == 0
    assert StepProgress.from_details(42) is None  # what vectorize heartbeated before
    assert StepProgress.from_details({"step": "extract", "done": "3", "total": 4}) is None
    assert StepProgress.from_details({"step": "chunk", "done": 3, "total": 4}) == StepProgress(
        "chunk", 3, 4
    )
    progress = running("extract")
    apply_step_progress(progress, StepProgress("extract", 500, 100))  # never past the total
    assert progress.pages_extracted == 100 and progress.extraction_progress == 100.0


def test_batches_running_at_once_add_what_each_did_since_its_start() -> None:
    # 40 pages finished; batches 41-60 and 81-100 run at once, 5 and 12 pages into theirs.
    progress = running("extract", extraction_progress=40.0, pages_extracted=40)
    reports = [StepProgress("extract", 45, 100, 40), StepProgress("extract", 92, 100, 80)]
    combined = combine_step_progress(progress, reports)
    assert combined == StepProgress("extract", 57, 100)
    assert combined is not None
    apply_step_progress(progress, combined)
    assert (progress.pages_extracted, progress.extraction_progress) == (57, 57.0)


def test_a_finished_batchs_last_heartbeat_is_not_counted_twice() -> None:
    # The query already counts batch 0-48 (finished); a describe read a moment earlier still
    # lists its last heartbeat next to the running batch 48-96. Only the running one adds.
    progress = running("vectorize", chunk_count=130, chunks_embedded=48, running_batches=[48])
    reports = [StepProgress("vectorize", 48, 130, 0), StepProgress("vectorize", 60, 130, 48)]
    assert combine_step_progress(progress, reports) == StepProgress("vectorize", 60, 130)
    # Every batch finished: the stale heartbeats add nothing (before: 100 %, then back).
    done = running("vectorize", chunk_count=130, chunks_embedded=130, running_batches=[])
    assert combine_step_progress(done, [StepProgress("vectorize", 130, 130, 96)]) is None


def test_one_batch_at_a_time_reads_as_before() -> None:
    progress = running("vectorize", chunk_count=120, chunks_embedded=64)
    combined = combine_step_progress(progress, [StepProgress("vectorize", 90, 120, 64)])
    assert combined == StepProgress("vectorize", 90, 120)


def test_details_without_a_start_count_as_the_furthest_one() -> None:
    progress = running("extract", pages_extracted=20)
    reports = [StepProgress("extract", 30, 100), StepProgress("extract", 25, 100, 20)]
    assert combine_step_progress(progress, reports) == StepProgress("extract", 30, 100)


def test_other_steps_and_no_reports_add_nothing() -> None:
    progress = running("vectorize", chunk_count=10)
    assert combine_step_progress(progress, []) is None
    assert combine_step_progress(progress, [StepProgress("extract", 5, 10, 0)]) is None


def test_a_start_travels_in_the_details() -> None:
    details = {"step": "extract", "done": 9, "total": 10, "start": 5}
    assert StepProgress.from_details(details) == StepProgress("extract", 9, 10, 5)
