"""The retrieval section's run over ../shared/formats: its question set names real units of
real files in every language it claims, and the in-process pipeline indexes non-PDF files
and judges their questions per language (text files here: no OCR, so it stays fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import DEFAULT_FORMATS
from bench.retrieval import Answer, Question, load_questions
from bench.retrieval_formats import (
    QUESTIONS_FORMATS,
    bench_ocr_languages,
    question_files,
    run_formats_retrieval,
)
from core.ingestion.extraction import ExtractionLimits, inspect_document, ocr
from core.search.embeddings import Embedder

pytestmark = pytest.mark.skipif(not DEFAULT_FORMATS.is_dir(), reason=f"no {DEFAULT_FORMATS}")


def test_formats_questions_point_at_real_units() -> None:
    questions = load_questions(QUESTIONS_FORMATS)
    assert 20 <= len(questions) <= 100
    assert len({q.id for q in questions}) == len(questions)
    assert {"ja", "ko", "es", "de", "en"} <= {q.language for q in questions}
    limits = ExtractionLimits()
    for question in questions:
        for answer in question.answers:
            path = DEFAULT_FORMATS / answer.file
            assert path.is_file() and path.suffix != ".pdf", question.id
            # The unit count, without OCR: images count their frames.
            count = inspect_document(path, limits).unit_count
            assert answer.pages and max(answer.pages) <= count, question.id
    # Every named file is ingested, each once.
    files = question_files(DEFAULT_FORMATS, questions)
    assert len(files) == len({a.file for q in questions for a in q.answers})


def test_korean_is_added_to_the_bench_ocr_only_where_installed() -> None:
    languages = bench_ocr_languages("eng+jpn")
    assert languages == ("eng+jpn+kor" if "kor" in ocr.installed_languages() else "eng+jpn")
    assert bench_ocr_languages("eng+kor") == "eng+kor"


def test_non_pdf_documents_are_indexed_and_judged_per_language(
    embedder: Embedder, tmp_path: Path
) -> None:
    spanish = Question(
        id="es",
        question="¿Cómo nacen todos los seres humanos?",
        answers=(Answer(file="eng_spa_mult.txt", pages=frozenset({1})),),
        language="es",
    )
    german = Question(
        id="de",
        question="Welches Wort steht über den Umlauten äöüß?",
        answers=(Answer(file="umlauts-non-utf8.md", pages=frozenset({1})),),
        language="de",
    )
    absent = Question(
        id="absent",
        question="anything",
        answers=(Answer(file="no-such-file.txt", pages=frozenset({1})),),
    )
    result = run_formats_retrieval(
        DEFAULT_FORMATS, tmp_path, questions=[spanish, german, absent], embedder=embedder
    )

    assert result["status"] == "ok"
    assert [(d["file"], d["status"]) for d in result["documents"]] == [
        ("eng_spa_mult.txt", "completed"),
        ("umlauts-non-utf8.md", "completed"),
    ]
    assert result["chunks"] >= 2
    assert result["retrieval"]["questions"] == 2  # the absent file's question is not asked
    for found in result["retrieval_modes"].values():
        assert set(found["groups"]) == {"all", "es", "de"}
    keyword = result["retrieval_modes"]["keyword"]
    assert keyword["groups"]["de"]["recall@1"] == 1.0  # "umlauten äöüß" only in one file
    assert "retrieval_scale" not in result  # the corpus run measures latency at scale


def test_a_folder_without_the_files_is_reported(tmp_path: Path) -> None:
    assert run_formats_retrieval(tmp_path, tmp_path / "work")["status"].startswith("none of")


def test_the_report_prints_the_formats_table_and_judges_its_languages() -> None:
    from rich.console import Console

    from bench.report import print_report, retrieval_targets
    from bench.retrieval import evaluate

    page = (Answer(file="jpn-vert.jpeg", pages=frozenset({1})),)
    ja = Question(id="ja", question="縦書き", answers=page, language="ja")
    ko = Question(id="ko", question="그룹", answers=page, language="ko")
    hit, miss = [("jpn-vert.jpeg", 1)], [("other.txt", 1)]
    modes = evaluate(
        [ja, ko],
        {
            "hybrid": lambda q: hit if q == "縦書き" else miss,  # behind dense on ko
            "dense": lambda q: hit,
            "keyword": lambda q: hit,
        },
    )
    formats = {
        "status": "ok",
        "documents": [{"file": "jpn-vert.jpeg"}],
        "ocr_languages": "eng+jpn+jpn_vert",
        "retrieval_modes": modes,
    }
    b = {"retrieval_modes": evaluate([ja], {m: lambda q: hit for m in modes}), "chunks": 1}
    b["retrieval_formats"] = formats
    verdicts = {t["target"]: t for t in retrieval_targets({"b": b})}

    assert verdicts["no language where hybrid recall@5 is below dense"]["verdict"] == "met"
    behind = verdicts["no language of ../shared/formats where hybrid recall@5 is below dense"]
    assert (behind["verdict"], behind["measured"]) == ("not met", "ko")
    # Judged even where no corpus question could be asked (a corpus of other documents).
    alone = retrieval_targets({"b": {"retrieval_formats": formats}})
    assert [(t["verdict"], t["measured"]) for t in alone] == [("not met", "ko")]
    console = Console(record=True, width=200)
    print_report(
        {
            "meta": {
                "started_at": "now",
                "corpus": "c",
                "files": 1,
                "quick": True,
                "cpus": 2,
                "torch": "t",
            },
            "retrieval": {"b": b},
            "targets": [],
        },
        console,
    )
    printed = console.export_text()
    assert "bench/questions_formats.json over ../shared/formats" in printed
    assert "OCR eng+jpn+jpn_vert" in printed
