"""Schemathesis fuzzes every operation of the service's own OpenAPI schema, a bounded run.

For each operation it generates valid and invalid requests and checks the answers: never a 5xx,
every status code and content type declared, every body valid against its declared schema, and
every JSON body the envelope. The API runs for real (uvicorn in a thread with its own event
loop, the embedded worker, Temporal, Qdrant), with API keys on; requests carry a key.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.llm import ModelRegistry
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.core.chat.fakes import QuickModel

KEY = "fuzz-key-0123456789abcdef0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
ENVELOPE = {"success", "data", "error", "metadata"}
ERROR = {"error_code", "message", "details", "timestamp"}
# Per operation: enough to reach the error paths, small enough for two cores.
MAX_EXAMPLES = 20


class ThreadedServer:
    """uvicorn on a free port, in a thread with its own event loop, so synchronous clients
    (schemathesis uses requests) can call it from the test."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        host, port = self._sock.getsockname()
        self.base_url = f"http://{host}:{port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="fuzz-api", daemon=True)
        self._failure: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()
            self._failure = exc

    def start(self) -> None:
        self._thread.start()
        for _ in range(1200):
            if self._server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError(f"the API did not start: {self._failure!r}")
            threading.Event().wait(0.05)
        raise RuntimeError("the API did not start within 60 s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    config = Settings.model_validate(
        {
            "data_dir": data_dir,
            "temporal_address": temporal_env.client.service_client.config.target_host,
            "temporal_task_queue": f"test-{uuid.uuid4().hex[:12]}",
            "embedded_worker": True,
            "activity_max_attempts": 1,
            "api_keys": {KEY: "fuzzer"},
            "max_upload_bytes": 1_000_000,
        }
    )
    models = ModelRegistry([QuickModel()], default_model="quick")
    server = ThreadedServer(create_app(config, embedder=embedder, models=models))
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


@schemathesis.check
def enveloped(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every JSON answer is the envelope; an error carries a typed error and no data."""
    if "application/json" not in response.headers.get("content-type", [""])[0]:
        return None
    body = response.json()
    assert isinstance(body, dict) and ENVELOPE <= set(body), f"not the envelope: {body!r}"
    if response.status_code >= 400:
        assert body["success"] is False and body["data"] is None, body
        assert set(body["error"]) == ERROR and body["error"]["error_code"], body
    else:
        assert body["success"] is True and body["error"] is None, body
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    enveloped,
]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_operation_answers_within_its_schema(api: str, mode: GenerationMode) -> None:
    # Driven by hand rather than with schema.parametrize(): its pytest plugin does not work
    # with pytest 9 fixtures (schemathesis 4.32), and one test per mode is enough here.
    schema = schemathesis.openapi.from_url(f"{api}/api/openapi.json")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 15
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,  # the same requests every run: a CI failure reproduces locally
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(base_url=api, headers=AUTH, timeout=60, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to make invalid
        except Exception as failure:  # every operation is fuzzed; all failures are reported
            failures[operation.label] = str(failure)[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
