"""Permanent document faults end the task `failed` at once, with distinct codes and no retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


async def activity_attempts(env: WorkflowEnvironment, workflow_id: str) -> list[int]:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


@pytest.mark.parametrize(
    ("filename", "error_code", "step"),
    [
        ("libreoffice-writer-password.pdf", "encrypted_pdf", "upload"),
        ("imagemagick-images.pdf", "no_extractable_text", "extract"),
    ],
)
async def test_document_fault_fails_once_with_its_code(
    settings: Settings,
    embedder: Embedder,
    corpus: Path,
    temporal_env: WorkflowEnvironment,
    filename: str,
    error_code: str,
    step: str,
) -> None:
    settings.activity_max_attempts = 5
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / filename)).json()
        final, _ = await wait_for_status(client, accepted["task_id"])

        assert final["status"] == "failed"
        assert final["error_code"] == error_code
        assert final["current_step"] == step
        assert final["retryable"] is False
        assert "PDF" in final["error_message"]
        # Every activity ran exactly once: no retries were wasted on a hopeless document.
        attempts = await activity_attempts(temporal_env, accepted["data"]["workflow_id"])
        assert attempts and set(attempts) == {1}

        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["status"] == "failed"
        assert document["vector_count"] == 0


async def test_truncated_pdf_fails_as_corrupt(
    settings: Settings, embedder: Embedder, corpus: Path, tmp_path: Path
) -> None:
    original = (corpus / "pdflatex-4-pages.pdf").read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(original[: len(original) // 2])
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, truncated)).json()
        final, _ = await wait_for_status(client, accepted["task_id"])
    assert (final["status"], final["error_code"]) == ("failed", "corrupt_pdf")
