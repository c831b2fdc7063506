"""The prompt: keep the model to the retrieved context, number the sources, admit gaps."""

from __future__ import annotations

from collections.abc import Sequence

from core.chat.quotes import Quote
from core.chat.tables import ChatMessage, MessageRole, Source
from core.llm import ChatTurn
from core.search.vectorstore import SearchHit

# Said without asking the model when retrieval finds nothing relevant: nothing to invent from.
NO_RELEVANT_SOURCES = (
    "I could not find anything about this in your documents, so I cannot answer it from them."
)
NOT_IN_SOURCES = "The documents do not say."

DOCUMENTS_SYSTEM = (
    "You are docchat. You answer questions using only the numbered sources the user gives "
    "you. Cite the sources you use by number, like [1]. If the sources do not contain the "
    f'answer, reply exactly: "{NOT_IN_SOURCES}" Never make up facts.'
)
PLAIN_SYSTEM = (
    "You are docchat, a helpful assistant. No documents were searched for this question; "
    "answer briefly from general knowledge and say when you are not sure."
)

SNIPPET_CHARS = 300
SOURCE_CHARS = 1500  # chunks are at most ~200 tokens; this only guards odd ones
HISTORY_CHARS = 600  # earlier turns are context, not the point: keep the prompt small


def source_of(hit: SearchHit) -> Source:
    return Source(
        document_id=hit.document_id,
        filename=hit.filename,
        page=hit.page,
        chunk_index=hit.chunk_index,
        snippet=_clip(hit.text, SNIPPET_CHARS),
        # A source's score stays what it always was, the cosine similarity: a fused (RRF)
        # score is a rank, not a measure of how close the chunk is.
        score=round(hit.dense_score if hit.dense_score is not None else hit.score, 4),
        label=hit.label or f"page {hit.page}",
    )


def documents_turns(
    question: str, hits: Sequence[SearchHit], history: Sequence[ChatMessage] = ()
) -> list[ChatTurn]:
    sources = "\n\n".join(
        f"[{number}] {hit.filename}, {hit.label or f'page {hit.page}'}:\n"
        f"{_clip(hit.passage, SOURCE_CHARS)}"
        for number, hit in enumerate(hits, start=1)
    )
    return [
        ChatTurn("system", DOCUMENTS_SYSTEM),
        *_history_turns(history),
        ChatTurn("user", f"Sources:\n{sources}\n\nQuestion: {question}"),
    ]


def plain_turns(question: str, history: Sequence[ChatMessage] = ()) -> list[ChatTurn]:
    return [ChatTurn("system", PLAIN_SYSTEM), *_history_turns(history), ChatTurn("user", question)]


def _history_turns(history: Sequence[ChatMessage]) -> list[ChatTurn]:
    return [
        ChatTurn(
            "user" if message.role == MessageRole.USER else "assistant",
            _clip(message.content, HISTORY_CHARS),
        )
        for message in history
        if message.content.strip()
    ]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


FRAMING_SYSTEM = (
    "You are docchat. Answer the question in one short sentence, using only the numbered "
    "passages the user gives you, and cite the passage you use, like [1]."
)


def framing_turns(question: str, quotes: Sequence[Quote]) -> list[ChatTurn]:
    """The embedded model's prompt: only the quotes already shown, so it is short and fast."""
    passages = "\n".join(f"[{quote.source}] {quote.text}" for quote in quotes)
    return [
        ChatTurn("system", FRAMING_SYSTEM),
        ChatTurn("user", f"Passages:\n{passages}\n\nQuestion: {question}"),
    ]
