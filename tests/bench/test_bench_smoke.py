"""Smoke test of the benchmark: pipeline (b) and recall@5 on real corpus PDFs, fast."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from bench.corpus import unique_copy
from bench.inprocess import run_inprocess
from bench.retrieval import Answer, Question, evaluate, load_questions, recall_at_k
from core.ingestion.extraction import pdf
from core.search.embeddings import Embedder

LOREM = Question(
    id="lorem",
    question="Lorem ipsum dolor sit amet, consetetur sadipscing elitr",
    answers=(Answer(file="minimal-document.pdf", pages=frozenset({1})),),
)


def test_inprocess_pipeline_indexes_a_pdf_and_finds_its_page(
    corpus: Path, embedder: Embedder, tmp_path: Path
) -> None:
    result = run_inprocess(
        [corpus / "minimal-document.pdf"],
        tmp_path,
        questions=[LOREM],
        embedder=embedder,
        scale_chunks=300,
    )

    assert result["pipeline"] == "b"
    assert (result["files"], result["documents_ok"], result["pages"]) == (1, 1, 1)
    assert result["chunks"] >= 1
    assert result["total_s"] > 0
    # Loading (here only the warm-up of the given model) is measured, apart from the work.
    assert result["model_load_s"] > 0
    assert sum(result["stages_s"].values()) <= result["total_s"]
    assert set(result["stages_s"]) == {"extract", "chunk", "embed", "store"}
    assert result["documents"] == [
        {
            "file": "minimal-document.pdf",
            "status": "completed",
            "error_code": None,
            "pages": 1,
            "chunks": result["chunks"],
        }
    ]
    retrieval = result["retrieval"]
    assert (retrieval["k"], retrieval["questions"], retrieval["hits"]) == (5, 1, 1)
    assert retrieval["recall"] == 1.0
    assert retrieval["misses"] == []
    assert retrieval["query_ms_p50"] > 0
    modes = result["retrieval_modes"]
    assert set(modes) == {"hybrid", "dense", "keyword"}
    for found in modes.values():
        assert set(found["groups"]) == {"all", "en"}
        assert found["groups"]["all"]["recall@5"] == 1.0 and found["missed@5"] == []
    scale = result["retrieval_scale"]
    assert scale["status"] == "ok" and scale["chunks"] == 300
    assert all(scale[mode]["search_ms_p99"] > 0 for mode in ("hybrid", "dense", "keyword"))


def test_permanent_faults_are_reported_not_raised(
    corpus: Path, embedder: Embedder, tmp_path: Path
) -> None:
    files = [corpus / "libreoffice-writer-password.pdf", corpus / "imagemagick-images.pdf"]
    result = run_inprocess(files, tmp_path, questions=[LOREM], embedder=embedder)

    outcome = {row["file"]: (row["status"], row["error_code"]) for row in result["documents"]}
    assert outcome == {
        "libreoffice-writer-password.pdf": ("skipped", "encrypted_pdf"),
        "imagemagick-images.pdf": ("skipped", "no_extractable_text"),
    }
    assert (result["documents_ok"], result["pages"], result["chunks"]) == (0, 0, 0)
    assert "retrieval" not in result  # no question can be answered from nothing


def test_recall_counts_wrong_pages_and_files_as_misses() -> None:
    other = Question(
        id="other",
        question="anything",
        answers=(Answer(file="minimal-document.pdf", pages=frozenset({2})),),
    )
    result = recall_at_k([LOREM, other], lambda _: [("other.pdf", 1), ("minimal-document.pdf", 1)])

    assert (result["questions"], result["hits"], result["recall"]) == (2, 1, 0.5)
    assert result["misses"] == ["other"]


def test_rank_metrics_per_mode_language_and_kind() -> None:
    german = Question(
        id="de",
        question="Frage",
        answers=(Answer(file="a.pdf", pages=frozenset({1})),),
        language="de",
        kind="keyword",
    )
    english = Question(id="en", question="question", answers=german.answers)
    missing = Question(id="none", question="nothing", answers=german.answers)
    results = {"Frage": [("a.pdf", 1)], "question": [("b.pdf", 1), ("a.pdf", 1)], "nothing": []}
    found = evaluate([german, english, missing], {"m": lambda q: results[q]})["m"]

    everything = found["groups"]["all"]
    assert everything["questions"] == 3
    assert everything["recall@1"] == 1 / 3 and everything["recall@5"] == 2 / 3
    assert everything["mrr@10"] == (1 + 1 / 2) / 3
    assert everything["ndcg@10"] == (1 + 1 / math.log2(3)) / 3
    assert found["groups"]["de"]["recall@1"] == 1.0
    assert found["groups"]["keyword-heavy"]["questions"] == 1
    assert (
        found["groups"]["en"]["recall@1"] == 0.0 and found["groups"]["en"]["mrr@10"] == 1 / 4
    )  # ranks 2 and none
    assert found["missed@5"] == ["none"]


def test_shipped_questions_point_at_real_pages(corpus: Path) -> None:
    questions = load_questions()
    # Enough that one question is under 2 points of recall, few enough to check by hand.
    assert 50 <= len(questions) <= 150
    assert len({q.id for q in questions}) == len(questions)
    assert {q.language for q in questions} == {"en", "de", "ar"}
    assert {q.kind for q in questions} == {"general", "keyword"}
    for question in questions:
        for answer in question.answers:
            info = pdf.inspect_pdf(corpus / answer.file, max_pages=2000)
            assert answer.pages and max(answer.pages) <= info.page_count, question.id


def test_unique_copies_are_distinct_valid_pdfs(corpus: Path, tmp_path: Path) -> None:
    source = corpus / "minimal-document.pdf"
    copies = [unique_copy(source, tmp_path / f"copy-{i}.pdf") for i in range(2)]

    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in [source, *copies]}
    assert len(digests) == 3
    original = [page.text for page in pdf.extract_pages(source, 1, 1)]
    for copy in copies:
        assert pdf.inspect_pdf(copy, max_pages=10).page_count == 1
        assert [page.text for page in pdf.extract_pages(copy, 1, 1)] == original
