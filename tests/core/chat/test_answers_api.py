"""Answers without a WebSocket: ``POST /chat/{id}/ask`` and its SSE twin, with the real model."""

from __future__ import annotations

import json
from typing import Any

from tests.core.chat.conftest import LiveServer, receive_answer, receive_type
from tests.helpers import until

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
        (
            session_id,
            {"question": "hi", "search_mode": "none", "mode": "extractive"},
            422,
            "extractive_needs_documents",
        ),
        (session_id, {"question": "hi", "mode": "creative"}, 422, "validation_error"),
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


def flat(text: str) -> str:
    return " ".join(text.split())


async def test_extractive_over_rest_quotes_the_page_verbatim_without_a_model(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    body = {
        "question": "What is the area of Denmark in km2?",
        "search_mode": [live.document_id],
        "mode": "extractive",
    }
    response = await live.http.post(f"/chat/{session_id}/ask", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    answer = data["answer"]
    assert data["mode"] == "extractive" and answer["model"] is None, "no model was asked"
    assert data["confidence"] == "high" and data["confidence_score"] > 0.5
    quote = data["quotes"][0]
    assert quote["page"] == 3 and quote["filename"] == "multicolumn.pdf"
    assert "Denmark 5.8 42,951 Copenhagen Danish" in quote["text"]
    assert answer["content"].startswith(f"> {quote['text']} [{quote['source']}]")
    assert answer["sources"][quote["source"] - 1]["page"] == 3
    page = await live.http.get(f"/docs/{live.document_id}/pages/3")
    text = flat(page.json()["data"]["text"])
    assert all(part in text for part in quote["text"].split(" … ")), "verbatim from the page"


async def test_auto_over_sse_leads_with_the_quote_then_the_embedded_model(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    body = {"question": "What is the capital of Belgium?", "search_mode": [live.document_id]}
    events = await sse_events(live, session_id, body)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message", "status", "status"] and kinds[-1] == "complete"
    assert events[2]["status"] == "generating" and events[2]["model"] == "smollm2"
    complete = events[-1]
    assert complete["mode"] == "auto" and complete["confidence"] == "high"
    first = "".join(e["content"] for e in events if e["type"] == "chunk").lstrip()
    assert first.startswith("> ") and "Brussels" in first.splitlines()[0]
    lines = [line for line in complete["content"].splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), "no repeated line"


async def test_generative_over_the_socket_with_a_strong_model_drops_invalid_markers(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await ws.send(
            json.dumps(
                {
                    "type": "chat_message",
                    "question": "What is the capital of Austria?",
                    "model": "citing",
                    "mode": "generative",
                }
            )
        )
        seen = await receive_answer(ws)
    complete = seen[-1]
    assert complete["type"] == "complete" and complete["model"] == "citing"
    assert complete["content"] == "Vienna is the capital of Austria [1]. It is large."
    assert complete["invalid_citations"] == [0, 7]
    assert complete["mode"] == "generative" and complete["quotes"], "quotes rate the answer"
    system, asked = live.citing.last_turns[0], live.citing.last_turns[-1]
    assert "numbered sources" in system.content and "[1] multicolumn.pdf, page 3" in asked.content


async def test_a_looping_model_is_cut_and_the_quote_carries_the_fact(live: LiveServer) -> None:
    session_id = await live.new_session()
    body = {
        "question": "What is the population of Finland?",
        "search_mode": [live.document_id],
        "model": "looping",
        "mode": "generative",
    }
    events = await sse_events(live, session_id, body)
    complete = events[-1]
    assert complete["type"] == "complete", complete
    assert live.looping.calls >= 1
    content = complete["content"]
    assert "The answer is" not in content and "1: 1" not in content
    assert content.startswith("> ") and "Finland 5.5" in content
    lines = [line for line in content.splitlines() if line.strip()]
    assert len(lines) == len(set(lines))


async def test_nothing_relevant_never_calls_the_model_in_any_mode(live: LiveServer) -> None:
    session_id = await live.new_session()
    calls = live.citing.calls
    for mode in ("auto", "generative", "extractive"):
        body = {"question": UNRELATED, "model": "citing", "mode": mode}
        response = await live.http.post(f"/chat/{session_id}/ask", json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert "could not find" in data["answer"]["content"]
        assert data["confidence"] == "none" and data["answer"]["model"] is None
    assert live.citing.calls == calls, "the model was never asked"


async def test_every_mode_answers_over_rest_sse_and_the_socket(live: LiveServer) -> None:
    """The same three modes on each way of asking: extractive quotes without a model; with a
    strong model (the fake ``citing``) generative and auto both let it write the answer."""
    question = "What is the capital of Austria?"
    written = "Vienna is the capital of Austria [1]. It is large."

    async def over_rest(session_id: int, body: dict[str, Any]) -> dict[str, Any]:
        response = await live.http.post(f"/chat/{session_id}/ask", json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        return {"mode": data["mode"], "model": data["answer"]["model"], **data["answer"]}

    async def over_sse(session_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return (await sse_events(live, session_id, body))[-1]

    async def over_socket(session_id: int, body: dict[str, Any]) -> dict[str, Any]:
        async with live.ws(session_id) as ws:
            await receive_type(ws, "connected")
            await ws.send(json.dumps({"type": "chat_message", **body}))
            return (await receive_answer(ws))[-1]

    for transport in (over_rest, over_sse, over_socket):
        for mode in ("extractive", "generative", "auto"):
            session_id = await live.new_session()
            calls = live.citing.calls
            body = {"question": question, "model": "citing", "mode": mode}
            answer = await transport(session_id, body)
            where = (transport.__name__, mode)
            assert answer["mode"] == mode, where
            if mode == "extractive":
                assert answer["model"] is None and live.citing.calls == calls, where
                assert answer["content"].startswith("> ") and "Vienna" in answer["content"]
            else:
                assert answer["model"] == "citing" and live.citing.calls == calls + 1, where
                assert answer["content"] == written, where
