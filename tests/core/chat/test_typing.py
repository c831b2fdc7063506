"""Typing indicators: REST and WebSocket updates, persisted, broadcast, lapsing without refresh."""

from __future__ import annotations

import asyncio

from tests.core.chat.conftest import TYPING_TTL, LiveServer, receive_type


async def test_typing_is_listed_broadcast_and_lapses(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        response = await live.http.post(
            f"/chat/{session_id}/typing", json={"user_id": "bob", "is_typing": True}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"]["type"] == "typing_update" and body["data"]["is_typing"] is True
        assert body["metadata"]["ttl_seconds"] == TYPING_TTL

        started = await receive_type(ws, "typing_update")
        assert (started["user_id"], started["is_typing"]) == ("bob", True)
        typing = (await live.http.get(f"/chat/{session_id}/typing")).json()["data"]
        assert [(t["user_id"], t["session_id"]) for t in typing] == [("bob", session_id)]
        assert typing[0]["expires_at"] > typing[0]["updated_at"]

        # No refresh: within the TTL plus one sweep, everyone is told that bob stopped.
        lapsed = await receive_type(ws, "typing_update", timeout=TYPING_TTL * 3)
        assert (lapsed["user_id"], lapsed["is_typing"]) == ("bob", False)
        assert (await live.http.get(f"/chat/{session_id}/typing")).json()["data"] == []


async def test_refreshing_keeps_typing_alive_and_stopping_clears_it(live: LiveServer) -> None:
    session_id = await live.new_session()
    url = f"/chat/{session_id}/typing"
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        for _ in range(3):  # refreshed every 0.6 TTL for 1.8 TTL in all
            await live.http.post(url, json={"user_id": "carol", "is_typing": True})
            await asyncio.sleep(TYPING_TTL * 0.6)
        typing = (await live.http.get(url)).json()["data"]
        assert [t["user_id"] for t in typing] == ["carol"]

        # Over the socket this time: stopping is immediate.
        await ws.send('{"type": "typing", "user_id": "carol", "is_typing": false}')
        updates = [await receive_type(ws, "typing_update") for _ in range(4)]
        assert [u["is_typing"] for u in updates] == [True, True, True, False]
        assert (await live.http.get(url)).json()["data"] == []


async def test_typing_errors_use_the_envelope(live: LiveServer) -> None:
    missing = await live.http.post("/chat/424242/typing", json={"user_id": "a", "is_typing": True})
    assert missing.status_code == 404
    body = missing.json()
    assert body["success"] is False and body["error"]["error_code"] == "session_not_found"
    assert (await live.http.get("/chat/424242/typing")).status_code == 404

    session_id = await live.new_session()
    invalid = await live.http.post(f"/chat/{session_id}/typing", json={"is_typing": True})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["error_code"] == "validation_error"
