"""The ``docchat`` command run as a real process (``python -m cli``, what the ``docchat``
entry point runs) against a real API server in the tests' event loop."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.conftest import REPO
from tests.servers import LiveApi, live_api


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest_asyncio.fixture(scope="package")
async def server(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[LiveApi]:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    async with live_api(data_dir, temporal_env, embedder, corpus) as api:
        yield api


async def docchat(
    *args: str | Path, url: str, api_key: str | None = None, timeout: float = 180
) -> Run:
    """Run ``docchat ARGS`` to its end; the server keeps serving meanwhile (same loop)."""
    env = os.environ | {"DOCCHAT_URL": url, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("DOCCHAT_API_KEY", None)
    if api_key is not None:
        env["DOCCHAT_API_KEY"] = api_key
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *map(str, args),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def row(output: str, name: str) -> str:
    """The summary table's line for ``name``."""
    lines = [line for line in output.splitlines() if name in line]
    assert lines, f"{name} is not in:\n{output}"
    return lines[0]
