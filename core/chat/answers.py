"""Answering a question: store it, retrieve, quote, stream the model, store the answer.

``prepare`` checks everything that can be checked before anything is stored (the session, the
model, the documents to search), so a refused question leaves no trace. ``run`` then yields the
events every client of the session sees, and raises an ``AppError`` if the answer fails midway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal

from core.chat import modes, prompt, store
from core.chat.compose import AnswerComposer, confidence_of
from core.chat.modes import AnswerMode
from core.chat.pool import POOL_BY_WORDS, read_whole, shown_sources
from core.chat.protocol import (
    AnswerEvent,
    ChunkEvent,
    CompleteEvent,
    MessageEvent,
    ModelFallbackEvent,
    QuotePublic,
    SearchMode,
    StatusEvent,
)
from core.chat.quotes import SENTENCE_BATCH, SENTENCE_TOKENS, Quote, best_quotes
from core.chat.tables import ChatMessagePublic, MessageRole, ModelFallback, Source
from core.errors import InvalidInputError, NotFoundError
from core.ingestion import records
from core.llm import ChatModel, ChatTurn, GenerationError, ModelNotAvailableError, ModelRegistry
from core.llm.errors import UnknownModelError
from core.llm.pacing import paced
from core.runtime import Resources
from core.search import Retrieval
from core.search.retrieval import retrieve
from core.search.vectorstore import SearchHit


class ChatSessionNotFoundError(NotFoundError):
    error_code = "session_not_found"


def session_not_found(session_id: int) -> ChatSessionNotFoundError:
    """The one 404 of a missing session (or another principal's: ids cannot be probed)."""
    return ChatSessionNotFoundError(
        f"No chat session {session_id}.", details={"session_id": session_id}
    )


class DocumentNotFoundError(NotFoundError):
    error_code = "document_not_found"


@dataclass(frozen=True)
class Question:
    """A question that passed every check and can be answered."""

    session_id: int
    owner: str
    text: str
    model: ChatModel
    use_documents: bool
    document_ids: list[str] | None  # None: all of the owner's documents
    user_id: str | None
    fallback: ModelFallback | None = None  # the model asked for was not the one that answers
    retrieval: Retrieval | None = None  # None: the retrieval_mode setting
    mode: AnswerMode = "auto"


class AnswerService:
    def __init__(self, resources: Resources, models: ModelRegistry) -> None:
        self._resources = resources
        self._settings = resources.settings
        self.models = models

    async def require_session(self, session_id: int, *, owner: str) -> None:
        found = await asyncio.to_thread(
            store.get_session, self._resources.engine, session_id, owner=owner
        )
        if found is None:
            raise session_not_found(session_id)

    async def prepare(
        self,
        *,
        session_id: int,
        owner: str,
        question: str,
        model: str | None = None,
        search_mode: SearchMode = "all",
        user_id: str | None = None,
        retrieval: Retrieval | None = None,
        mode: AnswerMode = "auto",
    ) -> Question:
        await self.require_session(session_id, owner=owner)
        if mode == "extractive" and search_mode == "none":
            raise InvalidInputError(
                "An extractive answer quotes the documents; with search_mode 'none' there is "
                "nothing to quote. Ask with mode 'auto' or 'generative', or search documents.",
                error_code="extractive_needs_documents",
                details={"mode": mode, "search_mode": search_mode},
            )
        limit = self._settings.chat_max_question_chars
        if len(question) > limit:
            raise InvalidInputError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}.",
                error_code="question_too_long",
                details={"length": len(question), "max_chars": limit},
            )
        chosen, fallback = await self._choose_model(model)
        document_ids = None
        if isinstance(search_mode, list):
            document_ids = list(dict.fromkeys(search_mode))
            await self._require_documents(document_ids, owner=owner)
        return Question(
            session_id=session_id,
            owner=owner,
            text=question,
            model=chosen,
            use_documents=search_mode != "none",
            document_ids=document_ids,
            user_id=user_id,
            fallback=fallback,
            retrieval=retrieval,
            mode=mode,
        )

    async def _choose_model(self, name: str | None) -> tuple[ChatModel, ModelFallback | None]:
        """The model asked for; or, when it is not configured or not available and the
        fallback setting allows, the default model with the reason."""
        try:
            chosen = self.models.get(name)
        except UnknownModelError as exc:
            if name is None or self._settings.chat_model_fallback != "default":
                raise
            return await self._fall_back(name, "not_configured", exc.message)
        if await chosen.available():
            return chosen, None
        refused = ModelNotAvailableError(
            f"The model {chosen.name!r} is not available right now.",
            details={"model": chosen.name},
        )
        if (
            name is None
            or chosen.name == self.models.default_model
            or self._settings.chat_model_fallback != "default"
        ):
            raise refused
        return await self._fall_back(name, "not_available", refused.message)

    async def _fall_back(
        self, name: str, reason: Literal["not_configured", "not_available"], detail: str
    ) -> tuple[ChatModel, ModelFallback]:
        default = self.models.get()
        if not await default.available():
            raise ModelNotAvailableError(
                f"Neither the model {name!r} nor the default {default.name!r} is available.",
                details={"model": name, "default_model": default.name, "reason": reason},
            )
        fallback = ModelFallback(
            requested_model=name, model=default.name, reason=reason, detail=detail
        )
        return default, fallback

    async def run(self, question: Question) -> AsyncGenerator[AnswerEvent, None]:
        engine = self._resources.engine
        session_id = question.session_id
        history = await asyncio.to_thread(
            store.list_messages, engine, session_id, limit=self._settings.chat_history_messages
        )
        asked = await asyncio.to_thread(
            store.add_message,
            engine,
            session_id=session_id,
            role=MessageRole.USER,
            content=question.text,
            user_id=question.user_id,
        )
        asked_public = ChatMessagePublic.of(asked)
        reply_to = asked_public.id
        yield MessageEvent(session_id=session_id, message=asked_public)
        fallback = question.fallback
        if fallback is not None:  # said before anything of the answer
            yield ModelFallbackEvent(session_id=session_id, reply_to=reply_to, **dict(fallback))

        sources: list[Source] = []
        hits: list[SearchHit] = []
        quotes: list[Quote] = []
        if question.use_documents:
            yield StatusEvent(session_id=session_id, reply_to=reply_to, status="retrieving")
            hits, quotes = await self._quoted_hits(question)
            sources = [prompt.source_of(hit) for hit in hits]
        plan = modes.plan(
            question.mode,
            question.model,
            use_documents=question.use_documents,
            found=bool(quotes),  # nothing relevant: say so rather than let the model guess
            confident=confidence_of(quotes, searched=True)[0] == "high",
        )
        failed_over: list[ModelFallback] = []  # the asked model failed before its first piece
        composer = AnswerComposer(
            question=question.text,
            plan=plan,
            hits=hits,
            quotes=quotes,
            history=history,
            generate=lambda turns, max_tokens: self._generate_or_fall_back(
                question, turns, max_tokens=max_tokens, failed_over=failed_over
            ),
            max_tokens=self._settings.llm_max_tokens,
        )
        model_name: str | None = None
        if plan.calls_model:
            model_name = question.model.name
            yield StatusEvent(
                session_id=session_id, reply_to=reply_to, status="generating", model=model_name
            )
        pieces: list[str] = []
        async for piece in composer.pieces():
            if failed_over and fallback is not failed_over[-1]:
                fallback = failed_over[-1]
                model_name = fallback.model
                yield ModelFallbackEvent(session_id=session_id, reply_to=reply_to, **dict(fallback))
                yield StatusEvent(
                    session_id=session_id, reply_to=reply_to, status="generating", model=model_name
                )
            pieces.append(piece)
            yield ChunkEvent(session_id=session_id, reply_to=reply_to, content=piece)
        content = "".join(pieces).strip()
        outcome = composer.outcome

        answer = await asyncio.to_thread(
            store.add_message,
            engine,
            session_id=session_id,
            role=MessageRole.ASSISTANT,
            content=content,
            model=model_name,
            sources=[source.model_dump(mode="json") for source in sources],
            model_fallback=fallback.model_dump(mode="json") if fallback else None,
        )
        answer_public = ChatMessagePublic.of(answer)
        yield CompleteEvent(
            session_id=session_id,
            reply_to=reply_to,
            message_id=answer_public.id,
            content=content,
            sources=sources,
            model=model_name,
            message=answer_public,
            model_fallback=fallback,
            mode=question.mode,
            confidence=outcome.confidence,
            confidence_score=outcome.confidence_score,
            quotes=[
                QuotePublic(
                    text=quote.text,
                    source=quote.source,
                    filename=quote.filename,
                    page=quote.page,
                    score=quote.score,
                )
                for quote in outcome.quotes
            ],
            invalid_citations=sorted(set(outcome.report.invalid_citations)),
        )

    async def _quoted_hits(self, question: Question) -> tuple[list[SearchHit], list[Quote]]:
        """The sources to show and the quotes from them (core.chat.pool)."""
        settings = self._settings
        found = await retrieve(
            self._resources,
            question.text,
            k=max(settings.retrieval_k, settings.answer_pool_k),
            owner=question.owner,
            document_ids=question.document_ids,
            min_score=settings.retrieval_min_score,
            retrieval=question.retrieval,
            neighbours=settings.retrieval_neighbours,
            context_chars=prompt.SOURCE_CHARS,
            also_by_words=POOL_BY_WORDS,
        )
        if not found:
            return [], []
        read = await asyncio.to_thread(
            functools.partial(read_whole, self._resources.vectors, owner=question.owner), found
        )
        embedder = self._resources.embedder()
        embed = functools.partial(
            embedder.embed, batch_size=SENTENCE_BATCH, max_tokens=SENTENCE_TOKENS
        )
        quotes = await asyncio.to_thread(
            functools.partial(best_quotes, shown=settings.retrieval_k),
            question.text,
            read,
            embed,
        )
        return shown_sources(found, quotes, shown=settings.retrieval_k)

    async def _generate_or_fall_back(
        self,
        question: Question,
        turns: list[ChatTurn],
        *,
        max_tokens: int,
        failed_over: list[ModelFallback],
    ) -> AsyncGenerator[str, None]:
        """The model's pieces; when a model asked for by name fails before its first piece
        (and the setting allows), the default's, with the ``ModelFallback`` that says so put in
        ``failed_over`` before the default's first piece."""
        started = False
        try:
            async for piece in self._generate(question.model, turns, max_tokens=max_tokens):
                started = True
                yield piece
            return
        except (GenerationError, ModelNotAvailableError) as exc:
            default = self.models.get()
            if (
                started
                or question.fallback is not None  # the default is answering already
                or question.model.name == default.name
                or self._settings.chat_model_fallback != "default"
            ):
                raise
            failure = exc
        failed_over.append(
            ModelFallback(
                requested_model=question.model.name,
                model=default.name,
                reason="failed",
                detail=failure.message,
            )
        )
        async for piece in self._generate(default, turns, max_tokens=max_tokens):
            yield piece

    async def _generate(
        self, model: ChatModel, turns: list[ChatTurn], *, max_tokens: int
    ) -> AsyncGenerator[str, None]:
        """The model's pieces; a model silent for longer than the token timeout fails."""
        pieces = paced(
            model.stream(turns, max_tokens=max_tokens),
            model=model.name,
            timeout=self._settings.llm_token_timeout_seconds,
        )
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                yield piece

    async def _require_documents(self, document_ids: Sequence[str], *, owner: str) -> None:
        engine = self._resources.engine
        for document_id in document_ids:
            document = await asyncio.to_thread(
                records.get_owned_document, engine, document_id, owner=owner
            )
            if document is None:
                raise DocumentNotFoundError(
                    f"No document {document_id} to search.",
                    details={"document_id": document_id},
                )
