"""The fairness figure: one principal's single small document while another principal has a
backlog queued, against its time alone (docs/observability.md).

An in-process API with its embedded worker (4 activity slots) on a Temporal dev server with
fairness on, the real models; documents are small generated PDFs with distinct bytes.
``--quick`` queues 20 instead of 200.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from bench.stack import FAST_DEV_SERVER, temporal_binary
from core.settings import Settings

KEYS = {"alice-bench-key-" + "a" * 24: "alice", "bob-bench-key-" + "b" * 26: "bob"}
ALICE, BOB = list(KEYS)
POLL_S = 1.0


def _pdf(owner: str, n: int) -> bytes:
    from tests.pdfs import text_pdf  # the generator the tests use; bench runs from the repo

    line = f"{owner} document {n}: a short page about topic {n} for the fairness figure."
    return text_pdf([[line] * 6, [line] * 6])


async def _upload(client: httpx.AsyncClient, key: str, pdf: bytes) -> str:
    response = await client.post(
        "/docs/upload_file_async",
        files={"file": (f"{uuid.uuid4().hex[:8]}.pdf", pdf, "application/pdf")},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    task_id: str = response.json()["task_id"]
    return task_id


async def _done(client: httpx.AsyncClient, key: str, task_id: str) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        data = (await client.get(f"/docs/processing/{task_id}/status", headers=headers)).json()
        if data["data"]["status"] in ("completed", "failed", "cancelled"):
            return time.monotonic()
        await asyncio.sleep(POLL_S)


async def _single(client: httpx.AsyncClient, n: int) -> float:
    started = time.monotonic()
    return await _done(client, BOB, await _upload(client, BOB, _pdf("bob", n))) - started


async def run_fairness(workdir: Path, *, queued: int, fair: bool = True) -> dict[str, Any]:
    from core.temporal import fairness_dev_server_args

    env = await WorkflowEnvironment.start_local(
        # The venv's binary, found also when the venv is not on PATH (as under `make bench`).
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[*FAST_DEV_SERVER, *fairness_dev_server_args()],
        dev_server_log_level="error",
    )
    try:
        settings = Settings(
            data_dir=workdir / "data",
            temporal_address=env.client.service_client.config.target_host,
            temporal_task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            embedded_worker=True,
            api_keys=KEYS,
            fair_shares=fair,
            max_unfinished_per_principal=queued + 10,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", timeout=120
            ) as client:
                await _single(client, 0)  # warm: the first document loads the models
                alone = await _single(client, 1)
                backlog = [await _upload(client, ALICE, _pdf("alice", n)) for n in range(queued)]
                with_backlog = await _single(client, 2)
                drained_started = time.monotonic()
                await asyncio.gather(*(_done(client, ALICE, task) for task in backlog))
                drain_rest = time.monotonic() - drained_started
    finally:
        await env.shutdown()
    return {
        "queued_for_other_principal": queued,
        "fair_shares": fair,
        "single_alone_s": round(alone, 2),
        "single_with_backlog_s": round(with_backlog, 2),
        "slowdown": round(with_backlog / alone, 2) if alone else None,
        "backlog_left_after_single_s": round(drain_rest, 2),
    }


def queued_for(quick: bool) -> int:
    return 20 if quick else 200


def run(workdir: Path, *, quick: bool) -> dict[str, Any]:
    """The ``fairness`` section of ``python -m bench``: side by side in one run, the same
    backlog with fair shares on, then plain FIFO."""
    (workdir / "fair").mkdir()
    (workdir / "fifo").mkdir()
    fair = asyncio.run(run_fairness(workdir / "fair", queued=queued_for(quick)))
    fifo = asyncio.run(run_fairness(workdir / "fifo", queued=queued_for(quick), fair=False))
    return {**fair, "fifo": fifo}


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.fairness")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fifo", action="store_true", help="fair shares off, for comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docchat-fairness-") as tmp:
        queued = queued_for(args.quick)
        print(json.dumps(asyncio.run(run_fairness(Path(tmp), queued=queued, fair=not args.fifo))))
