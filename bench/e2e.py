"""Pipeline (a): the real service end to end. Every file is uploaded over HTTP to the API
(uvicorn, embedded worker), which runs the Temporal workflow; the clock stops when the last
workflow closes. Stage times come from the workflow histories."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.corpus import document_row, unique_copy
from bench.procstat import peak_rss_mb, peak_rss_with_children_mb
from bench.retrieval import Question, applicable, recall_at_k
from bench.stack import Stack, running_stack, upload, wait_all

UPLOAD_CONCURRENCY = 4
# Activity names (workflows.contracts.Activity) grouped into the stages the tables show.
STAGE_OF = {
    "validate_upload": "validate",
    "extract_pages": "extract",
    "chunk_document": "chunk",
    "vectorize_chunks": "embed+store",
    "record_task_state": "bookkeeping",
    "discard_vectors": "bookkeeping",
}


def run_e2e(
    files: Sequence[Path], workdir: Path, logs: Path, *, questions: Sequence[Question] = ()
) -> dict[str, Any]:
    result, data_dir = asyncio.run(_ingest_over_http(files, workdir, logs))
    asked = applicable(
        questions, {d["file"] for d in result["documents"] if d["status"] == "completed"}
    )
    if asked:
        # After the API stopped (Qdrant local mode admits one process per store), and outside
        # any event loop, like the searches of (b) and (c).
        result["retrieval"] = _recall_of_store(data_dir, asked)
    return result


async def _ingest_over_http(
    files: Sequence[Path], workdir: Path, logs: Path
) -> tuple[dict[str, Any], Path]:
    async with running_stack(workdir, logs) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
            warmup_s = await _warm_up(http, files, workdir / "warmup")
            started_at = datetime.now(UTC)
            started = time.perf_counter()
            limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

            async def send(path: Path) -> dict[str, Any]:
                async with limit:
                    try:
                        return await upload(http, path)
                    except httpx.HTTPStatusError as refused:  # e.g. not a PDF, too large
                        return {"refused": _error_code(refused.response)}

            receipts = await asyncio.gather(*(send(path) for path in files))
            uploads_s = time.perf_counter() - started
            tasks = {r["task_id"]: r["workflow_id"] for r in receipts if "task_id" in r}
            final = await wait_all(http, list(tasks))
            observed_s = time.perf_counter() - started
        # The worker extracts and embeds in child processes of the API's (core.ingestion.offload).
        peak_api = peak_rss_with_children_mb(stack.api_pid)
        peak_temporal = peak_rss_mb(stack.temporal_pid)
        histories = await _histories(stack, list(tasks.values()))

    documents = [
        _outcome(path, receipt, final) for path, receipt in zip(files, receipts, strict=True)
    ]
    stages, closed = _stage_times(histories)
    all_closed = len(closed) == len(tasks) > 0
    total_s = (max(closed) - started_at).total_seconds() if all_closed else None
    indexed = [d for d in documents if d["status"] == "completed"]
    result: dict[str, Any] = {
        "pipeline": "a",
        "name": "docchat API + Temporal",
        "model_load_s": warmup_s,
        "total_s": total_s or observed_s,
        "uploads_s": uploads_s,
        "files": len(files),
        "documents_ok": len(indexed),
        "pages": sum(d["pages"] for d in indexed),
        "chunks": sum(d["chunks"] for d in indexed),
        "stages_s": stages,
        "peak_rss_mb": peak_api,
        "temporal_peak_rss_mb": peak_temporal,
        "documents": documents,
    }
    return result, stack.data_dir


def _outcome(path: Path, receipt: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
    if "refused" in receipt:
        return document_row(path.name, "skipped", error_code=receipt["refused"])
    if receipt.get("duplicate"):
        # The service recognised content it already has: nothing new was ingested.
        return document_row(path.name, "duplicate", error_code="duplicate_content")
    status = final[receipt["task_id"]]
    if status["status"] == "completed":
        return document_row(
            path.name,
            "completed",
            pages=status["page_count"] or 0,
            chunks=status["chunk_count"] or 0,
        )
    # A permanent fault ends the task for good; anything else would wait for a retry.
    return document_row(
        path.name, "failed" if status["retryable"] else "skipped", error_code=status["error_code"]
    )


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["error_code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


async def _warm_up(http: httpx.AsyncClient, files: Sequence[Path], folder: Path) -> float:
    """Ingest one small document first: the worker loads the model on its first vectorize step,
    which (a) would otherwise count as ingestion time while (b) and (c) report it apart."""
    started = time.perf_counter()
    for source in sorted(files, key=lambda p: p.stat().st_size)[:3]:
        copy = unique_copy(source, folder / source.name)
        try:
            receipt = await upload(http, copy, name=f"warmup-{source.name}")
        except httpx.HTTPStatusError:
            continue
        status = (await wait_all(http, [receipt["task_id"]], interval=0.1))[receipt["task_id"]]
        await http.delete(f"/docs/{receipt['document_id']}")
        if status["status"] == "completed":
            break
    return time.perf_counter() - started


async def _histories(stack: Stack, workflow_ids: Sequence[str]) -> list[Any]:
    client = await Client.connect(stack.temporal_address)
    return [await client.get_workflow_handle(wid).fetch_history() for wid in workflow_ids]


def _stage_times(histories: Sequence[Any]) -> tuple[dict[str, float], list[datetime]]:
    """Activity run time per stage (summed over documents, which run concurrently), plus the
    time activities waited in the task queue and the workflow tasks took; and close times."""
    stages: dict[str, float] = defaultdict(float)
    closed: list[datetime] = []
    for history in histories:
        scheduled: dict[int, tuple[str, datetime]] = {}
        started: dict[int, datetime] = {}
        workflow_task_started: datetime | None = None
        for event in history.events:
            at = event.event_time.ToDatetime(tzinfo=UTC)
            if event.HasField("activity_task_scheduled_event_attributes"):
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = (name, at)
            elif event.HasField("activity_task_started_event_attributes"):
                started[event.activity_task_started_event_attributes.scheduled_event_id] = at
            elif (ended := _activity_end(event)) is not None and ended in started:
                name, queued_at = scheduled[ended]
                stages[STAGE_OF.get(name, name)] += (at - started[ended]).total_seconds()
                stages["activity queue wait"] += (started[ended] - queued_at).total_seconds()
            elif event.HasField("workflow_task_started_event_attributes"):
                workflow_task_started = at
            elif event.HasField("workflow_task_completed_event_attributes") and (
                workflow_task_started is not None
            ):
                stages["workflow tasks"] += (at - workflow_task_started).total_seconds()
                workflow_task_started = None
            if _closes_workflow(event):
                closed.append(at)
    return dict(stages), closed


def _activity_end(event: Any) -> int | None:
    for field in (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
    ):
        if event.HasField(field):
            scheduled_id: int = getattr(event, field).scheduled_event_id
            return scheduled_id
    return None


def _closes_workflow(event: Any) -> bool:
    return any(
        event.HasField(field)
        for field in (
            "workflow_execution_completed_event_attributes",
            "workflow_execution_failed_event_attributes",
            "workflow_execution_canceled_event_attributes",
            "workflow_execution_terminated_event_attributes",
            "workflow_execution_timed_out_event_attributes",
        )
    )


def _recall_of_store(data_dir: Path, questions: Sequence[Question]) -> dict[str, Any]:
    """Recall over the very store the API wrote (opened after the API stopped)."""
    from core.ingestion.offload import EmbedderConfig
    from core.search.index_versions import alias_name
    from core.search.vectorstore import VectorStore
    from core.settings import Settings

    settings = Settings(data_dir=data_dir)
    embedder = EmbedderConfig.from_settings(settings).load()
    store = VectorStore.connect(
        url=None,
        api_key=None,
        path=settings.qdrant_path,
        collection=alias_name(settings.qdrant_collection),
    )
    try:

        def search(text: str) -> list[tuple[str, int]]:
            hits = store.search(
                embedder.embed_query(text), limit=5, text=text, retrieval=settings.retrieval_mode
            )
            return [(hit.filename, hit.page) for hit in hits]

        return recall_at_k(questions, search)
    finally:
        store.close()
