"""Persistence of chat sessions, messages and typing indicators: small keyword-only functions.

They block (SQL); async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.chat.models import ChatMessage, ChatSession, MessageRole, TypingIndicator
from core.db import session_scope
from core.models import utcnow

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
) -> ChatMessage:
    row = ChatMessage(
        session_id=session_id,
        role=role,
        content=content,
        user_id=user_id,
        model=model,
        sources=list(sources),
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


def set_typing(engine: Engine, *, session_id: int, user_id: str) -> TypingIndicator:
    """Start or refresh ``user_id``'s typing indicator in the session."""
    for _ in range(2):  # a concurrent first insert of the same person loses the race once
        with session_scope(engine) as session:
            row = session.exec(
                select(TypingIndicator)
                .where(TypingIndicator.session_id == session_id)
                .where(TypingIndicator.user_id == user_id)
            ).first()
            if row is None:
                row = TypingIndicator(session_id=session_id, user_id=user_id)
            else:
                row.updated_at = utcnow()
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            return row
    raise RuntimeError(f"could not record typing of {user_id!r} in session {session_id}")


def clear_typing(engine: Engine, *, session_id: int, user_id: str) -> bool:
    with session_scope(engine) as session:
        result = session.execute(
            delete(TypingIndicator)
            .where(col(TypingIndicator.session_id) == session_id)
            .where(col(TypingIndicator.user_id) == user_id)
        )
        session.commit()
    return bool(getattr(result, "rowcount", 0))


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


def take_lapsed_typing(engine: Engine, *, cutoff: datetime) -> list[TypingIndicator]:
    """Delete indicators not refreshed since ``cutoff`` and return the ones this call deleted.

    Each row is deleted on its own condition, so when several API processes sweep at once
    every lapse is reported by exactly one of them, and a refresh that lands in between wins.
    """
    taken: list[TypingIndicator] = []
    with session_scope(engine) as session:
        lapsed = session.exec(
            select(TypingIndicator).where(col(TypingIndicator.updated_at) <= cutoff)
        ).all()
        for row in lapsed:
            result = session.execute(
                delete(TypingIndicator)
                .where(col(TypingIndicator.id) == row.id)
                .where(col(TypingIndicator.updated_at) <= cutoff)
            )
            if getattr(result, "rowcount", 0):
                taken.append(row)
        session.commit()
    return taken
