"""Two API replicas, as separate uvicorn processes on one PostgreSQL: a WebSocket client of
replica A sees what happens in the session on replica B (typing, the question, every piece of
the answer) through the PostgreSQL broker, DOCCHAT_BROADCAST_URL, and A's REST lists whoever its
client was told is typing.

Each replica has its own DOCCHAT_DATA_DIR (Qdrant's local mode is one process per folder); the
question uses ``search_mode: "none"``, so no vectors are needed, and the embedded SmolLM2 model
answers for real.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect

from tests.postgres import PostgresCluster
from tests.processes import http_client, services, start_api, wait_until_serving

TYPING_TTL = 1.5


async def receive(ws: ClientConnection, timeout: float = 120) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] != "ping":
            return message


async def until_complete(ws: ClientConnection) -> list[dict[str, Any]]:
    """Everything up to the answer's ``complete`` (or ``error``), typing updates included."""
    seen = []
    while True:
        message = await receive(ws)
        seen.append(message)
        if message["type"] in {"complete", "error"}:
            return seen


async def test_websocket_on_one_replica_sees_a_question_asked_on_another(
    tmp_path: Path, postgres: PostgresCluster, temporal_env: WorkflowEnvironment
) -> None:
    database = postgres.create_database()
    common = {
        "database_url": postgres.url(database),
        "broadcast_url": postgres.url(database, driver=""),
        "temporal_address": temporal_env.client.service_client.config.target_host,
        "temporal_task_queue": f"test-{uuid.uuid4().hex[:12]}",
        "embedded_worker": "false",
        "llm_max_tokens": 12,
        "typing_ttl_seconds": TYPING_TTL,
    }
    api_a, address_a = start_api("api-a", tmp_path, data_dir=tmp_path / "a", **common)
    api_b, address_b = start_api("api-b", tmp_path, data_dir=tmp_path / "b", **common)
    with services(api_a, api_b):
        await asyncio.gather(
            wait_until_serving(api_a, address_a), wait_until_serving(api_b, address_b)
        )
        async with http_client(address_a) as http_a, http_client(address_b) as http_b:
            created = await http_a.post("/chat/sessions", json={"title": "replicas"})
            assert created.status_code == 201, created.text
            session_id = created.json()["data"]["id"]
            path = f"/chat/{session_id}/ws"
            async with (
                connect(f"ws://{address_a}{path}", open_timeout=10) as on_a,
                connect(f"ws://{address_b}{path}", open_timeout=10) as on_b,
            ):
                assert (await receive(on_a))["type"] == "connected"
                assert (await receive(on_b))["type"] == "connected"

                typing = {"type": "typing", "user_id": "bea", "is_typing": True}
                await on_b.send(json.dumps(typing))
                update = await receive(on_a, timeout=10)
                assert update["type"] == "typing_update"
                assert (update["user_id"], update["is_typing"]) == ("bea", True)
                # Told on replica A, so listed by A's REST at once, though only B (behind its
                # 50 ms write-behind) writes the indicator to SQL.
                listed = (await http_a.get(f"/chat/{session_id}/typing")).json()["data"]
                assert [indicator["user_id"] for indicator in listed] == ["bea"]

                question = {
                    "type": "chat_message",
                    "question": "Say hello to Bea.",
                    "search_mode": "none",
                    "user_id": "bea",
                }
                await on_b.send(json.dumps(question))
                seen_on_a, seen_on_b = await asyncio.gather(
                    until_complete(on_a), until_complete(on_b)
                )
                # bea's indicator lapses during or after the answer: one replica reports it.
                lapsed = [m for m in seen_on_a if m["type"] == "typing_update"]
                if not lapsed:
                    lapsed.append(await receive(on_a, timeout=TYPING_TTL + 5))
                await asyncio.sleep(TYPING_TTL)  # a second report would have come by now
                while True:
                    try:
                        lapsed.append(await receive(on_a, timeout=0.5))
                    except TimeoutError:
                        break

            history = await http_b.get(f"/chat/sessions/{session_id}/messages")

    assert [(m["type"], m["user_id"], m["is_typing"]) for m in lapsed] == [
        ("typing_update", "bea", False)
    ]
    answer_on_a = [m for m in seen_on_a if m["type"] != "typing_update"]
    answer_on_b = [m for m in seen_on_b if m["type"] != "typing_update"]
    assert answer_on_a == answer_on_b, "replica A's client saw exactly what B's did"
    kinds = [m["type"] for m in answer_on_a]
    assert kinds[:2] == ["message", "status"] and kinds[-1] == "complete", kinds
    assert kinds.count("chunk") >= 2, "the answer streamed in pieces, each one fanned out"
    assert answer_on_a[0]["message"]["content"] == "Say hello to Bea."
    complete = answer_on_a[-1]
    streamed = "".join(m["content"] for m in answer_on_a if m["type"] == "chunk")
    assert complete["content"] == streamed.strip() and complete["model"] == "smollm2"
    # Both replicas write to the one database.
    stored = history.json()["data"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == complete["content"]
