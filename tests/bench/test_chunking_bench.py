"""The chunking section (bench/chunking.py) on one real corpus PDF: extraction once, each grid
point chunked, embedded and searched on its own, and the frontier read right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bench.__main__ import parse_args
from bench.chunking import GridPoint, grid, judge, run_chunking, summarise
from bench.chunking_report import print_chunking
from bench.retrieval import applicable, load_questions
from core.ingestion.extraction import pdf
from core.search.embeddings import Embedder

DOCUMENT = "multicolumn.pdf"


def test_each_grid_point_is_cut_embedded_and_searched_on_one_extraction(
    corpus: Path, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extracted: list[str] = []
    real_inspect = pdf.inspect_pdf

    def counting_inspect(path: Path, **limits: Any) -> pdf.PdfInfo:
        extracted.append(path.name)
        return real_inspect(path, **limits)

    # A spy on the real reader: every extraction of a file starts by inspecting it.
    monkeypatch.setattr(pdf, "inspect_pdf", counting_inspect)
    questions = load_questions()
    asked = applicable(questions, {DOCUMENT})

    result = run_chunking(
        [corpus / DOCUMENT],
        tmp_path,
        questions=questions,
        embedder=embedder,
        points=[GridPoint(64, 0)],
    )

    assert extracted == [DOCUMENT]  # once for the whole grid
    # The default settings are always measured: the other points are judged against them.
    assert [row["label"] for row in result["points"]] == ["64/0", "128/32"]
    assert result["default"] == "128/32" and result["documents_ok"] == 1
    assert result["questions"] == len(asked) > 0
    small, default = result["points"]
    # Half the chunk size, no overlap: more chunks, and no overlapping tokens embedded twice.
    assert small["chunks"] > default["chunks"]
    assert small["tokens"] < default["tokens"]
    for row in result["points"]:
        # Two special tokens per chunk ([CLS], [SEP]) are part of what the model reads.
        assert row["tokens"] > 2 * row["chunks"]
        assert row["embed_s"] > 0 and row["embed_cpu_s"] > 0
        assert row["ingest_s"] > row["embed_s"]
        assert set(row["retrieval"]) == {"hybrid", "dense", "keyword"}
        hybrid = row["retrieval"]["hybrid"]
        assert hybrid["groups"]["all"]["questions"] == len(asked)
        assert row["hits@5"] == len(asked) - len(hybrid["missed@5"])
        # Finland's area, a number on page 3, is found by keyword and hybrid at every size.
        for mode in ("hybrid", "keyword"):
            assert "kw-area-338424" not in row["retrieval"][mode]["missed@5"]
    assert not list(tmp_path.glob("qdrant-*"))  # each point's store is removed after it

    console = Console(record=True, width=250)
    print_chunking(console, result)
    printed = console.export_text()
    assert "64/0" in printed and "128/32" in printed


def _row(label: str, hits: int, tokens: int) -> dict[str, Any]:
    size, overlap = label.split("/")
    return {
        "label": label,
        "chunk_tokens": int(size),
        "overlap_tokens": int(overlap),
        "hits@5": hits,
        "tokens": tokens,
    }


def test_frontier_and_what_beats_the_default() -> None:
    rows = [
        _row("128/32", 90, 100_000),  # the default
        _row("128/0", 90, 80_000),  # as many answers, fewer tokens: beats it
        _row("200/0", 91, 70_000),  # more answers, fewer tokens: beats both
        _row("64/32", 92, 200_000),  # the most answers, at twice the cost
        _row("96/16", 89, 75_000),  # cheaper than 128/0, but loses one answer to 200/0
    ]
    judge(rows, GridPoint(128, 32))

    frontier = {row["label"] for row in rows if row["frontier"]}
    assert frontier == {"200/0", "64/32"}
    assert rows[1]["vs_default"] == {"hits@5": 0, "tokens_pct": pytest.approx(-20.0)}
    assert rows[2]["hits_per_10k_tokens"] == pytest.approx(13.0)
    summary = summarise(rows, GridPoint(128, 32))
    assert summary["beat_default"] == ["128/0", "200/0"]  # 96/16 finds one answer fewer
    assert (summary["most_hits"], summary["most_hits@5"]) == ("64/32", 92)


def test_quick_grid_is_smaller_and_the_section_is_selectable() -> None:
    assert len(grid(quick=True)) < len(grid())
    assert GridPoint(128, 32) in grid() and GridPoint(128, 32) in grid(quick=True)
    assert parse_args(["--only", "chunking"]).only == "chunking"
