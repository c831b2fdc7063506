"""A task's execution history, read from its workflow's event history.

Temporal records one ``ActivityTaskStarted`` per activity with the attempt that finished it,
so attempts and the last error of each step come straight from the server's own record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from workflows.contracts import Activity, Step

_STEP_OF = {
    Activity.VALIDATE: Step.UPLOAD,
    Activity.EXTRACT: Step.EXTRACT,
    Activity.CHUNK: Step.CHUNK,
    Activity.VECTORIZE: Step.VECTORIZE,
}
_STEP_ORDER = [Step.UPLOAD, Step.EXTRACT, Step.CHUNK, Step.VECTORIZE]

_WORKFLOW_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "started",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signaled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: "cancel_requested",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
}


@dataclass
class ActivityRun:
    activity: str
    step: str | None
    scheduled_at: str
    started_at: str | None = None
    ended_at: str | None = None
    attempts: int = 0
    outcome: str = "pending"
    error: str | None = None
    worker: str | None = None


@dataclass
class StepSummary:
    step: str
    started_at: str
    ended_at: str | None
    activities: int
    attempts: int
    outcome: str
    errors: list[str] = field(default_factory=list)


@dataclass
class TaskHistory:
    workflow_id: str
    run_id: str | None
    steps: list[StepSummary]
    activities: list[ActivityRun]
    events: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(history: WorkflowHistory, run_id: str | None) -> TaskHistory:
    runs: dict[int, ActivityRun] = {}
    events: list[dict[str, str]] = []
    for event in history.events:
        _apply(event, runs, events)
    activities = list(runs.values())
    return TaskHistory(
        workflow_id=history.workflow_id,
        run_id=run_id,
        steps=_steps(activities),
        activities=activities,
        events=events,
    )


def _apply(event: HistoryEvent, runs: dict[int, ActivityRun], events: list[dict[str, str]]) -> None:
    at = _time(event)
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        name = event.activity_task_scheduled_event_attributes.activity_type.name
        runs[event.event_id] = ActivityRun(activity=name, step=_STEP_OF.get(name), scheduled_at=at)
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        started = event.activity_task_started_event_attributes
        run = runs[started.scheduled_event_id]
        run.started_at, run.attempts, run.worker = at, started.attempt, started.identity
        run.outcome = "running"
        if started.HasField("last_failure"):
            run.error = started.last_failure.message
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        _end(
            runs, event.activity_task_completed_event_attributes.scheduled_event_id, at, "completed"
        )
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        failed = event.activity_task_failed_event_attributes
        _end(runs, failed.scheduled_event_id, at, "failed", _message(failed.failure))
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        timed_out = event.activity_task_timed_out_event_attributes
        _end(runs, timed_out.scheduled_event_id, at, "timed_out", _message(timed_out.failure))
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
        _end(
            runs, event.activity_task_canceled_event_attributes.scheduled_event_id, at, "cancelled"
        )
    elif kind in _WORKFLOW_EVENTS:
        entry = {"event": _WORKFLOW_EVENTS[kind], "at": at}
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            entry["signal"] = event.workflow_execution_signaled_event_attributes.signal_name
        events.append(entry)


def _end(
    runs: dict[int, ActivityRun], scheduled: int, at: str, outcome: str, error: str | None = None
) -> None:
    run = runs[scheduled]
    run.ended_at, run.outcome = at, outcome
    if error:
        run.error = error


def _steps(activities: list[ActivityRun]) -> list[StepSummary]:
    summaries = []
    for step in _STEP_ORDER:
        mine = [run for run in activities if run.step == step]
        if not mine:
            continue
        ended = [run.ended_at for run in mine if run.ended_at]
        # A step that failed and was resumed ends the way its last activity ended.
        outcome = mine[-1].outcome
        summaries.append(
            StepSummary(
                step=step,
                started_at=mine[0].scheduled_at,
                ended_at=max(ended) if ended and outcome == "completed" else None,
                activities=len(mine),
                attempts=sum(run.attempts for run in mine),
                outcome=outcome,
                errors=[run.error for run in mine if run.error],
            )
        )
    return summaries


def _message(failure: Any) -> str:
    message: str = failure.message
    while failure.HasField("cause"):
        failure = failure.cause
        message = failure.message or message
    return message


def _time(event: HistoryEvent) -> str:
    moment: datetime = event.event_time.ToDatetime()
    return moment.isoformat() + "Z"
