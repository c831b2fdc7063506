"""The chat protocol: frames a client sends over the WebSocket and events the server sends.

Events are plain pydantic models, dumped to JSON once and fanned out to every client of a
session (and, later, to other API processes through a broker). ``docs/chat.md`` documents each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.chat.modes import AnswerMode, Confidence
from core.chat.tables import ChatMessagePublic, ModelFallback, Source
from core.errors import AppError, ErrorDetail, InvalidInputError
from core.search import Retrieval

# Its longest length is a setting (chat_max_question_chars), checked when the question is
# prepared; the frame and body size caps bound what reaches this.
QuestionText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
DocumentId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TaskId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# "all" documents, "none" (the model answers without documents), or these documents only.
SearchMode = Literal["all", "none"] | Annotated[list[DocumentId], Field(min_length=1)]


def now() -> datetime:
    return datetime.now(UTC)


# --- client → server ---------------------------------------------------------------------


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TypingFrame(_Frame):
    type: Literal["typing"]
    user_id: UserId
    is_typing: bool


class ChatFrame(_Frame):
    type: Literal["chat_message"]
    question: QuestionText
    model: str | None = None
    search_mode: SearchMode = "all"
    user_id: UserId | None = None
    # hybrid, dense or keyword; None: the retrieval_mode setting (hybrid unless changed).
    retrieval: Retrieval | None = None
    mode: AnswerMode = "auto"


class WatchTasksFrame(_Frame):
    """Push these ingestion tasks' progress to every client of the session until each ends."""

    type: Literal["watch_tasks"]
    task_ids: Annotated[list[TaskId], Field(min_length=1, max_length=100)]


class PingFrame(_Frame):
    type: Literal["ping"]


class PongFrame(_Frame):
    type: Literal["pong"]


ClientFrame = TypingFrame | ChatFrame | WatchTasksFrame | PingFrame | PongFrame
FRAME_TYPES: dict[str, type[ClientFrame]] = {
    "typing": TypingFrame,
    "chat_message": ChatFrame,
    "watch_tasks": WatchTasksFrame,
    "ping": PingFrame,
    "pong": PongFrame,
}


class InvalidJSONError(InvalidInputError):
    error_code = "invalid_json"


class UnknownMessageTypeError(InvalidInputError):
    error_code = "unknown_message_type"


class FrameValidationError(InvalidInputError):
    error_code = "validation_error"


def parse_frame(text: str) -> ClientFrame:
    """One client frame, or a typed error saying exactly what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidJSONError(
            "The message is not valid JSON.", details={"reason": str(exc)}
        ) from exc
    if not isinstance(data, dict):
        raise FrameValidationError(
            "A message must be a JSON object with a 'type' field.",
            details={"received": type(data).__name__},
        )
    kind = data.get("type")
    if kind is None:
        raise FrameValidationError(
            "The message has no 'type' field.",
            details={"errors": [{"field": "type", "message": "Field required"}]},
        )
    frame_type = FRAME_TYPES.get(kind) if isinstance(kind, str) else None
    if frame_type is None:
        raise UnknownMessageTypeError(
            f"Unknown message type {kind!r}.",
            details={"type": kind, "known_types": sorted(FRAME_TYPES)},
        )
    try:
        return frame_type.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        raise FrameValidationError(
            f"The {kind!r} message is not valid.", details={"type": kind, "errors": errors}
        ) from exc


# --- server → clients --------------------------------------------------------------------


class Event(BaseModel):
    def payload(self) -> dict[str, Any]:
        """The JSON-ready dict sent to clients."""
        return self.model_dump(mode="json")


class ConnectedEvent(Event):
    type: Literal["connected"] = "connected"
    session_id: int
    connection_id: str
    timestamp: datetime = Field(default_factory=now)


class TypingUpdateEvent(Event):
    type: Literal["typing_update"] = "typing_update"
    session_id: int
    user_id: str
    is_typing: bool
    timestamp: datetime = Field(default_factory=now)


class MessageEvent(Event):
    """A stored message (a question as soon as it is asked) shown to every client."""

    type: Literal["message"] = "message"
    session_id: int
    message: ChatMessagePublic


class StatusEvent(Event):
    type: Literal["status"] = "status"
    session_id: int
    reply_to: int
    status: Literal["retrieving", "generating"]
    model: str | None = None
    timestamp: datetime = Field(default_factory=now)


class ModelFallbackEvent(ModelFallback, Event):
    """Sent before an answer's chunks when another model than the one asked for answers it."""

    type: Literal["model_fallback"] = "model_fallback"
    session_id: int
    reply_to: int


class ChunkEvent(Event):
    type: Literal["chunk"] = "chunk"
    session_id: int
    reply_to: int
    content: str


class QuotePublic(BaseModel):
    """A sentence of a source, verbatim, that the answer leads with (``> … [n]`` in it)."""

    text: str
    source: int  # its marker [n]: sources[n - 1]
    filename: str
    page: int
    score: float


class CompleteEvent(Event):
    type: Literal["complete"] = "complete"
    session_id: int
    reply_to: int
    message_id: int
    content: str
    sources: list[Source]
    model: str | None
    message: ChatMessagePublic
    model_fallback: ModelFallback | None = None
    mode: AnswerMode = "auto"
    # "high": a passage answers it well; "low": the closest passage is weak; "none": nothing
    # relevant was found; None: no documents were searched (search_mode "none").
    confidence: Confidence | None = None
    confidence_score: float | None = None
    quotes: list[QuotePublic] = Field(default_factory=list)
    # Citation markers the model wrote that name no source: removed from the content.
    invalid_citations: list[int] = Field(default_factory=list)


class SessionDeletedEvent(Event):
    type: Literal["session_deleted"] = "session_deleted"
    session_id: int
    timestamp: datetime = Field(default_factory=now)


class PingEvent(Event):
    type: Literal["ping"] = "ping"
    timestamp: datetime = Field(default_factory=now)


class PongEvent(Event):
    type: Literal["pong"] = "pong"
    timestamp: datetime = Field(default_factory=now)


AnswerEvent = MessageEvent | ModelFallbackEvent | StatusEvent | ChunkEvent | CompleteEvent


def error_event(exc: AppError, **context: Any) -> dict[str, Any]:
    """The WebSocket/SSE ``error`` message: the envelope's ``ErrorDetail`` shape."""
    return {"type": "error", "error": ErrorDetail.of(exc).model_dump(mode="json"), **context}
