"""deploy/worker_healthcheck.py against the real Temporal dev server of tests/conftest.py."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.settings import Settings
from tests.helpers import load_worker_healthcheck


@workflow.defn(name="HealthcheckProbe")
class ProbeWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def test_identity_must_name_this_host() -> None:
    healthcheck = load_worker_healthcheck()
    assert healthcheck.names_host("17@3f2a9c0d1b2e", "3f2a9c0d1b2e")
    assert not healthcheck.names_host("17@3f2a9c0d1b2e-other", "3f2a9c0d1b2e")
    assert not healthcheck.names_host("custom-identity", "3f2a9c0d1b2e")


async def test_healthy_only_while_this_host_polls(
    temporal_env: WorkflowEnvironment, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthcheck = load_worker_healthcheck()
    hostname = socket.gethostname()
    # main() reads its settings from the environment, as in the container.
    monkeypatch.setenv("DOCCHAT_TEMPORAL_ADDRESS", settings.temporal_address)
    monkeypatch.setenv("DOCCHAT_TEMPORAL_TASK_QUEUE", settings.temporal_task_queue)

    assert not await healthcheck.is_polling(settings, hostname)
    assert await asyncio.to_thread(healthcheck.main) == 1

    async with Worker(
        temporal_env.client,
        task_queue=settings.temporal_task_queue,
        workflows=[ProbeWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        assert await eventually(lambda: healthcheck.is_polling(settings, hostname))
        assert not await healthcheck.is_polling(settings, "another-replica")
        assert await asyncio.to_thread(healthcheck.main) == 0
