"""An answer survives a reconnect: a client whose socket dropped mid-answer gets, on its new
socket, the answer so far (one ``chunk`` with ``resumed: true``), then the rest, then
``complete``: exactly the whole answer, nothing twice."""

from __future__ import annotations

import json
from typing import Any

from tests.core.chat.conftest import LiveServer, receive, receive_type

ASK_SLOW = '{"type": "chat_message", "question": "Count.", "model": "slow", "search_mode": "none"}'


async def test_a_client_reconnecting_mid_answer_gets_exactly_the_whole_answer(
    live: LiveServer,
) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as first:
        await receive_type(first, "connected")
        await first.send(ASK_SLOW)
        seen_before_drop = 0
        while seen_before_drop < 5:
            if (await receive(first))["type"] == "chunk":
                seen_before_drop += 1
    # The socket is gone; the answer streams on without it.
    async with live.ws(session_id) as second:
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] not in {"complete", "error"}:
            message = await receive(second)
            if message["type"] != "ping":
                messages.append(message)
    assert messages[0]["type"] == "connected"
    chunks = [m for m in messages if m["type"] == "chunk"]
    assert chunks[0].get("resumed") is True, messages[:3]
    assert len(chunks[0]["content"].split()) >= seen_before_drop  # what the first socket saw
    assert not any(chunk.get("resumed") for chunk in chunks[1:])
    assert len(chunks) > 1, "the rest streamed live after the replay"
    complete = messages[-1]
    assert complete["type"] == "complete"
    whole = "".join(chunk["content"] for chunk in chunks)
    assert whole == live.slow.text()
    assert complete["content"] == whole.strip()
    assert {chunk["reply_to"] for chunk in chunks} == {complete["reply_to"]}


async def test_a_client_joining_after_the_answer_gets_no_replay(live: LiveServer) -> None:
    session_id = await live.new_session()
    async with live.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await ws.send(ASK_SLOW)
        await receive_type(ws, "complete", skip=("ping", "message", "status", "chunk"))
    assert live.chat.answer_streams.in_progress(session_id) == {}
    async with live.ws(session_id) as later:
        await receive_type(later, "connected")
        await later.send('{"type": "ping"}')
        assert (await receive(later))["type"] == "pong"  # nothing was replayed before it


def test_resumed_chunk_is_plain_json() -> None:
    # The seed's client reads only type and content: a replay must look like any chunk.
    from core.chat.answer_streams import AnswerStreams

    streams = AnswerStreams()
    streams.observe(3, '{"type":"chunk","session_id":3,"reply_to":9,"content":"Hel"}')
    streams.observe(3, '{"type":"chunk","session_id":3,"reply_to":9,"content":"lo"}')
    (replay,) = streams.replay(3)
    assert json.loads(replay) == {
        "type": "chunk",
        "session_id": 3,
        "reply_to": 9,
        "content": "Hello",
        "resumed": True,
    }
    streams.observe(3, '{"type":"complete","session_id":3,"reply_to":9,"content":"Hello"}')
    assert streams.replay(3) == []
