"""A question naming a model that is not configured or not available is answered by the default
model, which is said first (``model_fallback``), in ``complete`` and in the stored answer."""

from __future__ import annotations

from tests.core.chat.conftest import LiveServer, receive_answer, receive_type
from tests.core.chat.test_answers_api import sse_events

UNRELATED = "How do I bake sourdough bread?"


async def test_the_seeds_mistral_example_is_answered_by_the_default(live: LiveServer) -> None:
    # In the test stack "mistral" is configured (an Ollama) but its server is down.
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await ws.send(
            '{"type": "chat_message", "question": "Say hello.", "model": "mistral",'
            ' "search_mode": "none"}'
        )
        events = await receive_answer(ws)
    kinds = [event["type"] for event in events]
    assert kinds[:3] == ["message", "model_fallback", "status"], kinds
    assert kinds[-1] == "complete" and "chunk" in kinds
    fallback = events[1]
    assert fallback["reply_to"] == events[0]["message"]["id"]
    assert (fallback["requested_model"], fallback["model"], fallback["reason"]) == (
        "mistral",
        "smollm2",
        "not_available",
    )
    assert "mistral" in fallback["detail"]
    assert events[2]["model"] == "smollm2"
    complete = events[-1]
    assert complete["model"] == "smollm2"
    assert complete["model_fallback"]["requested_model"] == "mistral"
    assert complete["message"]["model_fallback"] == complete["model_fallback"]
    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert history[-1]["model_fallback"]["reason"] == "not_available"
    assert history[0]["model_fallback"] is None  # the question itself carries none


async def test_rest_shows_a_model_that_is_not_configured(live: LiveServer) -> None:
    session_id = await live.new_session()
    response = await live.http.post(
        f"/chat/{session_id}/ask", json={"question": UNRELATED, "model": "nope"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    fallback = body["data"]["answer"]["model_fallback"]
    assert (fallback["requested_model"], fallback["model"], fallback["reason"]) == (
        "nope",
        "smollm2",
        "not_configured",
    )
    assert body["metadata"]["model_fallback"] == fallback


async def test_the_default_itself_and_the_strict_setting_still_refuse(live: LiveServer) -> None:
    session_id = await live.new_session()
    with live.model_fallback("error"):
        strict = await live.http.post(
            f"/chat/{session_id}/ask", json={"question": UNRELATED, "model": "mistral"}
        )
    assert strict.status_code == 503
    assert strict.json()["error"]["error_code"] == "model_not_available"
    asked_for_default = await live.http.post(
        f"/chat/{session_id}/ask", json={"question": UNRELATED, "model": "smollm2"}
    )
    assert asked_for_default.status_code == 200
    assert asked_for_default.json()["data"]["answer"]["model_fallback"] is None


async def test_a_model_failing_before_its_first_piece_is_stood_in_for(live: LiveServer) -> None:
    session_id = await live.new_session()
    body = {"question": "Say hello.", "model": "failing", "search_mode": "none"}
    events = await sse_events(live, session_id, body)
    kinds = [event["type"] for event in events]
    assert kinds[:4] == ["message", "status", "model_fallback", "status"], kinds
    assert kinds[-1] == "complete" and "chunk" in kinds
    assert events[1]["model"] == "failing" and events[3]["model"] == "smollm2"
    fallback = events[2]
    assert (fallback["requested_model"], fallback["model"], fallback["reason"]) == (
        "failing",
        "smollm2",
        "failed",
    )
    assert "refused the question" in fallback["detail"]
    complete = events[-1]
    assert complete["model"] == "smollm2" and complete["model_fallback"]["reason"] == "failed"
    assert complete["message"]["model_fallback"]["reason"] == "failed"

    with live.model_fallback("error"):
        strict = await live.http.post(f"/chat/{session_id}/ask", json=body)
    assert strict.status_code == 502
    assert strict.json()["error"]["error_code"] == "llm_generation_failed"
