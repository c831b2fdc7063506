"""``docchat ingest | status | retry | ask`` against a real server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.cli.conftest import docchat, row
from tests.conftest import REPO
from tests.helpers import Outage
from tests.servers import LiveApi, live_api


async def test_ingest_reports_every_file_and_fails_when_one_fails(
    server: LiveApi, corpus: Path, tmp_path: Path
) -> None:
    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_bytes(bytes(range(256)) * 4)  # no format docchat reads
    good, locked = corpus / "pdflatex-4-pages.pdf", corpus / "libreoffice-writer-password.pdf"
    run = await docchat("ingest", good, locked, not_pdf, url=server.url)

    assert run.code == 1, run
    assert "Ingest summary" in run.stdout
    completed = r"pdflatex-4-pages\.pdf\s+│ completed\s+│\s+4 │\s+\d+ │"
    assert re.search(completed, run.stdout), run.stdout
    assert "│ failed" in row(run.stdout, "libreoffice-writer-password.pdf")
    assert "encrypted_pdf" in row(run.stdout, "libreoffice-writer-password.pdf")
    assert "unsupported_format" in row(run.stdout, "notes.pdf")
    assert "1 completed, 2 failed" in run.stdout
    assert "error: libreoffice-writer-password.pdf: encrypted_pdf" in run.stderr
    assert "error: notes.pdf: unsupported_format" in run.stderr

    again = await docchat("ingest", good, url=server.url)
    assert again.code == 0, again
    assert "same content as an earlier upload" in row(again.stdout, "pdflatex")
    assert "1 duplicate" in again.stdout


async def test_status_shows_one_task_or_everything(server: LiveApi, corpus: Path) -> None:
    everything = await docchat("status", url=server.url)
    assert everything.code == 0, everything
    assert "No active tasks." in everything.stdout
    assert server.document_id in row(everything.stdout, "multicolumn.pdf")
    assert "ready" in row(everything.stdout, "multicolumn.pdf")

    task_id = (await server.http.get(f"/docs/{server.document_id}")).json()["data"]["task_id"]
    one = await docchat("status", task_id, url=server.url)
    assert one.code == 0, one
    assert "completed" in row(one.stdout, "status") and "100.00 %" in one.stdout

    missing = await docchat("status", "nope", url=server.url)
    assert missing.code == 1
    assert "error: task_not_found: No processing task nope." in missing.stderr


async def test_retry_resumes_a_failed_task_and_refuses_a_hopeless_one(
    server: LiveApi, corpus: Path, outage: Outage
) -> None:
    failed = await docchat("ingest", corpus / "crazyones-pdfa.pdf", url=server.url)
    assert failed.code == 1, failed
    line = row(failed.stdout, "crazyones-pdfa.pdf")
    assert "step_failed" in line and "simulated outage" in line
    task_id = re.search(r"docchat retry (\w+)", failed.stdout)
    assert task_id, failed.stdout

    outage.down = False
    resumed = await docchat("retry", task_id[1], url=server.url)
    assert resumed.code == 0, resumed
    assert f"Task {task_id[1]} resumed at step vectorize" in resumed.stderr
    assert "completed" in row(resumed.stdout, "status")

    # Uploading a failed file again is a failure too; retrying it cannot help.
    locked = await docchat("ingest", corpus / "libreoffice-writer-password.pdf", url=server.url)
    assert locked.code == 1, locked
    line = row(locked.stdout, "libreoffice-writer-password.pdf")
    assert "same content as an earlier upload, which did not complete: encrypted_pdf" in line
    documents = (await server.http.get("/docs")).json()["data"]
    document = next(d for d in documents if d["filename"] == "libreoffice-writer-password.pdf")
    document = (await server.http.get(f"/docs/{document['id']}")).json()["data"]
    refused = await docchat("retry", document["task_id"], url=server.url)
    assert refused.code == 1
    assert "error: retry_not_possible: A retry cannot help this task" in refused.stderr


async def test_ask_streams_an_answer_with_its_sources(server: LiveApi) -> None:
    env = os.environ | {"DOCCHAT_URL": server.url, "COLUMNS": "200", "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "ask", "What is the capital of Austria?",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout and process.stderr
    pieces: list[bytes] = []
    while piece := await asyncio.wait_for(process.stdout.read(4096), 180):
        pieces.append(piece)
    stderr = (await process.stderr.read()).decode()
    assert await process.wait() == 0, stderr
    stdout = b"".join(pieces).decode()

    answer, _, sources = stdout.partition("Sources")
    assert answer.strip(), stdout
    # The quotes arrive at once (they need no model), the model's framing sentence after them.
    assert len(pieces) >= 2, f"the answer streamed in pieces: {pieces}"
    assert answer.lstrip().startswith("> "), "the answer leads with a quote"
    assert "[1] multicolumn.pdf, page 3 (score " in sources
    session = re.search(r"session (\d+) \(continue with --session \1\)", stderr)
    assert session, stderr

    follow_up = await docchat(
        "ask", "And of France?", "--session", session[1], "--model", "smollm2", url=server.url
    )
    assert follow_up.code == 0, follow_up
    history = await server.http.get(f"/chat/sessions/{session[1]}/messages")
    assert [m["role"] for m in history.json()["data"]] == ["user", "assistant"] * 2

    # A model that is not configured: the default answers, and says so first.
    unknown = await docchat("ask", "Hi?", "--model", "nope", url=server.url)
    assert unknown.code == 0, unknown
    assert "answered by smollm2" in unknown.stderr and "'nope'" in unknown.stderr


async def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    run = await docchat("status", url="http://127.0.0.1:9")
    assert run.code == 1
    assert "error: unreachable: cannot reach docchat at http://127.0.0.1:9" in run.stderr


async def test_the_api_key_is_sent_as_a_bearer_token(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder, corpus: Path
) -> None:
    key = "cli-test-key-0123456789"
    keys = {key: "alice"}
    data_dir = tmp_path / "data"
    server = live_api(data_dir, temporal_env, embedder, corpus, ingest=False, api_keys=keys)
    async with server as api:
        refused = await docchat("status", url=api.url)
        assert refused.code == 1 and "error: unauthorized" in refused.stderr
        from_env = await docchat("status", url=api.url, api_key=key)
        assert from_env.code == 0 and "No documents." in from_env.stdout, from_env
        flag = await docchat("status", "--api-key", key, url=api.url)
        assert flag.code == 0, flag
