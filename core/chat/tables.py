"""Chat tables (SQLModel) and the public shapes the API and the WebSocket send."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.ingestion.tables import utcnow


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every stored one is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class ChatSession(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(default="New chat", max_length=200)
    owner: str = Field(default="local", index=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelFallback(BaseModel):
    """An answer given by another model than the one asked for, and why."""

    requested_model: str
    model: str
    # not_configured: no model of that name here; not_available: configured, not answering;
    # failed: it failed before the first piece of its answer.
    reason: Literal["not_configured", "not_available", "failed"]
    detail: str


class ChatMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="chatsession.id", index=True, ondelete="CASCADE")
    role: MessageRole
    content: str = Field(sa_column=Column(Text, nullable=False))
    # Who asked (several people can share a session); the model that answered.
    user_id: str | None = Field(default=None, max_length=128)
    model: str | None = Field(default=None, max_length=128)
    sources: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    # An answer's ModelFallback, when the model asked for did not answer it.
    model_fallback: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class TypingIndicator(SQLModel, table=True):
    """One row per person typing in a session; it lapses ``typing_ttl_seconds`` after
    ``updated_at`` unless refreshed."""

    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="chatsession.id", index=True, ondelete="CASCADE")
    user_id: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Source(BaseModel):
    """A retrieved chunk an answer was given; numbered ``[1]``, ``[2]``... in list order."""

    document_id: str
    filename: str
    page: int
    chunk_index: int
    snippet: str
    score: float
    # Where in the document, for people: "page 3", "slide 2", "§Setup › Installation".
    label: str = ""


class ChatSessionPublic(BaseModel):
    id: int
    title: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ChatSession) -> ChatSessionPublic:
        return cls(
            id=_saved_id(row.id),
            title=row.title,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )


class ChatMessagePublic(BaseModel):
    id: int
    session_id: int
    role: MessageRole
    content: str
    user_id: str | None
    model: str | None
    sources: list[Source]
    model_fallback: ModelFallback | None = None
    created_at: datetime

    @classmethod
    def of(cls, row: ChatMessage) -> ChatMessagePublic:
        return cls(
            id=_saved_id(row.id),
            session_id=row.session_id,
            role=row.role,
            content=row.content,
            user_id=row.user_id,
            model=row.model,
            sources=[Source.model_validate(source) for source in row.sources],
            model_fallback=(
                ModelFallback.model_validate(row.model_fallback) if row.model_fallback else None
            ),
            created_at=as_utc(row.created_at),
        )


class TypingPublic(BaseModel):
    session_id: int
    user_id: str
    updated_at: datetime
    expires_at: datetime


def _saved_id(value: int | None) -> int:
    if value is None:
        raise ValueError("a public shape needs a saved row (its id is not set yet)")
    return value
