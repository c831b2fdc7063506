"""Chat under ``/chat``: sessions and history, typing indicators, answers over REST, SSE and a
WebSocket per session. ``docs/chat.md`` is the protocol reference."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, WebSocket, status
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from api.deps import (
    MAX_OFFSET,
    AskLimiterDep,
    ChatDep,
    PrincipalDep,
    SocketAuthDep,
    get_principal,
)
from api.envelope import Envelope, error_responses, ok
from core.chat.answers import ChatSessionNotFoundError, Question
from core.chat.client_limits import (
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    TooManyConnectionsError,
)
from core.chat.connections import CLOSE_SESSION_NOT_FOUND
from core.chat.modes import AnswerMode, Confidence
from core.chat.protocol import (
    ConnectedEvent,
    QuestionText,
    QuotePublic,
    SearchMode,
    TypingUpdateEvent,
    UserId,
)
from core.chat.relay import AnswerRelay
from core.chat.service import ChatService
from core.chat.socket_client import SocketClient
from core.chat.tables import ChatMessagePublic, ChatSessionPublic, TypingPublic
from core.errors import AppError
from core.search import Retrieval

log = logging.getLogger("docchat.chat")

router = APIRouter(prefix="/chat", tags=["chat"])


# --- request and response shapes ---------------------------------------------------------


class SessionCreate(BaseModel):
    title: str = Field(default="New chat", min_length=1, max_length=200)


class TypingUpdate(BaseModel):
    user_id: UserId
    is_typing: bool


class AskRequest(BaseModel):
    question: QuestionText
    model: str | None = None
    search_mode: SearchMode = "all"
    user_id: UserId | None = None
    # hybrid, dense or keyword; None: the retrieval_mode setting (hybrid unless changed).
    retrieval: Retrieval | None = None
    mode: AnswerMode = Field(
        default="auto",
        description="extractive: quotes only; generative: the model writes; auto: the best "
        "of both for the model (quotes first on the embedded model)",
    )


class AskResult(BaseModel):
    question: ChatMessagePublic
    answer: ChatMessagePublic
    mode: AnswerMode = "auto"
    confidence: Confidence | None = None
    confidence_score: float | None = None
    quotes: list[QuotePublic] = Field(default_factory=list)
    invalid_citations: list[int] = Field(default_factory=list)


class ModelInfo(BaseModel):
    name: str
    backend: str
    description: str
    available: bool
    default: bool


# --- sessions and history ----------------------------------------------------------------


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ChatSessionPublic],
    summary="Start a chat session",
)
async def create_session(
    chat: ChatDep, owner: PrincipalDep, body: SessionCreate | None = None
) -> Envelope[ChatSessionPublic]:
    title = (body or SessionCreate()).title
    return ok(ChatSessionPublic.of(await chat.sessions.create(owner=owner, title=title)))


@router.get(
    "/sessions", response_model=Envelope[list[ChatSessionPublic]], summary="List chat sessions"
)
async def list_sessions(
    chat: ChatDep,
    owner: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Envelope[list[ChatSessionPublic]]:
    rows = await chat.sessions.list(owner=owner, limit=limit, offset=offset)
    return ok([ChatSessionPublic.of(row) for row in rows], limit=limit, offset=offset)


@router.get(
    "/sessions/{session_id}",
    response_model=Envelope[ChatSessionPublic],
    summary="One chat session",
    responses=error_responses(404),
)
async def get_session(
    session_id: int, chat: ChatDep, owner: PrincipalDep
) -> Envelope[ChatSessionPublic]:
    return ok(ChatSessionPublic.of(await chat.sessions.get(session_id, owner=owner)))


@router.delete(
    "/sessions/{session_id}",
    response_model=Envelope[dict[str, Any]],
    summary="Delete a chat session with its messages; its WebSocket clients are closed",
    responses=error_responses(404),
)
async def delete_session(
    session_id: int, chat: ChatDep, owner: PrincipalDep
) -> Envelope[dict[str, Any]]:
    await chat.sessions.delete(session_id, owner=owner)
    return ok({"session_id": session_id, "deleted": True})


@router.get(
    "/sessions/{session_id}/messages",
    response_model=Envelope[list[ChatMessagePublic]],
    summary="A session's history, oldest first, with the sources of each answer",
    responses=error_responses(404),
)
async def list_messages(
    session_id: int,
    chat: ChatDep,
    owner: PrincipalDep,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="Only the latest")] = None,
) -> Envelope[list[ChatMessagePublic]]:
    rows = await chat.sessions.messages(session_id, owner=owner, limit=limit)
    return ok([ChatMessagePublic.of(row) for row in rows], session_id=session_id)


@router.get(
    "/models",
    response_model=Envelope[list[ModelInfo]],
    summary="The configured chat models and whether each answers now",
    dependencies=[Depends(get_principal)],
)
async def list_models(chat: ChatDep) -> Envelope[list[ModelInfo]]:
    models = await chat.models.list_models()
    return ok([ModelInfo(**model) for model in models])


# --- typing indicators -------------------------------------------------------------------


@router.post(
    "/{session_id}/typing",
    response_model=Envelope[TypingUpdateEvent],
    summary="Say that someone started, is still, or stopped typing (lapses without refresh)",
    responses=error_responses(404),
)
async def post_typing(
    session_id: int, body: TypingUpdate, chat: ChatDep, owner: PrincipalDep
) -> Envelope[TypingUpdateEvent]:
    await chat.answers.require_session(session_id, owner=owner)
    event = await chat.typing.update(
        session_id=session_id, user_id=body.user_id, is_typing=body.is_typing
    )
    return ok(event, ttl_seconds=chat.resources.settings.typing_ttl_seconds)


@router.get(
    "/{session_id}/typing",
    response_model=Envelope[list[TypingPublic]],
    summary="Who is typing in the session now",
    responses=error_responses(404),
)
async def get_typing(
    session_id: int, chat: ChatDep, owner: PrincipalDep
) -> Envelope[list[TypingPublic]]:
    await chat.answers.require_session(session_id, owner=owner)
    return ok(await chat.typing.active(session_id))


# --- answers over REST and SSE -----------------------------------------------------------


@router.post(
    "/{session_id}/ask",
    response_model=Envelope[AskResult],
    summary="Ask a question and get the whole answer (also shown to the session's sockets)",
    responses=error_responses(404, 429, 502, 503),
)
async def ask(
    session_id: int, body: AskRequest, chat: ChatDep, owner: PrincipalDep, limiter: AskLimiterDep
) -> Envelope[AskResult]:
    release = limiter.acquire(owner)
    try:
        question = await _prepare(chat, session_id, owner, body)
        relay = AnswerRelay(chat, question)
        asked: dict[str, Any] | None = None
        complete: dict[str, Any] | None = None
        async for payload in relay.events():
            if payload["type"] == "message":
                asked = payload["message"]
            elif payload["type"] == "complete":
                complete = payload
    finally:
        release()
    if relay.error is not None:
        raise relay.error
    if asked is None or complete is None:  # run() always ends in one or the other
        raise AppError("The answer ended without completing.")
    fallback = {"model_fallback": complete["model_fallback"]} if complete["model_fallback"] else {}
    return ok(
        AskResult(
            question=ChatMessagePublic.model_validate(asked),
            answer=ChatMessagePublic.model_validate(complete["message"]),
            mode=complete["mode"],
            confidence=complete["confidence"],
            confidence_score=complete["confidence_score"],
            quotes=[QuotePublic.model_validate(quote) for quote in complete["quotes"]],
            invalid_citations=complete["invalid_citations"],
        ),
        **fallback,
    )


@router.post(
    "/{session_id}/ask/stream",
    summary="Ask a question; the answer streams as server-sent events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **error_responses(404, 429, 503),
    },
)
async def ask_stream(
    session_id: int, body: AskRequest, chat: ChatDep, owner: PrincipalDep, limiter: AskLimiterDep
) -> EventSourceResponse:
    # Checked before the stream starts, so a refusal is a normal enveloped error response.
    release = limiter.acquire(owner)
    try:
        question = await _prepare(chat, session_id, owner, body)
    except BaseException:
        release()
        raise
    relay = AnswerRelay(chat, question)

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for payload in relay.events():
                yield {"event": payload["type"], "data": json.dumps(payload)}
        finally:
            release()

    # The background task frees the slot too if the stream never started (client gone).
    return EventSourceResponse(events(), ping=15, background=BackgroundTask(release))


async def _prepare(chat: ChatService, session_id: int, owner: str, body: AskRequest) -> Question:
    return await chat.answers.prepare(
        session_id=session_id,
        owner=owner,
        question=body.question,
        model=body.model,
        search_mode=body.search_mode,
        user_id=body.user_id,
        retrieval=body.retrieval,
        mode=body.mode,
    )


# --- the WebSocket -----------------------------------------------------------------------


@router.websocket("/{session_id}/ws")
async def chat_socket(
    websocket: WebSocket, session_id: int, chat: ChatDep, auth: SocketAuthDep
) -> None:
    # Accepted first, so that a refusal reaches the client as a close code and reason
    # (before the handshake completes, a client would only see HTTP 403).
    await websocket.accept(subprotocol=auth.subprotocol)
    if auth.principal is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=auth.error)
        return
    try:
        # Another principal's session is refused exactly like one that does not exist.
        await chat.answers.require_session(session_id, owner=auth.principal)
        connection = await chat.connections.connect(
            websocket,
            session_id,
            greeting=lambda joined: ConnectedEvent(
                session_id=session_id, connection_id=joined.id
            ).payload(),
        )
    except ChatSessionNotFoundError as exc:
        await websocket.close(code=CLOSE_SESSION_NOT_FOUND, reason=exc.message)
        return
    except TooManyConnectionsError as exc:
        await websocket.close(code=CLOSE_TRY_AGAIN_LATER, reason=exc.message)
        return
    client = SocketClient(chat, connection, owner=auth.principal)
    peer_closed = False
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                peer_closed = True
                break
            if not await client.receive(message):
                break
    finally:
        await chat.connections.disconnect(connection, peer_closed=peer_closed)
        if chat.connections.count(session_id) == 0:  # no one left here to show progress to
            await chat.task_watchers.stop_session(session_id)
