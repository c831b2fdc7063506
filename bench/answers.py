"""Answers: does the answer hold the question's key fact, cite the right page, and how fast?

The corpus is indexed with docchat's own code (as in (b)); then every question that has
``key_facts`` is asked through the real ``AnswerService`` (``prepare`` then ``run``: retrieval,
quotes, the model, the filter, storing the answer), once per answer mode and per available
model, each in a fresh chat session so no answer sees another in its history.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bench.inprocess import OWNER, ingest_file
from bench.retrieval import Question, applicable
from bench.stats import percentile
from core.chat import store
from core.chat.answers import AnswerService
from core.chat.protocol import ChunkEvent, CompleteEvent
from core.errors import AppError
from core.ingestion.chunking import TokenChunker
from core.ingestion.offload import EmbedderConfig
from core.llm import ChatModel, ModelRegistry
from core.runtime import open_resources
from core.settings import Settings

MODES = ("auto", "extractive", "generative")
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def has_key_fact(content: str, facts: Sequence[str]) -> bool:
    text = _flat(content)
    return any(_flat(fact) in text for fact in facts)


def cited(content: str) -> set[int]:
    return {int(n) for group in _MARKER.findall(content) for n in group.split(",")}


def repeated_line(content: str) -> bool:
    """Whether any non-empty line (or sentence) of the answer appears twice."""
    units = [
        _flat(unit)
        for line in content.splitlines()
        for unit in re.split(r"(?<=[.!?:])\s+", line)
        if len(_flat(unit)) > 3
    ]
    return len(units) != len(set(units))


def run_answers(
    files: Sequence[Path],
    workdir: Path,
    *,
    questions: Sequence[Question],
    modes: Sequence[str] = MODES,
) -> dict[str, Any]:
    return asyncio.run(_run(files, workdir, questions, modes))


async def _run(
    files: Sequence[Path], workdir: Path, questions: Sequence[Question], wanted: Sequence[str]
) -> dict[str, Any]:
    settings = Settings(data_dir=workdir)
    embedder = EmbedderConfig.from_settings(settings).load()
    resources = open_resources(settings, embedder=embedder)
    chunker = TokenChunker(
        embedder.tokenizer,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    resources.vectors.ensure_collection()
    stages: dict[str, float] = defaultdict(float)
    rows = [
        ingest_file(path, settings, chunker, embedder, resources.vectors, stages) for path in files
    ]
    indexed = {row["file"] for row in rows if row["status"] == "completed"}
    asked = [q for q in applicable(questions, indexed) if q.key_facts]

    models = ModelRegistry.from_settings(settings)
    service = AnswerService(resources, models)
    engine = resources.engine
    # Before modes existed, prepare() took none: the bench then measures the one pipeline.
    has_modes = "mode" in inspect.signature(service.prepare).parameters
    modes = [m for m in wanted if m in MODES] if has_modes else ["default"]
    runs: list[dict[str, Any]] = []
    try:
        for model in await _available(models):
            load = getattr(model, "load", None)
            cold_started = time.perf_counter()
            if load is not None:
                await load()
            cold_s = time.perf_counter() - cold_started
            await _ask(service, engine, asked[0], model.name, modes[0])  # warm-up, not counted
            for mode in modes:
                answers = [await _ask(service, engine, q, model.name, mode) for q in asked]
                runs.append(_summary(model, mode, answers, cold_s))
    finally:
        await models.aclose()
        resources.close()
    return {"questions": len(asked), "files": sorted(indexed), "runs": runs}


async def _available(models: ModelRegistry) -> list[ChatModel]:
    found = []
    for name in models.names:
        model = models.get(name)
        if await model.available():
            found.append(model)
    return found


async def _ask(
    service: AnswerService, engine: Engine, question: Question, model: str, mode: str
) -> dict[str, Any]:
    session = await asyncio.to_thread(store.create_session, engine, owner=OWNER, title=question.id)
    assert session.id is not None
    # Any: before modes existed, prepare() took no "mode" (see MODES above).
    extra: dict[str, Any] = {} if mode == "default" else {"mode": mode}
    started = time.perf_counter()
    prepared = await service.prepare(
        session_id=session.id, owner=OWNER, question=question.question, model=model, **extra
    )
    first_chunk_s: float | None = None
    complete: CompleteEvent | None = None
    try:
        async for event in service.run(prepared):
            if isinstance(event, ChunkEvent) and first_chunk_s is None:
                first_chunk_s = time.perf_counter() - started
            elif isinstance(event, CompleteEvent):
                complete = event
    except AppError as exc:  # e.g. a model stalled past the token timeout: a failed answer
        return _failed(question, exc, first_chunk_s, time.perf_counter() - started)
    complete_s = time.perf_counter() - started
    assert complete is not None
    pages = [(source.filename, source.page) for source in complete.sources]
    markers = cited(complete.content)
    return {
        "id": question.id,
        "content": complete.content,
        "key_fact": has_key_fact(complete.content, question.key_facts),
        "cites_right_page": any(
            question.answered_by(*pages[n - 1]) for n in markers if 1 <= n <= len(pages)
        ),
        "sources_hold_page": any(question.answered_by(*page) for page in pages),
        "repeated_line": repeated_line(complete.content),
        "first_chunk_s": first_chunk_s,
        "complete_s": complete_s,
        "confidence": getattr(complete, "confidence", None),
        "model_called": complete.model is not None,
    }


def _failed(
    question: Question, exc: AppError, first_chunk_s: float | None, complete_s: float
) -> dict[str, Any]:
    return {
        "id": question.id,
        "content": "",
        "error": exc.error_code,
        "key_fact": False,
        "cites_right_page": False,
        "sources_hold_page": False,
        "repeated_line": False,
        "first_chunk_s": first_chunk_s,
        "complete_s": complete_s,
        "confidence": None,
        "model_called": True,
    }


def _summary(
    model: ChatModel, mode: str, answers: list[dict[str, Any]], cold_s: float
) -> dict[str, Any]:
    n = len(answers)
    first = [a["first_chunk_s"] for a in answers if a["first_chunk_s"] is not None]
    done = [a["complete_s"] for a in answers]
    return {
        "model": model.name,
        "backend": model.backend,
        "mode": mode,
        "answers": n,
        "key_fact": sum(a["key_fact"] for a in answers) / n if n else None,
        "cites_right_page": sum(a["cites_right_page"] for a in answers) / n if n else None,
        "sources_hold_page": sum(a["sources_hold_page"] for a in answers) / n if n else None,
        "repeated_line": sum(a["repeated_line"] for a in answers),
        "first_chunk_p50_s": percentile(first, 50),
        "first_chunk_p90_s": percentile(first, 90),
        "first_chunk_max_s": max(first, default=None),
        "complete_p50_s": percentile(done, 50),
        "complete_p90_s": percentile(done, 90),
        "confidence": dict(Counter(str(a["confidence"]) for a in answers)),
        "model_load_s": cold_s,
        "missed_key_fact": [a["id"] for a in answers if not a["key_fact"]],
        "failed": [a["id"] for a in answers if a.get("error")],
        "details": answers,
    }


def _flat(text: str) -> str:
    return " ".join(text.split()).casefold()
