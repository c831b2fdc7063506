"""Fair shares: one principal's single small document is not stuck behind another's backlog.

A Temporal dev server with fairness on (as deploy/temporal/dynamicconfig configures), the
real API, embedded worker and models: alice's backlog is uploaded first, then bob's one
document, and bob's finishes long before alice's backlog does.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from core.temporal import fairness_dev_server_args
from tests.conftest import FAST_DEV_SERVER
from tests.helpers import api_client, stack_settings
from tests.pdfs import text_pdf

ALICE, BOB = "alice-key-" + "a" * 30, "bob-key-" + "b" * 30
BACKLOG = 12


@pytest.fixture(scope="module")
async def fair_temporal() -> AsyncIterator[WorkflowEnvironment]:
    binary = shutil.which("temporal")
    assert binary
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[*FAST_DEV_SERVER, *fairness_dev_server_args()],
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


def document(owner: str, n: int) -> bytes:
    lines = [f"{owner} document {n}: a short page about topic {n} for the fairness test."] * 6
    return text_pdf([lines, lines])


async def upload(client: httpx.AsyncClient, key: str, pdf: bytes, name: str) -> str:
    response = await client.post(
        "/docs/upload_file_async",
        files={"file": (name, pdf, "application/pdf")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def finished_at(client: httpx.AsyncClient, key: str, task_id: str) -> float:
    """When the task completed, by the row's ``completed_at`` (polled slowly: polls are load)."""
    while True:
        response = await client.get(
            f"/docs/processing/{task_id}/status", headers={"Authorization": f"Bearer {key}"}
        )
        data = response.json()["data"]
        if data["status"] in ("completed", "failed", "cancelled"):
            assert data["status"] == "completed", data
            if data["completed_at"] is None:  # the workflow's word, ahead of the row
                return time.time()
            return datetime.fromisoformat(data["completed_at"]).timestamp()
        await asyncio.sleep(1.0)


@pytest.mark.xfail(
    strict=False,
    reason="timing-sensitive on an idle machine: 12 small documents drain in about 3 s with "
    "4 activity slots, so no queue builds for fair shares to reorder; the bench's fairness "
    "section measures it with a real backlog (issue 20, open)",
)
async def test_one_principals_small_document_is_not_starved_by_anothers_backlog(
    tmp_path: Path, fair_temporal: WorkflowEnvironment, embedder: Embedder
) -> None:
    settings = stack_settings(
        tmp_path / "data", fair_temporal, api_keys={ALICE: "alice", BOB: "bob"}
    )
    async with api_client(settings, embedder) as client:
        # Warm first: the first document loads the chunker and the model in the worker's
        # child processes (seconds, every slot waiting on it), which no queue order changes.
        await finished_at(client, BOB, await upload(client, BOB, document("warm", 0), "w.pdf"))
        started = time.time()
        backlog = [
            await upload(client, ALICE, document("alice", n), f"a{n}.pdf") for n in range(BACKLOG)
        ]
        bob_uploaded = time.time()
        bob = await upload(client, BOB, document("bob", 0), "b.pdf")
        alice_done, (bob_done,) = await asyncio.gather(
            asyncio.gather(*(finished_at(client, ALICE, task) for task in backlog)),
            asyncio.gather(finished_at(client, BOB, bob)),
        )

    # Alice's documents still unfinished when bob's came (on an idle machine the first of
    # them finish while she is still uploading the rest).
    pending = [done for done in alice_done if done > bob_uploaded]
    before_bob = sum(done < bob_done for done in pending)
    # First come, first served, bob's document would wait behind every one of them at every
    # step and finish after the last. Round-robin gives it every other slot. Judged by the
    # order documents finish in, not by a ratio of times, which an idle machine makes noise.
    assert len(pending) >= 4, "the backlog drained before bob's upload"
    assert before_bob <= len(pending) // 2, (
        before_bob,
        len(pending),
        sorted(d - started for d in alice_done),
        bob_done - bob_uploaded,
    )
