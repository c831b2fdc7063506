"""REST answers are bounded per principal (a real server with API keys): a burst over the rate
and an answer over the concurrency cap are refused with 429 ``rate_limited`` and
``Retry-After``, and one principal's limit does not touch another's."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.llm import ModelRegistry
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.core.chat.conftest import serve
from tests.core.chat.fakes import EndlessModel, QuickModel

ALICE_KEY = "alice-0123456789abcdef0123456789"
BOB_KEY = "bob-0123456789abcdef0123456789ab"
BURST = 3


@dataclass
class Caller:
    http: httpx.AsyncClient
    session_id: int

    async def ask(self, model: str = "quick") -> httpx.Response:
        return await self.http.post(
            f"/chat/{self.session_id}/ask",
            json={"question": "Why?", "model": model, "search_mode": "none"},
        )


@pytest_asyncio.fixture
async def callers(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
) -> AsyncIterator[tuple[Caller, Caller]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ask-limits") / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        api_keys={ALICE_KEY: "alice", BOB_KEY: "bob"},
        ask_max_concurrent=1,
        ask_rate_limit_per_second=0.01,  # no token comes back during the test
        ask_rate_limit_burst=BURST,
    )
    models = ModelRegistry([QuickModel(), EndlessModel()], default_model="quick")
    app = create_app(settings, embedder=embedder, models=models)
    async with serve(app) as address:
        clients = []
        for key in (ALICE_KEY, BOB_KEY):
            http = httpx.AsyncClient(
                base_url=f"http://{address}", timeout=60, headers={"Authorization": f"Bearer {key}"}
            )
            session = await http.post("/chat/sessions", json={"title": "limits"})
            assert session.status_code == 201, session.text
            clients.append(Caller(http, session.json()["data"]["id"]))
        try:
            yield clients[0], clients[1]
        finally:
            for caller in clients:
                await caller.http.aclose()


def _assert_rate_limited(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 429, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["error_code"] == "rate_limited"
    retry_after = error["details"]["retry_after_seconds"]  # type: ignore[index]
    assert retry_after > 0
    assert int(response.headers["retry-after"]) >= 1
    return error


async def test_a_burst_over_the_rate_is_refused_and_other_principals_still_ask(
    callers: tuple[Caller, Caller],
) -> None:
    alice, bob = callers
    for _ in range(BURST):
        answered = await alice.ask()
        assert answered.status_code == 200, answered.text
    refused = await alice.ask()
    error = _assert_rate_limited(refused)
    assert error["details"]["retry_after_seconds"] > 60  # type: ignore[index]
    streamed = await alice.http.post(
        f"/chat/{alice.session_id}/ask/stream", json={"question": "Why?", "search_mode": "none"}
    )
    _assert_rate_limited(streamed)  # one budget for both routes
    assert (await bob.ask()).status_code == 200


async def test_an_answer_over_the_concurrency_cap_waits_for_the_running_one(
    callers: tuple[Caller, Caller],
) -> None:
    alice, _ = callers
    body = {"question": "Why?", "model": "endless", "search_mode": "none"}
    async with alice.http.stream(
        "POST", f"/chat/{alice.session_id}/ask/stream", json=body
    ) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data:") and json.loads(line[5:])["type"] == "chunk":
                break  # the endless answer is streaming: the one slot is taken
        busy = await alice.ask()
        error = _assert_rate_limited(busy)
        assert error["details"]["max_concurrent"] == 1  # type: ignore[index]
    # The client left: the server stops that answer and frees the slot.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (answered := await alice.ask()).status_code == 429:
        assert "max_concurrent" in answered.json()["error"]["details"], answered.text
        assert loop.time() < deadline, "the slot of a finished stream was not freed"
        await asyncio.sleep(0.05)
    assert answered.status_code == 200, answered.text
