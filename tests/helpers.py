"""The helpers every test directory shares: waiting for a condition or a task's status, a free
port, settings and an app with its lifespan running, an outage of the vector store.

Each is defined here once; test modules import them rather than keeping near-copies."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.search.embeddings import Embedder
from core.settings import Settings

TERMINAL = {"completed", "cancelled"}
WORKER_HEALTHCHECK = Path(__file__).resolve().parent.parent / "deploy" / "worker_healthcheck.py"


async def until(
    condition: Callable[[], bool], *, within: float = 10.0, interval: float = 0.02
) -> None:
    """Return as soon as ``condition()`` holds; fail the test if it has not within ``within``
    seconds. ``within`` only bounds a failing test: a passing one waits no longer than needed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"condition not reached within {within} s"
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def load_worker_healthcheck() -> ModuleType:
    """deploy/worker_healthcheck.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("worker_healthcheck", WORKER_HEALTHCHECK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stack_settings(data_dir: Path, temporal_env: WorkflowEnvironment, **overrides: Any) -> Settings:
    """Settings for an API with its embedded worker on the test Temporal server."""
    return Settings(
        data_dir=data_dir,
        temporal_address=temporal_env.client.service_client.config.target_host,
        # A fresh task queue per stack: no test's worker picks up another test's work.
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        embedded_worker=True,
        **overrides,
    )


@contextlib.asynccontextmanager
async def api_client(settings: Settings, embedder: Embedder) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def upload(client: httpx.AsyncClient, path: Any, name: str | None = None) -> httpx.Response:
    with open(path, "rb") as handle:
        content = handle.read()
    return await client.post(
        "/docs/upload_file_async",
        files={"file": (name or str(path).rsplit("/", 1)[-1], content, "application/pdf")},
    )


async def wait_for_status(
    client: httpx.AsyncClient,
    task_id: str,
    *,
    until: set[str] | None = None,
    timeout: float = 120.0,
    interval: float = 0.1,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the status endpoint until the task's ``status`` (the seed's stage) or ``state``
    (the lifecycle) is one of ``until``; return all snapshots."""
    until = until or TERMINAL | {"failed"}
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/docs/processing/{task_id}/status")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        seen.append(data)
        if data["status"] in until or data["state"] in until:
            return data, seen
        await asyncio.sleep(interval)
    raise AssertionError(
        f"task {task_id} did not reach {until}; last: {seen[-1] if seen else None}"
    )


async def ingest_each(
    client: httpx.AsyncClient, paths: Any, *, timeout: float = 300.0
) -> dict[str, str]:
    """Upload ``paths`` one after another, each ingested to ``completed`` before the next;
    their document ids by file name."""
    ids: dict[str, str] = {}
    for path in paths:
        response = await upload(client, path)
        assert response.status_code == 202, response.text
        final, _ = await wait_for_status(client, response.json()["task_id"], timeout=timeout)
        assert final["status"] == "completed", final
        ids[path.name] = response.json()["document_id"]
    return ids


async def wait_for_workflow_status(
    handle: WorkflowHandle[Any, Any], status: WorkflowExecutionStatus, *, timeout: float
) -> bool:
    """Whether the workflow (described through Temporal, not the API) reaches ``status``
    within ``timeout`` seconds; ``wait_for_status`` polls the API's view of a task instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RPCError):
            if (await handle.describe()).status == status:
                return True
        await asyncio.sleep(0.2)
    return False


class Outage:
    """Makes ``upsert_chunks`` fail while ``down`` (only for batches from ``from_chunk`` on)."""

    def __init__(self, from_chunk: int = 0) -> None:
        self.down = True
        self.from_chunk = from_chunk
        self.stored_batches: list[int] = []
