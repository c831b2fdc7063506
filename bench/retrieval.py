"""Recall@k over the shipped question set: was the page holding the answer among the top k?"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import percentile

QUESTIONS = Path(__file__).resolve().parent / "questions.json"
K = 5

# What a search returns for recall: (file name, 1-based page) of each of the top k results.
Search = Callable[[str], Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class Answer:
    file: str
    pages: frozenset[int]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[Answer, ...]
    # Strings from the answer page's text; an answer holding any of them holds the fact.
    key_facts: tuple[str, ...] = ()

    def answered_by(self, file: str, page: int) -> bool:
        return any(a.file == file and page in a.pages for a in self.answers)

    def files(self) -> set[str]:
        return {a.file for a in self.answers}


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        Question(
            id=item["id"],
            question=item["question"],
            answers=tuple(
                Answer(file=a["file"], pages=frozenset(int(p) for p in a["pages"]))
                for a in item["answers"]
            ),
            key_facts=tuple(item.get("key_facts", ())),
        )
        for item in raw["questions"]
    ]


def applicable(questions: Sequence[Question], indexed_files: Collection[str]) -> list[Question]:
    """The questions whose answer lies in a file that was actually indexed."""
    indexed = set(indexed_files)
    return [q for q in questions if q.files() & indexed]


def recall_at_k(questions: Sequence[Question], search: Search, *, k: int = K) -> dict[str, Any]:
    # One untimed pass first: torch compiles kernels per input shape on first sight, which a
    # process that has not embedded anything yet would otherwise pay inside the latencies.
    for question in questions:
        search(question.question)
    hits = 0
    misses: list[str] = []
    latencies: list[float] = []
    for question in questions:
        started = time.perf_counter()
        results = list(search(question.question))[:k]
        latencies.append((time.perf_counter() - started) * 1000)
        if any(question.answered_by(file, page) for file, page in results):
            hits += 1
        else:
            misses.append(question.id)
    return {
        "k": k,
        "questions": len(questions),
        "hits": hits,
        "recall": hits / len(questions) if questions else None,
        "misses": misses,
        "query_ms_p50": percentile(latencies, 50),
    }
