"""Every committed history must replay against today's workflow code.

The histories in ``histories/`` were recorded by ``scripts/record_histories.py`` from real runs:
success, failure then retry, cancel, a cancel that lands as a step completes, and one that lands
while the finished task records `completed`. Replaying them re-runs the workflow code against
what a server recorded: a change that would make a running workflow take a different path
raises a nondeterminism error here, before it reaches a worker that holds such workflows. How
to change the workflow safely, and when to re-record: docs/workflow-changes.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.contracts import WORKFLOW_NAME, IngestInput, Progress, Status, Step
from workflows.ingest import PARALLEL_BATCHES_ON_QUEUES, IngestDocumentWorkflow

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = [
    "success",
    "failure_then_retry",
    "cancel",
    "cancel_as_step_completes",
    "cancel_during_final_record",
    "replace",
]
# The recorded scenarios, plus any older histories kept while a workflow.patched branch lives.
COMMITTED = sorted(path.stem for path in HISTORIES.glob("*.json"))
RECORD_RUNNING_PATCH = "record-running-before-steps"


@workflow.defn(name=WORKFLOW_NAME)
class RecordsRunningFirst(IngestDocumentWorkflow):
    """An unsafe change: write the row's state before the steps, with no version guard."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        return await super().run(job)

    async def _run_steps(self, job: IngestInput) -> None:
        await self._record(job)
        await super()._run_steps(job)


@workflow.defn(name=WORKFLOW_NAME)
class RecordsRunningFirstPatched(IngestDocumentWorkflow):
    """The same change made safely: workflows that started without it replay without it."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        return await super().run(job)

    async def _run_steps(self, job: IngestInput) -> None:
        if workflow.patched(RECORD_RUNNING_PATCH):
            await self._record(job)
        await super()._run_steps(job)


@workflow.defn(name=WORKFLOW_NAME)
class QuietResume(IngestDocumentWorkflow):
    """An unsafe change on the retry path only: a resume is no longer written to the row."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        return await super().run(job)

    async def _record(self, job: IngestInput, **changes: Any) -> None:
        if changes.get("status", self._progress.status) != Status.RUNNING:
            await super()._record(job, **changes)


@workflow.defn(name=WORKFLOW_NAME)
class CancelsItsFinalRecord(IngestDocumentWorkflow):
    """The code before the completion-record-outlasts-cancel patch: a cancel stops the write."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        return await super().run(job)

    async def _record_completion(self, job: IngestInput) -> None:
        await self._record(job, status=Status.COMPLETED, current_step=Step.DONE)


@workflow.defn(name=WORKFLOW_NAME)
class OneBatchAtATime(IngestDocumentWorkflow):
    """An unguarded change to the parallel path: vectorize batches one at a time again."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        job.options.vectorize_parallel_batches = 1
        return await super().run(job)


def load(scenario: str) -> WorkflowHistory:
    text = (HISTORIES / f"{scenario}.json").read_text(encoding="utf-8")
    return WorkflowHistory.from_json(f"replay-{scenario}", text)


def replayer(workflow_class: type) -> Replayer:
    return Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter)


def test_every_recorded_scenario_is_committed() -> None:
    assert set(SCENARIOS) <= set(COMMITTED)


@pytest.mark.parametrize("history", COMMITTED)
async def test_history_replays_against_the_current_workflow(history: str) -> None:
    result = await replayer(IngestDocumentWorkflow).replay_workflow(load(history))
    assert result.replay_failure is None


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_an_unguarded_change_fails_replay(scenario: str) -> None:
    unexpected = r"'validate_upload' does not match .*'record_task_state'"
    with pytest.raises(workflow.NondeterminismError, match=unexpected):
        await replayer(RecordsRunningFirst).replay_workflow(load(scenario))


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_same_change_behind_patched_replays(scenario: str) -> None:
    result = await replayer(RecordsRunningFirstPatched).replay_workflow(load(scenario))
    assert result.replay_failure is None


async def test_a_change_on_the_retry_path_is_caught_by_the_retry_history() -> None:
    # Each recorded scenario guards the path it took: only a retried run reaches this change.
    outcomes = {
        scenario: await replayer(QuietResume).replay_workflow(
            load(scenario), raise_on_replay_failure=False
        )
        for scenario in SCENARIOS
    }
    failed = {name for name, outcome in outcomes.items() if outcome.replay_failure is not None}
    assert failed == {"failure_then_retry"}
    assert isinstance(outcomes["failure_then_retry"].replay_failure, workflow.NondeterminismError)


async def test_the_late_cancel_history_guards_the_shielded_final_record() -> None:
    # Without the shield the replayed cancel stops the write that the history saw complete
    # (the SDK reports it as an invalid activity state transition rather than a mismatch).
    outcome = await replayer(CancelsItsFinalRecord).replay_workflow(
        load("cancel_during_final_record"), raise_on_replay_failure=False
    )
    assert outcome.replay_failure is not None
    assert (
        await replayer(CancelsItsFinalRecord).replay_workflow(load("success"))
    ).replay_failure is None


@workflow.defn(name=WORKFLOW_NAME)
class IgnoresReplacements(IngestDocumentWorkflow):
    """An unsafe change on the new-version path: it no longer commits or finishes one."""

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        return await super().run(job)

    def _replacing(self, job: IngestInput) -> bool:
        return False


async def test_the_replace_history_guards_the_new_version_steps() -> None:
    outcomes = {
        scenario: await replayer(IgnoresReplacements).replay_workflow(
            load(scenario), raise_on_replay_failure=False
        )
        for scenario in SCENARIOS
    }
    failed = {name for name, outcome in outcomes.items() if outcome.replay_failure is not None}
    assert failed == {"replace"}


async def test_the_new_histories_guard_the_batch_window() -> None:
    # success.json ran its three vectorize batches at once: scheduling them one by one is a
    # different set of commands. Runs from before the patch never used the window.
    outcome = await replayer(OneBatchAtATime).replay_workflow(
        load("success"), raise_on_replay_failure=False
    )
    assert isinstance(outcome.replay_failure, workflow.NondeterminismError)
    before = await replayer(OneBatchAtATime).replay_workflow(
        load(f"success.pre-{PARALLEL_BATCHES_ON_QUEUES}")
    )
    assert before.replay_failure is None
