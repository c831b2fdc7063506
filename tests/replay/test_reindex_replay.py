"""The recorded re-index histories must replay against today's re-index workflows.

Recorded by ``scripts/record_reindex_history.py`` from a real run (see
docs/workflow-changes.md): the first run of a re-index (ending in continue-as-new), its last
run (the alias swap), and one document's child workflow.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.reindex import ReindexDocumentWorkflow, ReindexWorkflow
from workflows.reindex_contracts import (
    REINDEX_WORKFLOW,
    CountResult,
    Cursor,
    ListResult,
    ReindexActivity,
    ReindexInput,
    ReindexOptions,
    ReindexProgress,
)

HISTORIES = Path(__file__).parent / "histories" / "reindex"
RECORDED = ["first_run", "last_run", "document"]
PARENT_RUNS = ["first_run", "last_run"]
RECOUNT_PATCH = "recount-before-each-listing"
MINUTE = timedelta(minutes=1)


@workflow.defn(name=REINDEX_WORKFLOW)
class RecountsBeforeListing(ReindexWorkflow):
    """An unsafe change: count the documents again before each listing, unguarded."""

    @workflow.run
    async def run(self, job: ReindexInput) -> ReindexProgress:
        return await super().run(job)

    async def _list(self, cursor: Cursor, opts: ReindexOptions) -> ListResult:
        await workflow.execute_activity(
            ReindexActivity.COUNT,
            "",
            result_type=CountResult,
            start_to_close_timeout=MINUTE,
        )
        return await super()._list(cursor, opts)


@workflow.defn(name=REINDEX_WORKFLOW)
class RecountsBeforeListingPatched(ReindexWorkflow):
    """The same change made safely."""

    @workflow.run
    async def run(self, job: ReindexInput) -> ReindexProgress:
        return await super().run(job)

    async def _list(self, cursor: Cursor, opts: ReindexOptions) -> ListResult:
        if workflow.patched(RECOUNT_PATCH):
            await workflow.execute_activity(
                ReindexActivity.COUNT,
                "",
                result_type=CountResult,
                start_to_close_timeout=MINUTE,
            )
        return await super()._list(cursor, opts)


def load(name: str) -> WorkflowHistory:
    text = (HISTORIES / f"{name}.json").read_text(encoding="utf-8")
    return WorkflowHistory.from_json(f"replay-reindex-{name}", text)


def replayer(parent: type) -> Replayer:
    return Replayer(
        workflows=[parent, ReindexDocumentWorkflow], data_converter=pydantic_data_converter
    )


def test_every_recorded_history_is_committed() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(RECORDED)


@pytest.mark.parametrize("name", RECORDED)
async def test_history_replays_against_the_current_workflows(name: str) -> None:
    result = await replayer(ReindexWorkflow).replay_workflow(load(name))
    assert result.replay_failure is None


@pytest.mark.parametrize("name", PARENT_RUNS)
async def test_an_unguarded_change_fails_replay(name: str) -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replayer(RecountsBeforeListing).replay_workflow(load(name))


@pytest.mark.parametrize("name", PARENT_RUNS)
async def test_the_same_change_behind_patched_replays(name: str) -> None:
    result = await replayer(RecountsBeforeListingPatched).replay_workflow(load(name))
    assert result.replay_failure is None


def test_the_histories_hold_ids_and_counts_not_text() -> None:
    for name in RECORDED:
        text = (HISTORIES / f"{name}.json").read_text(encoding="utf-8")
        assert len(text) < 200_000, name
        assert "Here's to the crazy ones" not in text, name
