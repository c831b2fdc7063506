"""The prompt keeps the model to numbered sources and tells it to admit what they lack."""

from __future__ import annotations

from core.chat import prompt
from core.chat.tables import ChatMessage, MessageRole
from core.search.vectorstore import SearchHit


def hit(page: int, text: str, score: float = 0.5) -> SearchHit:
    return SearchHit("doc1", "report.pdf", page, page * 10, text, score)


def test_sources_are_numbered_and_the_rules_are_stated() -> None:
    history = [
        ChatMessage(session_id=1, role=MessageRole.USER, content="Earlier question"),
        ChatMessage(session_id=1, role=MessageRole.ASSISTANT, content="Earlier answer"),
    ]
    turns = prompt.documents_turns(
        "What grew?", [hit(2, "Sales grew."), hit(5, "Costs fell.")], history
    )
    assert [t.role for t in turns] == ["system", "user", "assistant", "user"]
    system, question = turns[0].content, turns[-1].content
    assert "only the numbered sources" in system and prompt.NOT_IN_SOURCES in system
    assert "[1] report.pdf, page 2:\nSales grew." in question
    assert "[2] report.pdf, page 5:\nCosts fell." in question
    assert question.endswith("Question: What grew?")


def test_sources_and_history_are_clipped() -> None:
    source = prompt.source_of(hit(1, "word " * 500, score=0.123456))
    assert len(source.snippet) <= prompt.SNIPPET_CHARS and source.snippet.endswith("…")
    assert source.score == 0.1235
    long_turn = ChatMessage(session_id=1, role=MessageRole.ASSISTANT, content="x" * 5000)
    turns = prompt.plain_turns("Hi", [long_turn])
    assert len(turns[1].content) == prompt.HISTORY_CHARS
    assert "No documents were searched" in turns[0].content
