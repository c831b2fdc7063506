"""core/chat/store.py, chat sessions, messages and typing rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from core.chat import store
from core.chat.tables import ChatMessagePublic, ChatSessionPublic, MessageRole, as_utc
from core.ingestion.tables import utcnow

SOURCE = {
    "document_id": "d1",
    "filename": "report.pdf",
    "page": 3,
    "chunk_index": 7,
    "snippet": "Copenhagen — København, «ø»",
    "score": 0.81,
    "label": "page 3",
}


def test_sessions_are_per_owner_and_ordered_by_activity(engine: Engine) -> None:
    first = store.create_session(engine, owner="alice", title="first")
    second = store.create_session(engine, owner="alice", title="second")
    store.create_session(engine, owner="bob", title="bob's")
    assert first.id is not None and second.id is not None
    assert store.get_session(engine, first.id, owner="bob") is None
    listed = store.list_sessions(engine, owner="alice", limit=10, offset=0)
    assert [s.id for s in listed] == [second.id, first.id]

    store.add_message(engine, session_id=first.id, role=MessageRole.USER, content="hi")
    listed = store.list_sessions(engine, owner="alice", limit=10, offset=0)
    assert [s.id for s in listed] == [first.id, second.id], "a new message moves it up"
    public = ChatSessionPublic.of(listed[0])
    assert public.updated_at.utcoffset() == timedelta(0)


def test_messages_keep_order_text_and_sources(engine: Engine) -> None:
    chat = store.create_session(engine, owner="alice", title="t")
    assert chat.id is not None
    asked = store.add_message(
        engine, session_id=chat.id, role=MessageRole.USER, content="Où ?\n" * 2, user_id="dana"
    )
    answer = store.add_message(
        engine,
        session_id=chat.id,
        role=MessageRole.ASSISTANT,
        content="x" * 20_000,  # Text, not a bounded VARCHAR
        model="smollm2",
        sources=[SOURCE],
    )
    messages = store.list_messages(engine, chat.id)
    assert [m.id for m in messages] == [asked.id, answer.id]
    assert [m.id for m in store.list_messages(engine, chat.id, limit=1)] == [answer.id]
    public = ChatMessagePublic.of(messages[1])
    assert public.sources[0].model_dump() == SOURCE
    assert public.role == MessageRole.ASSISTANT and len(public.content) == 20_000
    assert messages[0].content == "Où ?\n" * 2 and messages[0].user_id == "dana"


def test_typing_rows_refresh_lapse_once_and_go_with_the_session(engine: Engine) -> None:
    chat = store.create_session(engine, owner="alice", title="t")
    assert chat.id is not None
    first = utcnow()
    store.write_typing(engine, {(chat.id, "dana"): first, (chat.id, "eve"): first})
    since = utcnow() - timedelta(seconds=5)
    before = store.active_typing(engine, session_id=chat.id, since=since)
    store.write_typing(engine, {(chat.id, "dana"): first + timedelta(seconds=1)})
    # An older change (a slower replica's batch) never moves an indicator back in time.
    store.write_typing(engine, {(chat.id, "dana"): first - timedelta(seconds=1)})
    active = store.active_typing(engine, session_id=chat.id, since=since)
    assert [row.user_id for row in active] == ["dana", "eve"]
    assert active[0].id == before[0].id, "a refresh updates the row, never adds one"
    assert as_utc(active[0].updated_at) == as_utc(first + timedelta(seconds=1))

    store.write_typing(engine, {(chat.id, "eve"): None})
    store.write_typing(engine, {(chat.id, "eve"): None})  # stopping twice is harmless
    future = utcnow() + timedelta(seconds=2)
    taken = store.take_lapsed_typing(engine, cutoff=future)
    assert [row.user_id for row in taken] == ["dana"]
    assert store.take_lapsed_typing(engine, cutoff=future) == [], "each lapse is taken once"

    # A change for a session that no longer exists is dropped, not the rest of its batch.
    store.write_typing(engine, {(chat.id, "eve"): utcnow()})
    store.write_typing(
        engine,
        {
            (chat.id, "dana"): utcnow(),
            (chat.id, "eve"): None,
            (chat.id + 999, "ghost"): utcnow(),
        },
    )
    assert [r.user_id for r in store.active_typing(engine, session_id=chat.id, since=since)] == [
        "dana"
    ]
    store.add_message(engine, session_id=chat.id, role=MessageRole.USER, content="q")
    assert not store.delete_session(engine, chat.id, owner="bob")
    assert store.delete_session(engine, chat.id, owner="alice")
    assert store.get_session(engine, chat.id, owner="alice") is None
    assert store.list_messages(engine, chat.id) == []
    assert store.active_typing(engine, session_id=chat.id, since=since) == []
