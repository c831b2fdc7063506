"""/metrics after a real ingest, one trace from the upload request to the last activity, and
the 429 of a full backlog: the real API, embedded worker, Temporal dev server and models."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, stack_settings, upload, wait_for_status
from tests.pdfs import text_pdf
from workflows.contracts import WORKFLOW_NAME, Activity

SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def in_memory_spans() -> None:
    # The process's one tracer provider (a test process sets none otherwise).
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_an_ingest_show_steps_routes_and_the_queue(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        before = samples((await client.get("/metrics")).text)
        accepted = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed", final
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    step = "docchat_ingest_step_duration_seconds"
    for name in (Activity.VALIDATE, Activity.EXTRACT, Activity.CHUNK, Activity.VECTORIZE):
        runs = value(after, f"{step}_count", activity=name, outcome="ok") - value(
            before, f"{step}_count", activity=name, outcome="ok"
        )
        assert runs >= 1, name
        assert value(after, f"{step}_sum", activity=name, outcome="ok") > value(
            before, f"{step}_sum", activity=name, outcome="ok"
        )
    # Latency per route template: the polled status route is one series, whatever the task id.
    polls = value(
        after,
        "docchat_http_request_duration_seconds_count",
        method="GET",
        route="/docs/processing/{task_id}/status",
        status="200",
    )
    assert polls >= 1
    assert accepted["task_id"] not in response.text
    uploads = value(
        after,
        "docchat_http_request_duration_seconds_count",
        method="POST",
        route="/docs/upload_file_async",
        status="202",
    )
    assert uploads >= 1
    # The queue, read from SQL at the scrape: this stack's only task has finished.
    assert value(after, "docchat_ingest_queue_depth", state="queued") == 0
    assert ("docchat_ingest_queue_oldest_age_seconds", frozenset()) in after
    assert ("docchat_websocket_connections", frozenset()) in after
    assert ("docchat_ingest_activity_retries_total", frozenset({("activity", "x")})) not in after


async def test_one_trace_runs_from_the_upload_request_to_the_last_activity(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.tracing = True
    SPANS.clear()
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed", final

    spans = SPANS.get_finished_spans()
    posts = [s for s in spans if s.name == "POST /docs/upload_file_async"]
    [request] = posts
    assert request.kind == trace.SpanKind.SERVER
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert f"StartWorkflow:{WORKFLOW_NAME}" in names, names
    assert f"RunWorkflow:{WORKFLOW_NAME}" in names, names
    for activity in (Activity.VALIDATE, Activity.EXTRACT, Activity.CHUNK, Activity.VECTORIZE):
        assert f"RunActivity:{activity}" in names, (activity, names)
    # The last activity the workflow ran belongs to that same trace.
    activities = [s for s in spans if s.name.startswith("RunActivity:")]
    last = max(activities, key=lambda s: s.end_time or 0)
    assert last.context.trace_id == trace_id
    # And a status poll is a trace of its own, not part of the upload's.
    polls = [s for s in spans if s.name == "GET /docs/processing/{task_id}/status"]
    assert polls and all(s.context.trace_id != trace_id for s in polls)


ALICE, BOB = "alice-key-" + "a" * 30, "bob-key-" + "b" * 30


async def test_a_full_backlog_answers_429_with_retry_after_and_only_for_its_principal(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> None:
    # No worker polls this stack's queue: uploads stay unfinished, so the cap is reached
    # for certain, not by a race with ingestion.
    settings = stack_settings(
        tmp_path / "data",
        temporal_env,
        api_keys={ALICE: "alice", BOB: "bob"},
        max_unfinished_per_principal=2,
        backlog_retry_after_seconds=12.5,
    )
    settings.embedded_worker = False
    async with api_client(settings, embedder) as client:

        async def send(key: str, n: int) -> httpx.Response:
            pdf = text_pdf([[f"document {n} of {key[:5]}, distinct bytes"]])
            return await client.post(
                "/docs/upload_file_async",
                files={"file": (f"d{n}.pdf", pdf, "application/pdf")},
                headers={"Authorization": f"Bearer {key}"},
            )

        assert (await send(ALICE, 1)).status_code == 202
        assert (await send(ALICE, 2)).status_code == 202
        refused = await send(ALICE, 3)
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "13"
        body = refused.json()
        assert body["success"] is False
        assert body["error"]["error_code"] == "ingest_backlog_full"
        assert body["error"]["details"] == {
            "unfinished": 2,
            "limit": 2,
            "retry_after_seconds": 12.5,
        }
        # Another principal's uploads are not held back by alice's backlog.
        assert (await send(BOB, 1)).status_code == 202
        metrics = samples((await client.get("/metrics")).text)

    assert value(metrics, "docchat_ingest_queue_depth", state="queued") == 3
    assert value(metrics, "docchat_ingest_queue_oldest_age_seconds") > 0
    assert value(metrics, "docchat_uploads_refused_total") >= 1
