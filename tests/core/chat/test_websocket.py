"""The chat WebSocket over real sockets: fan-out to every client of a session and no other,
a real streamed answer from SmolLM2, typed errors that leave the socket open, close codes."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.core.chat.conftest import LiveServer, assert_silent, receive_answer, receive_type
from tests.helpers import until

QUESTION = "What is the capital of Austria?"


async def test_two_clients_share_typing_and_a_real_streamed_answer(live: LiveServer) -> None:
    session_id = await live.new_session()
    other_session = await live.new_session()
    async with live.ws(session_id) as alice, live.ws(session_id) as bob:
        async with live.ws(other_session) as outsider:
            for ws in (alice, bob, outsider):
                await receive_type(ws, "connected")

            await alice.send('{"type": "typing", "user_id": "alice", "is_typing": true}')
            for ws in (alice, bob):
                update = await receive_type(ws, "typing_update")
                assert update["session_id"] == session_id
                assert update["user_id"] == "alice" and update["is_typing"] is True
                assert update["timestamp"]

            await alice.send(
                f'{{"type": "chat_message", "question": "{QUESTION}", "user_id": "alice"}}'
            )
            seen_by_alice = await receive_answer(alice)
            seen_by_bob = await receive_answer(bob)
            await assert_silent(outsider, within=0.5)

    assert seen_by_alice == seen_by_bob
    kinds = [message["type"] for message in seen_by_alice]
    assert kinds[:3] == ["message", "status", "status"], kinds
    assert kinds[-1] == "complete", seen_by_alice[-1]
    assert set(kinds[3:-1]) == {"chunk"} and len(kinds) > 5, "the answer streams in pieces"

    question = seen_by_alice[0]["message"]
    assert question["role"] == "user" and question["content"] == QUESTION
    assert question["user_id"] == "alice"
    assert [m["status"] for m in seen_by_alice[1:3]] == ["retrieving", "generating"]
    assert seen_by_alice[2]["model"] == "smollm2"
    assert all(m["reply_to"] == question["id"] for m in seen_by_alice[1:])

    complete = seen_by_alice[-1]
    streamed = "".join(m["content"] for m in seen_by_alice if m["type"] == "chunk")
    assert complete["content"] == streamed.strip() != ""
    assert complete["model"] == "smollm2"
    # The sources point at the ingested document and the page that holds the answer.
    top = complete["sources"][0]
    assert top["document_id"] == live.document_id
    assert top["filename"] == "multicolumn.pdf"
    assert top["page"] == 3
    assert "Vienna" in top["snippet"]
    assert top["label"] == "page 3"
    assert set(top) == {
        "document_id", "filename", "page", "chunk_index", "snippet", "score", "label",
    }  # fmt: skip

    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["id"] == complete["message_id"]
    assert history[1]["content"] == complete["content"]
    assert history[1]["sources"] == complete["sources"]


async def test_bad_frames_get_typed_errors_and_the_socket_stays_open(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        cases = [
            ("{not json", "invalid_json"),
            (b"\xff\xfe", "invalid_json"),
            ('{"type": "dance"}', "unknown_message_type"),
            ('{"question": "no type"}', "validation_error"),
            ("[1, 2]", "validation_error"),
            ('{"type": "chat_message"}', "validation_error"),
            ('{"type": "chat_message", "question": "   "}', "validation_error"),
            ('{"type": "typing", "user_id": "x"}', "validation_error"),
            (
                '{"type": "chat_message", "question": "hi", "search_mode": "some"}',
                "validation_error",
            ),
            ('{"type": "chat_message", "question": "hi", "model": "nope"}', "unknown_model"),
            (
                '{"type": "chat_message", "question": "hi", "model": "mistral"}',
                "model_not_available",
            ),
            (
                '{"type": "chat_message", "question": "hi", "search_mode": ["no-such-doc"]}',
                "document_not_found",
            ),
        ]
        for frame, code in cases:
            with live.model_fallback("error"):  # the strict setting: no default stands in
                await ws.send(frame)
                error = (await receive_type(ws, "error"))["error"]
            assert error["error_code"] == code, (frame, error)
            assert set(error) == {"error_code", "message", "details", "timestamp"}
            assert error["message"]
        missing = await _error_for(ws, '{"type": "chat_message"}')
        assert [e["field"] for e in missing["details"]["errors"]] == ["question"]
        unknown = await _error_for(ws, '{"type": "dance"}')
        assert "chat_message" in unknown["details"]["known_types"]

        await ws.send('{"type": "ping"}')
        assert (await receive_type(ws, "pong"))["timestamp"]
    # Refused questions leave no trace in the history.
    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert history == []


async def _error_for(ws: ClientConnection, frame: str) -> dict[str, Any]:
    await ws.send(frame)
    error: dict[str, Any] = (await receive_type(ws, "error"))["error"]
    return error


async def test_a_failure_mid_answer_ends_the_stream_with_an_error(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as asker, live.ws(session_id) as watcher:
        for ws in (asker, watcher):
            await receive_type(ws, "connected")
        await asker.send(f'{{"type": "chat_message", "question": "{QUESTION}", "model": "broken"}}')
        for ws in (asker, watcher):
            seen = await receive_answer(ws)
            assert [m["type"] for m in seen] == [
                "message", "status", "status", "chunk", "chunk", "error",
            ]  # fmt: skip
            error = seen[-1]
            assert error["error"]["error_code"] == "llm_generation_failed"
            assert error["reply_to"] == seen[0]["message"]["id"]
            assert error["session_id"] == session_id

        # The socket is still usable, and a new question can be asked at once.
        await asker.send('{"type": "ping"}')
        await receive_type(asker, "pong")
        await asker.send(f'{{"type": "chat_message", "question": "{QUESTION}", "model": "broken"}}')
        assert (await receive_answer(asker))[-1]["type"] == "error"

    history = (await live.http.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
    assert [m["role"] for m in history] == ["user", "user"], "a failed answer is not stored"


async def test_an_unknown_session_is_refused_with_4404(live: LiveServer) -> None:
    async with live.ws(987654) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404
    assert "No chat session 987654" in closed.value.rcvd.reason


async def test_a_disconnected_client_is_cleaned_up(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as staying:
        await receive_type(staying, "connected")
        async with live.ws(session_id) as leaving:
            await receive_type(leaving, "connected")
            assert live.chat.connections.count(session_id) == 2
        await until(lambda: live.chat.connections.count(session_id) == 1)
        # The one left still gets the session's messages.
        await live.http.post(f"/chat/{session_id}/typing", json={"user_id": "z", "is_typing": True})
        assert (await receive_type(staying, "typing_update"))["user_id"] == "z"
    await until(lambda: live.chat.connections.count(session_id) == 0)


async def test_deleting_a_session_tells_and_closes_its_clients(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        response = await live.http.delete(f"/chat/sessions/{session_id}")
        assert response.status_code == 200, response.text
        assert (await receive_type(ws, "session_deleted"))["session_id"] == session_id
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    assert live.chat.connections.count(session_id) == 0


async def test_one_question_at_a_time_and_deleting_the_session_stops_its_answer(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    ask = (
        '{"type": "chat_message", "question": "Go on.", "model": "endless", "search_mode": "none"}'
    )
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await ws.send(ask)
        await receive_type(ws, "chunk", skip=("ping", "message", "status"))
        await ws.send(ask)
        busy = await receive_type(ws, "error", skip=("ping", "chunk"))
        assert busy["error"]["error_code"] == "answer_in_progress"
        assert "reply_to" not in busy  # about this client's frame, not the answer

        await live.http.delete(f"/chat/sessions/{session_id}")
        ended = await receive_type(ws, "error", skip=("ping", "chunk"))
        assert ended["error"]["error_code"] == "answer_cancelled"
        assert (await receive_type(ws, "session_deleted"))["session_id"] == session_id
    await until(lambda: live.endless.running == 0)
