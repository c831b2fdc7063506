"""Retrieval over the non-PDF documents of ../shared/formats, per language (ja, ko, es, de,
en), for each retrieval mode: part of the retrieval section, pipeline (b).

The files the question set (bench/questions_formats.json) names are ingested with docchat's
own extraction (OCR of the images included), chunking, embedding and store, into an index of
their own: the corpus run's numbers stay what they were, and these documents are not mixed
with the corpus PDFs. Only recall is judged here; no throughput is reported (the formats
section measures that).

OCR reads with the default DOCCHAT_OCR_LANGUAGES plus Korean (``kor``) where its data are
installed (`make bench` installs it): english-and-korean.png carries a Korean paragraph,
and Korean is not in the default (each language costs every page time).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.inprocess import run_inprocess
from bench.retrieval import Question, load_questions
from core.ingestion.extraction import ocr
from core.search.embeddings import Embedder
from core.settings import Settings

QUESTIONS_FORMATS = Path(__file__).resolve().parent / "questions_formats.json"
EXTRA_OCR_LANGUAGES = ("kor",)


def question_files(folder: Path, questions: Sequence[Question]) -> list[Path]:
    """The files of ``folder`` that the questions' answers name, in a stable order."""
    named = {answer.file for question in questions for answer in question.answers}
    return sorted(folder / name for name in named if (folder / name).is_file())


def bench_ocr_languages(default: str) -> str:
    have = ocr.installed_languages()
    extra = [name for name in EXTRA_OCR_LANGUAGES if name in have and name not in default]
    return "+".join([default, *extra])


def run_formats_retrieval(
    folder: Path,
    workdir: Path,
    *,
    questions: Sequence[Question] | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    asked = list(questions) if questions is not None else load_questions(QUESTIONS_FORMATS)
    files = question_files(folder, asked)
    if not files:
        return {"status": f"none of the question set's files is in {folder}"}
    workdir.mkdir(parents=True, exist_ok=True)
    languages = bench_ocr_languages(Settings.model_fields["ocr_languages"].default)
    settings = Settings(data_dir=workdir, ocr_languages=languages)
    result = run_inprocess(
        files, workdir, questions=asked, settings=settings, embedder=embedder, scale_chunks=0
    )
    return {
        "status": "ok",
        "formats_dir": str(folder),
        "ocr_languages": languages,
        "documents": result["documents"],
        "chunks": result["chunks"],
        **{key: result[key] for key in ("retrieval", "retrieval_modes") if key in result},
    }
