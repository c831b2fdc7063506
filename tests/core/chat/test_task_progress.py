"""Ingestion progress over the chat WebSocket: ``watch_tasks`` → ``task_progress`` to every
client of the session until the task ends; one watcher per (session, task), gone with the
session's last client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.core.chat.conftest import LiveServer, assert_silent, receive_type
from tests.helpers import until, upload, wait_for_status

STATUS_FIELDS = {
    "task_id", "document_id", "workflow_id", "status", "state", "current_step",
    "progress_percentage",
    "upload_progress", "extraction_progress", "chunking_progress", "vectorization_progress",
    "page_count", "pages_extracted", "chunk_count", "chunks_embedded", "chunks_reused",
    "error_code", "error_message", "retryable", "attempt", "last_failure", "created_at",
    "started_at", "updated_at", "completed_at", "source",
}  # fmt: skip


async def watch(ws: ClientConnection, *task_ids: str) -> None:
    await ws.send(json.dumps({"type": "watch_tasks", "task_ids": list(task_ids)}))


async def progress_until_final(ws: ClientConnection) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or not seen[-1]["final"]:
        seen.append(await receive_type(ws, "task_progress", timeout=120))
    return seen


async def drain(ws: ClientConnection, *, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every ``task_progress`` until nothing arrives for ``quiet`` seconds."""
    seen: list[dict[str, Any]] = []
    while True:
        try:
            seen.append(await receive_type(ws, "task_progress", timeout=quiet))
        except TimeoutError:
            return seen


async def test_every_client_of_the_session_sees_progress_until_the_end(
    live: LiveServer, corpus: Path
) -> None:
    session_id = await live.new_session()
    other_session = await live.new_session()
    accepted = (await upload(live.http, corpus / "pdflatex-4-pages.pdf")).json()
    task_id = accepted["task_id"]
    async with live.ws(session_id) as alice, live.ws(session_id) as bob:
        async with live.ws(other_session) as outsider:
            for ws in (alice, bob, outsider):
                await receive_type(ws, "connected")
            await watch(alice, task_id)
            first = await receive_type(bob, "task_progress", timeout=120)  # shown to everyone
            await watch(bob, task_id)  # watched already: bob alone gets the state now
            seen_by_alice = await progress_until_final(alice)
            seen_by_bob = [first, *await drain(bob)]
            await assert_silent(outsider, within=0.3)
        await until(lambda: not live.chat.task_watchers.watching(session_id))

    assert seen_by_alice[0] == first
    assert seen_by_alice[-1]["status"] == "completed"
    assert seen_by_alice[-1]["progress_percentage"] == 100
    assert all(not m["final"] for m in seen_by_alice[:-1])
    progress = [m["progress_percentage"] for m in seen_by_alice]
    assert progress == sorted(progress) and len(progress) >= 3, progress
    # One watcher: each change is sent once (two watchers would repeat every state).
    assert all(a != b for a, b in zip(seen_by_alice, seen_by_alice[1:], strict=False))
    for message in seen_by_alice:
        assert set(message) == STATUS_FIELDS | {"type", "session_id", "final"}
        assert message["session_id"] == session_id and message["task_id"] == task_id
    # Bob got the same messages, and the state of the moment he asked on top of them.
    assert len(seen_by_bob) == len(seen_by_alice) + 1
    assert any(
        seen_by_bob[:i] + seen_by_bob[i + 1 :] == seen_by_alice for i in range(1, len(seen_by_bob))
    )
    # The last state says what the status endpoint says. (It may come from the workflow just
    # before it closed, and the endpoint from the row after: timestamps and attempt can differ.)
    status = (await live.http.get(f"/docs/processing/{task_id}/status")).json()["data"]
    settled = STATUS_FIELDS - {"attempt", "started_at", "updated_at", "completed_at", "source"}
    assert {key: seen_by_alice[-1][key] for key in settled} == {key: status[key] for key in settled}


async def test_a_finished_task_is_told_to_the_asker_alone(live: LiveServer, corpus: Path) -> None:
    accepted = (await upload(live.http, corpus / "minimal-document.pdf")).json()
    await wait_for_status(live.http, accepted["task_id"])
    session_id = await live.new_session()
    async with live.ws(session_id) as asker, live.ws(session_id) as other:
        for ws in (asker, other):
            await receive_type(ws, "connected")
        await watch(asker, accepted["task_id"])
        late = await receive_type(asker, "task_progress")
        assert late["final"] is True and late["status"] == "completed"
        assert late["task_id"] == accepted["task_id"]
        await assert_silent(other, within=0.3)
        assert not live.chat.task_watchers.watching(session_id)  # nothing left to watch


async def test_unknown_tasks_and_bad_frames_get_typed_errors(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await watch(ws, "nope", "nada")
        error = (await receive_type(ws, "error"))["error"]
        assert error["error_code"] == "task_not_found"
        assert error["details"]["task_ids"] == ["nope", "nada"]

        for frame in ({"type": "watch_tasks", "task_ids": []}, {"type": "watch_tasks"}):
            await ws.send(json.dumps(frame))
            error = (await receive_type(ws, "error"))["error"]
            assert error["error_code"] == "validation_error"
            assert error["details"]["errors"][0]["field"] == "task_ids"

        await ws.send('{"type": "ping"}')  # the socket is still open
        await receive_type(ws, "pong")
    assert not live.chat.task_watchers.watching(session_id)


async def test_the_watcher_stops_when_the_last_client_leaves(
    live: LiveServer, corpus: Path
) -> None:
    accepted = (await upload(live.http, corpus / "GeoTopo-komprimiert.pdf")).json()
    session_id = await live.new_session()
    try:
        async with live.ws(session_id) as first, live.ws(session_id) as second:
            for ws in (first, second):
                await receive_type(ws, "connected")
            await watch(first, accepted["task_id"])
            assert (await receive_type(second, "task_progress"))["final"] is False
            await first.close()
            await receive_type(second, "task_progress")  # one client left: still watched
            assert live.chat.task_watchers.watching(session_id) == {accepted["task_id"]}
        await until(lambda: not live.chat.task_watchers.watching(session_id))
    finally:
        await live.http.delete(f"/docs/{accepted['document_id']}")
