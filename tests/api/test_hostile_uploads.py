"""Every bad upload gets its own error_code, and nothing is left behind.

Refused at upload (413, 415, 422): no file under uploads/, no row, no workflow. Accepted as a
PDF but failing for good once parsed (encrypted, truncated, too many pages, too much text, no
text): the task ends ``failed`` with its code, and its file, artifacts and vectors are gone;
only the task row and the closed workflow stay, as the record of why.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import Session, func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.ingestion import records
from core.ingestion.tables import Document, FileProcessingTask
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import stack_settings, wait_for_status
from tests.pdfs import bomb_pdf, text_pdf

MAX_UPLOAD = 300_000
MAX_PAGES = 6
MAX_CHARS = 200_000


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: Settings
    env: WorkflowEnvironment
    engine: Engine

    def stored_files(self) -> set[str]:
        return {path.name for path in self.settings.uploads_dir.iterdir()}

    def rows(self) -> tuple[int, int]:
        with Session(self.engine) as session:
            documents = session.exec(select(func.count()).select_from(Document)).one()
            task_rows = session.exec(select(func.count()).select_from(FileProcessingTask)).one()
        return documents, task_rows

    async def workflows(self) -> int:
        query = f"TaskQueue = '{self.settings.temporal_task_queue}'"
        return len([w async for w in self.env.client.list_workflows(query)])


@pytest_asyncio.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> AsyncIterator[Stack]:
    settings = stack_settings(
        tmp_path_factory.mktemp("hostile") / "data",
        temporal_env,
        activity_max_attempts=5,
        max_upload_bytes=MAX_UPLOAD,
        max_pages=MAX_PAGES,
        max_extracted_chars=MAX_CHARS,
    )
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Stack(client, settings, temporal_env, app.state.services.resources.engine)


async def post_file(client: httpx.AsyncClient, content: bytes, name: str) -> httpx.Response:
    return await client.post(
        "/docs/upload_file_async", files={"file": (name, content, "application/pdf")}
    )


# --- refused at upload: nothing is kept --------------------------------------------------


def _oversized() -> bytes:
    return b"%PDF-1.7\n" + b"0" * (MAX_UPLOAD * 3)


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (_oversized(), 413, "file_too_large"),
        (b"GIF89a\x01\x00 this is an image", 415, "unsupported_format"),
        (b"MZ\x90\x00 an executable renamed to .pdf", 415, "unsupported_format"),
        (b"", 422, "empty_file"),
    ],
    ids=["too-large", "gif", "exe", "zero-bytes"],
)
async def test_refused_uploads_leave_nothing(
    stack: Stack, content: bytes, status: int, code: str
) -> None:
    before = (stack.stored_files(), stack.rows(), await stack.workflows())
    response = await post_file(stack.client, content, "report.pdf")
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["data"] is None
    assert body["error"]["error_code"] == code
    assert body["error"]["message"]
    assert (stack.stored_files(), stack.rows(), await stack.workflows()) == before
    assert not any(name.endswith(".partial") for name in stack.stored_files())


async def test_a_huge_extra_part_is_refused_while_it_streams(stack: Stack, corpus: Path) -> None:
    # curl -F junk=@big -F file=@small.pdf: every byte of the body counts against the cap.
    before = (stack.stored_files(), stack.rows(), await stack.workflows())
    small = (corpus / "minimal-document.pdf").read_bytes()
    response = await stack.client.post(
        "/docs/upload_file_async",
        files=[
            ("junk", ("big.bin", b"0" * (MAX_UPLOAD * 3), "application/octet-stream")),
            ("file", ("small.pdf", small, "application/pdf")),
        ],
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["error_code"] == "file_too_large"
    assert (stack.stored_files(), stack.rows(), await stack.workflows()) == before


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"data": {"other": "x"}}, "missing_file"),
        ({"files": {"document": ("a.pdf", b"%PDF-1.4", "application/pdf")}}, "missing_file"),
        ({"content": b"%PDF-1.4", "headers": {"content-type": "application/pdf"}}, "missing_file"),
    ],
    ids=["form-without-file", "wrong-field", "raw-body"],
)
async def test_malformed_upload_requests_are_typed(
    stack: Stack, kwargs: dict[str, object], code: str
) -> None:
    before = (stack.stored_files(), stack.rows())
    response = await stack.client.post("/docs/upload_file_async", **kwargs)  # type: ignore[arg-type]
    assert (response.status_code, response.json()["error"]["error_code"]) == (422, code)
    assert (stack.stored_files(), stack.rows()) == before


# --- accepted (a PDF by its bytes), failed for good once parsed ---------------------------


def _truncated(corpus: Path) -> bytes:
    original = (corpus / "pdflatex-outline.pdf").read_bytes()
    return original[: len(original) // 3]


CASES: dict[str, Callable[[Path], bytes]] = {
    "encrypted_pdf": lambda corpus: (corpus / "libreoffice-writer-password.pdf").read_bytes(),
    "corrupt_pdf": _truncated,
    "too_many_pages": lambda corpus: text_pdf([[f"Page {n}"] for n in range(MAX_PAGES + 1)]),
    "no_extractable_text": lambda corpus: (corpus / "imagemagick-images.pdf").read_bytes(),
    # 3 pages of 2 MB of text each, in about 25 KB: stopped at the cap on the first page.
    "text_too_large": lambda corpus: bomb_pdf(pages=3, lines_per_page=20_000),
}


@pytest.mark.parametrize("code", sorted(CASES))
async def test_permanent_faults_fail_the_task_and_leave_only_the_record(
    stack: Stack, corpus: Path, code: str
) -> None:
    content = CASES[code](corpus)
    assert len(content) < MAX_UPLOAD
    response = await post_file(stack.client, content, f"{code}.pdf")
    assert response.status_code == 202, response.text
    accepted = response.json()["data"]
    document = records.get_document(stack.engine, accepted["document_id"])
    assert document is not None
    # Received whole and stored under a generated name (the workflow may already have
    # discarded the file by now, so its existence is not the test: its record is).
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", document.stored_name), document.stored_name
    assert (document.size_bytes, document.sha256) == (
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    stored = stack.settings.uploads_dir / document.stored_name

    final, _ = await wait_for_status(stack.client, accepted["task_id"])
    assert final["status"] == "failed", final
    assert final["error_code"] == code
    assert final["retryable"] is False
    assert final["error_message"]

    # Nothing else is left: no file, no artifacts, no vectors.
    assert not stored.exists()
    assert not (stack.settings.artifacts_dir / accepted["document_id"]).exists()
    kept = (await stack.client.get(f"/docs/{accepted['document_id']}")).json()["data"]
    assert kept["vector_count"] == 0
    assert kept["status"] == "failed"
    # The record stays: the closed workflow, and the task row that answers for it.
    handle = stack.env.client.get_workflow_handle(accepted["workflow_id"])
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    row = (await stack.client.get(f"/docs/processing/{accepted['task_id']}/status")).json()
    assert row["data"]["source"] == "database"
    assert (row["data"]["status"], row["data"]["error_code"]) == ("failed", code)
    retried = await stack.client.post(f"/docs/processing/{accepted['task_id']}/retry")
    assert retried.json()["error"]["error_code"] == "retry_not_possible"


async def test_unsafe_filenames_are_display_text_only(stack: Stack, corpus: Path) -> None:
    content = (corpus / "minimal-document.pdf").read_bytes()
    response = await post_file(stack.client, content, "../../etc/pass\x07wd\\..\\evil.pdf")
    assert response.status_code == 202, response.text
    accepted = response.json()["data"]
    assert accepted["filename"] == "evil.pdf"
    document = records.get_document(stack.engine, accepted["document_id"])
    assert document is not None
    # Stored under a generated name inside uploads/, nowhere else.
    assert (stack.settings.uploads_dir / document.stored_name).is_file()
    assert document.stored_name != accepted["filename"]
    assert not (stack.settings.data_dir.parent / "etc").exists()
    final, _ = await wait_for_status(stack.client, accepted["task_id"])
    assert final["status"] == "completed", final
