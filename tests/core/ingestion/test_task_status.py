"""The one mapping from a task's lifecycle and step to the seed's ``status``."""

from __future__ import annotations

import pytest

from core.ingestion.tables import ProcessingState, ProcessingStatus, ProcessingStep
from workflows.contracts import State, Status, Step, public_status, task_state

SEED_VALUES = {
    "pending",
    "uploading",
    "extracting",
    "chunking",
    "vectorizing",
    "completed",
    "failed",
}


def test_status_takes_only_the_seed_values_plus_cancelled() -> None:
    assert {member.value for member in ProcessingStatus} == SEED_VALUES | {"cancelled"}
    seen = {
        public_status(state.value, step.value)
        for state in ProcessingState
        for step in ProcessingStep
    }
    assert seen <= SEED_VALUES | {"cancelled"}
    assert seen == SEED_VALUES | {"cancelled"}  # and every value is reachable


@pytest.mark.parametrize(
    ("state", "step", "status"),
    [
        (State.QUEUED, Step.UPLOAD, "pending"),
        (State.RUNNING, Step.UPLOAD, "uploading"),
        (State.RUNNING, Step.EXTRACT, "extracting"),
        # Waiting for a worker between two batches is still the step's stage, not "pending".
        (State.QUEUED, Step.EXTRACT, "extracting"),
        (State.RETRYING, Step.CHUNK, "chunking"),
        (State.RETRYING, Step.VECTORIZE, "vectorizing"),
        (State.WAITING_FOR_RETRY, Step.VECTORIZE, "failed"),
        (State.FAILED, Step.UPLOAD, "failed"),
        (State.COMPLETED, Step.DONE, "completed"),
        (State.CANCELLED, Step.EXTRACT, "cancelled"),
    ],
)
def test_public_status(state: str, step: str, status: str) -> None:
    assert public_status(state, step) == status


def test_a_retryable_failure_is_waiting_for_retry() -> None:
    assert task_state(Status.FAILED, retryable=True) == "waiting_for_retry"
    assert task_state(Status.FAILED, retryable=False) == "failed"
    assert task_state(Status.RUNNING, retryable=False) == "running"
    assert {member.value for member in ProcessingState} == {
        value for name, value in vars(State).items() if name.isupper()
    } | {value for name, value in vars(Status).items() if name.isupper()}
