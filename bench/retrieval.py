"""Retrieval quality over the shipped question set: was the page holding the answer found?

Every pipeline reports recall@5 (``recall_at_k``). docchat's in-process pipeline also reports,
for each retrieval mode (dense, keyword, hybrid) and each language, recall@1/@5/@10, MRR@10,
nDCG@10 and the query latency (``evaluate``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import percentile

QUESTIONS = Path(__file__).resolve().parent / "questions.json"
K = 5
DEPTH = 10
# The language of a question, unless it says: the language of its answer's document.
FILE_LANGUAGES = {"GeoTopo-komprimiert.pdf": "de", "habibi.pdf": "ar"}

# What a search returns for recall: (file name, 1-based page) of each result, best first.
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
    language: str = "en"
    # "keyword": the answer turns on an exact identifier, option, number or message.
    kind: str = "general"
    # Strings from the answer page's text; an answer holding any of them holds the fact.
    key_facts: tuple[str, ...] = ()

    def answered_by(self, file: str, page: int) -> bool:
        return any(a.file == file and page in a.pages for a in self.answers)

    def files(self) -> set[str]:
        return {a.file for a in self.answers}


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    questions = []
    for item in raw["questions"]:
        answers = tuple(
            Answer(file=a["file"], pages=frozenset(int(p) for p in a["pages"]))
            for a in item["answers"]
        )
        language = item.get("language") or FILE_LANGUAGES.get(answers[0].file, "en")
        questions.append(
            Question(
                id=item["id"],
                question=item["question"],
                answers=answers,
                language=language,
                kind=item.get("kind", "general"),
                key_facts=tuple(item.get("key_facts", ())),
            )
        )
    return questions


def applicable(questions: Sequence[Question], indexed_files: Collection[str]) -> list[Question]:
    """The questions whose answer lies in a file that was actually indexed."""
    indexed = set(indexed_files)
    return [q for q in questions if q.files() & indexed]


def first_relevant_rank(question: Question, results: Sequence[tuple[str, int]]) -> int | None:
    for rank, (file, page) in enumerate(results, 1):
        if question.answered_by(file, page):
            return rank
    return None


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
        if first_relevant_rank(question, results) is not None:
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


def metrics(ranks: Sequence[int | None], latencies_ms: Sequence[float]) -> dict[str, Any]:
    """Rank metrics of one group of questions, from the rank of each one's first result on
    an answer page (None: not in the top 10). One relevant page per question, so nDCG@10 is
    1 / log2(1 + rank) (the ideal list has it first)."""
    n = len(ranks)

    def recall(k: int) -> float | None:
        return sum(1 for r in ranks if r is not None and r <= k) / n if n else None

    return {
        "questions": n,
        "recall@1": recall(1),
        "recall@5": recall(5),
        "recall@10": recall(10),
        "mrr@10": sum(1 / r for r in ranks if r is not None and r <= DEPTH) / n if n else None,
        "ndcg@10": (
            sum(1 / math.log2(1 + r) for r in ranks if r is not None and r <= DEPTH) / n
            if n
            else None
        ),
        "query_ms_p50": percentile(latencies_ms, 50),
        "query_ms_p99": percentile(latencies_ms, 99),
    }


def evaluate(questions: Sequence[Question], searches: dict[str, Search]) -> dict[str, Any]:
    """For each named search (a retrieval mode): metrics overall, per language, and over the
    keyword-heavy questions, plus the ids each mode missed at 5."""
    result: dict[str, Any] = {}
    for mode, search in searches.items():
        for question in questions:  # untimed warm-up, as in recall_at_k
            search(question.question)
        ranks: dict[str, int | None] = {}
        latencies: dict[str, float] = {}
        for question in questions:
            started = time.perf_counter()
            found = list(search(question.question))[:DEPTH]
            latencies[question.id] = (time.perf_counter() - started) * 1000
            ranks[question.id] = first_relevant_rank(question, found)
        groups: dict[str, list[Question]] = {"all": list(questions)}
        for question in questions:
            groups.setdefault(question.language, []).append(question)
            if question.kind == "keyword":
                groups.setdefault("keyword-heavy", []).append(question)
        result[mode] = {
            "groups": {
                name: metrics([ranks[q.id] for q in group], [latencies[q.id] for q in group])
                for name, group in groups.items()
            },
            "missed@5": [q.id for q in questions if (ranks[q.id] or DEPTH + 1) > K],
        }
    return result
