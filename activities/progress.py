"""A step's heartbeats, each carrying how far the step got (a ``StepProgress``).

Status reads find the latest details in the workflow's description, which they fetch anyway
(``core.ingestion.service``), so progress moves inside an activity at no extra cost. Every heartbeat
carries the details: one without them would blank what the server shows.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from temporalio import activity

from workflows.contracts import StepProgress


class StepBeat:
    """Heartbeats for one activity of ``step``; call it to heartbeat, :meth:`advance` to
    report more done."""

    def __init__(self, step: str, *, done: int, total: int) -> None:
        # A retried attempt starts again at its batch's beginning, while the server still shows
        # how far the last attempt came: report no less than that, so progress never goes back.
        start = done
        for details in activity.info().heartbeat_details:
            earlier = StepProgress.from_details(details)
            if earlier is not None and earlier.step == step and earlier.total == total:
                done = max(done, earlier.done)
        self._details = StepProgress(step, done, total, start)

    @property
    def done(self) -> int:
        return self._details.done

    def __call__(self) -> None:
        activity.heartbeat(dataclasses.asdict(self._details))

    def advance(self, done: int) -> None:
        if done > self._details.done:
            self._details = dataclasses.replace(self._details, done=done)
        self()


def seconds_left() -> float | None:
    """What is left of the activity's start-to-close timeout: no child call may outlive it."""
    info = activity.info()
    if info.start_to_close_timeout is None:
        return None
    deadline = info.started_time + info.start_to_close_timeout
    return max(0.0, (deadline - datetime.now(UTC)).total_seconds())
