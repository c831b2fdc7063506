"""Answers without a WebSocket: ``POST /chat/{id}/ask`` and its SSE twin, with the real model."""

from __future__ import annotations

import json
from typing import Any

from tests.chat.conftest import LiveServer, receive_answer, receive_type, until

UNRELATED = "How do I bake sourdough bread?"


async def sse_events(
    live: LiveServer, session_id: int, body: dict[str, Any]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with live.http.stream("POST", f"/chat/{session_id}/ask/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                payload = json.loads(line.partition(":")[2])
                assert payload["type"] == kind
                events.append(payload)
    return events


async def test_rest_answer_is_real_cited_and_stored(live: LiveServer) -> None:
    session_id = await live.new_session()
    response = await live.http.post(
        f"/chat/{session_id}/ask",
        json={
            "question": "What is the population of Denmark?",
            "search_mode": [live.document_id],
            "user_id": "dana",
        },
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["question"]["user_id"] == "dana"
    answer = data["answer"]
    assert answer["role"] == "assistant" and answer["content"]
    assert answer["model"] == "smollm2"
    assert answer["sources"][0]["page"] == 3
    assert answer["sources"][0]["document_id"] == live.document_id
    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert [m["id"] for m in history] == [data["question"]["id"], answer["id"]]


async def test_nothing_relevant_is_said_plainly_over_sse_and_the_socket(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        events = await sse_events(live, session_id, {"question": UNRELATED})
        shown = await receive_answer(ws)
    assert [e["type"] for e in events] == ["message", "status", "chunk", "complete"]
    assert shown == events, "a REST/SSE answer is shown to the session's sockets too"
    complete = events[-1]
    assert complete["sources"] == [] and complete["model"] is None
    assert "could not find" in complete["content"]


async def test_sse_without_documents_uses_the_model_only(live: LiveServer) -> None:
    session_id = await live.new_session()
    events = await sse_events(live, session_id, {"question": "Say hello.", "search_mode": "none"})
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message", "status"] and kinds[-1] == "complete"
    assert events[1]["status"] == "generating" and events[1]["model"] == "smollm2"
    assert "chunk" in kinds and events[-1]["sources"] == []


async def test_sse_failure_midway_ends_with_an_error_event(live: LiveServer) -> None:
    session_id = await live.new_session()
    body = {"question": "What is the capital of Austria?", "model": "broken"}
    events = await sse_events(live, session_id, body)
    assert [e["type"] for e in events] == ["message", "status", "status", "chunk", "chunk", "error"]
    assert events[-1]["error"]["error_code"] == "llm_generation_failed"

    rest = await live.http.post(f"/chat/{session_id}/ask", json=body)
    assert rest.status_code == 502
    assert rest.json()["error"]["error_code"] == "llm_generation_failed"


async def test_refusals_before_answering_are_enveloped(live: LiveServer) -> None:
    session_id = await live.new_session()
    cases = [
        (session_id, {"question": "hi", "model": "nope"}, 404, "unknown_model"),
        (session_id, {"question": "hi", "model": "mistral"}, 503, "model_not_available"),
        (session_id, {"question": "  "}, 422, "validation_error"),
        (session_id, {"question": "hi", "search_mode": []}, 422, "validation_error"),
        (session_id, {"question": "hi", "search_mode": ["gone"]}, 404, "document_not_found"),
        (999999, {"question": "hi"}, 404, "session_not_found"),
    ]
    for target, body, status, code in cases:
        for path in (f"/chat/{target}/ask", f"/chat/{target}/ask/stream"):
            with live.model_fallback("error"):  # the strict setting: no default stands in
                response = await live.http.post(path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert response.json()["error"]["error_code"] == code
    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert history == []


async def test_an_sse_client_leaving_stops_the_answer_and_tells_the_session(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    body = {"question": "Talk forever.", "model": "endless", "search_mode": "none"}
    async with live.ws(session_id) as watcher:
        await receive_type(watcher, "connected")
        async with live.http.stream("POST", f"/chat/{session_id}/ask/stream", json=body) as sse:
            async for line in sse.aiter_lines():
                if line.startswith("event: chunk"):
                    break  # leave in the middle of the answer
        seen = await receive_answer(watcher, timeout=10)
    assert seen[-1]["type"] == "error"
    assert seen[-1]["error"]["error_code"] == "answer_cancelled"
    assert "chunk" in [m["type"] for m in seen]
    await until(lambda: live.endless.running == 0)  # the generation stopped too
    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert [m["role"] for m in history] == ["user"]


async def test_retrieval_is_validated_and_each_mode_answers(live: LiveServer) -> None:
    session_id = await live.new_session()
    url = f"/chat/{session_id}/ask"
    refused = await live.http.post(url, json={"question": "q", "retrieval": "bm25"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["error_code"] == "validation_error"
    for mode in ("keyword", "dense", "hybrid"):
        body = {
            "question": "What is the population of Denmark?",
            "search_mode": [live.document_id],
            "retrieval": mode,
        }
        response = await live.http.post(url, json=body)
        assert response.status_code == 200, response.text
        sources = response.json()["data"]["answer"]["sources"]
        assert sources and sources[0]["page"] == 3, (mode, sources)
