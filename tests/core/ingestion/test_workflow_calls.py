"""What an error of the workflow service means to cancel, retry and delete: a closed workflow
is a 409 with the caller's code, anything else a 503 ``temporal_unavailable``. (The API-level
tests in tests/durability/test_temporal_errors.py stage both with a real server; a retry whose
workflow closes between its read and its signal cannot be staged, so the mapping is shown
here with the errors the SDK raises.)"""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ConflictError, ServiceUnavailableError
from core.ingestion.workflow_calls import workflow_call


@pytest.mark.parametrize("status", [RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION])
def test_a_closed_workflow_is_a_conflict_with_the_callers_code(status: RPCStatusCode) -> None:
    with pytest.raises(ConflictError) as refused:
        with workflow_call("t1", closed_code="retry_not_possible", closed_message="closed"):
            raise RPCError("workflow execution already completed", status, b"")
    assert (refused.value.status_code, refused.value.error_code) == (409, "retry_not_possible")
    assert refused.value.details == {"task_id": "t1"}


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.INTERNAL],
)
def test_anything_else_is_the_service_being_unavailable(status: RPCStatusCode) -> None:
    with pytest.raises(ServiceUnavailableError) as refused:
        with workflow_call("t1", closed_code="task_finished", closed_message="closed"):
            raise RPCError("tcp connect error", status, b"")
    assert (refused.value.status_code, refused.value.error_code) == (503, "temporal_unavailable")
    assert refused.value.details["retry_after_seconds"] > 0
    assert "tcp connect" not in refused.value.message  # no transport details for clients
