"""Persistence of chat sessions, messages and typing indicators: small keyword-only functions.

They block (SQL); async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.chat.tables import ChatMessage, ChatSession, MessageRole, TypingIndicator
from core.db import session_scope

# --- sessions ----------------------------------------------------------------------------


def create_session(engine: Engine, *, owner: str, title: str) -> ChatSession:
    row = ChatSession(owner=owner, title=title)
    with session_scope(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


# Ids outside a signed 64-bit SQL integer cannot exist (and would overflow the driver).
MAX_ID = 2**63 - 1


def get_session(engine: Engine, session_id: int, *, owner: str) -> ChatSession | None:
    if not 0 < session_id <= MAX_ID:
        return None
    with session_scope(engine) as session:
        row = session.get(ChatSession, session_id)
    return row if row is not None and row.owner == owner else None


def list_sessions(engine: Engine, *, owner: str, limit: int, offset: int) -> Sequence[ChatSession]:
    with session_scope(engine) as session:
        statement = (
            select(ChatSession)
            .where(ChatSession.owner == owner)
            .order_by(col(ChatSession.updated_at).desc(), col(ChatSession.id).desc())
            .offset(offset)
            .limit(limit)
        )
        return session.exec(statement).all()


def delete_session(engine: Engine, session_id: int, *, owner: str) -> bool:
    """Delete a session with its messages and typing rows; ``False`` if it was not there."""
    if not 0 < session_id <= MAX_ID:
        return False
    with session_scope(engine) as session:
        row = session.get(ChatSession, session_id)
        if row is None or row.owner != owner:
            return False
        # Explicit rather than relying on ON DELETE CASCADE, which SQLite only honours with
        # its foreign-keys pragma on.
        session.execute(delete(ChatMessage).where(col(ChatMessage.session_id) == session_id))
        session.execute(
            delete(TypingIndicator).where(col(TypingIndicator.session_id) == session_id)
        )
        session.delete(row)
        session.commit()
    return True


# --- messages ----------------------------------------------------------------------------


def add_message(
    engine: Engine,
    *,
    session_id: int,
    role: MessageRole,
    content: str,
    user_id: str | None = None,
    model: str | None = None,
    sources: Sequence[dict[str, Any]] = (),
    model_fallback: dict[str, Any] | None = None,
) -> ChatMessage:
    row = ChatMessage(
        session_id=session_id,
        role=role,
        content=content,
        user_id=user_id,
        model=model,
        sources=list(sources),
        model_fallback=model_fallback,
    )
    with session_scope(engine) as session:
        session.add(row)
        chat = session.get(ChatSession, session_id)
        if chat is not None:
            chat.updated_at = row.created_at
            session.add(chat)
        session.commit()
        session.refresh(row)
    return row


def list_messages(
    engine: Engine, session_id: int, *, limit: int | None = None
) -> Sequence[ChatMessage]:
    """The session's messages, oldest first; with ``limit``, only the latest ``limit``."""
    with session_scope(engine) as session:
        statement = (
            select(ChatMessage)
            .where(ChatMessage.session_id == session_id)
            .order_by(col(ChatMessage.id).desc())
        )
        if limit is not None:
            statement = statement.limit(limit)
        rows = session.exec(statement).all()
    return list(reversed(rows))


# --- typing indicators -------------------------------------------------------------------


@dataclass(frozen=True)
class TypingLapse:
    session_id: int
    user_id: str


TypingChanges = Mapping[tuple[int, str], datetime | None]


def write_typing(engine: Engine, changes: TypingChanges) -> None:
    """Apply many typing changes in one transaction: ``(session_id, user_id)`` to the time it
    started or was refreshed, or to ``None`` when it stopped.

    One upsert statement for all starts, one delete per stop: a burst of keystrokes across
    sessions costs one commit, not one each. A change for a session deleted meanwhile is
    dropped, not the whole batch.
    """
    started = [
        {"session_id": session_id, "user_id": user_id, "updated_at": at}
        for (session_id, user_id), at in changes.items()
        if at is not None
    ]
    stopped = [key for key, at in changes.items() if at is None]
    try:
        _write_typing(engine, started, stopped)
    except IntegrityError:
        _write_typing(engine, [], stopped)
        for row in started:
            with contextlib.suppress(IntegrityError):
                _write_typing(engine, [row], [])


def _write_typing(
    engine: Engine, started: list[dict[str, Any]], stopped: list[tuple[int, str]]
) -> None:
    with engine.begin() as connection:
        if started:
            insert = _dialect_insert(engine)(TypingIndicator)
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["session_id", "user_id"],
                    # Never move an indicator back in time (batches from replicas can cross).
                    set_={"updated_at": insert.excluded.updated_at},
                    where=col(TypingIndicator.updated_at) < insert.excluded.updated_at,
                ),
                started,
            )
        for session_id, user_id in stopped:
            connection.execute(
                delete(TypingIndicator)
                .where(col(TypingIndicator.session_id) == session_id)
                .where(col(TypingIndicator.user_id) == user_id)
            )


def _dialect_insert(engine: Engine) -> Any:
    if engine.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def active_typing(engine: Engine, *, session_id: int, since: datetime) -> Sequence[TypingIndicator]:
    """Indicators refreshed after ``since`` (older ones have lapsed, swept or not)."""
    with session_scope(engine) as session:
        statement = (
            select(TypingIndicator)
            .where(TypingIndicator.session_id == session_id)
            .where(col(TypingIndicator.updated_at) > since)
            .order_by(col(TypingIndicator.user_id))
        )
        return session.exec(statement).all()


def take_lapsed_typing(engine: Engine, *, cutoff: datetime) -> list[TypingLapse]:
    """Delete indicators not refreshed since ``cutoff`` and return the ones this call deleted.

    One ``DELETE ... RETURNING``: when several API processes sweep at once, every lapse is
    reported by exactly the one whose statement deleted it, and a refresh that lands first wins.
    """
    with engine.begin() as connection:
        rows = connection.execute(
            delete(TypingIndicator)
            .where(col(TypingIndicator.updated_at) <= cutoff)
            .returning(col(TypingIndicator.session_id), col(TypingIndicator.user_id))
        ).all()
    return [TypingLapse(session_id=row[0], user_id=row[1]) for row in rows]
