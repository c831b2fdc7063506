"""The formats section of ``make bench``: real files measured, summed per format, the OCR
rate, the twin target's verdict and the printed tables (no OCR here: see test_twin.py)."""

from __future__ import annotations

import pytest
from rich.console import Console

from bench.corpus import DEFAULT_FORMATS
from bench.formats import by_format, format_files, measure, ocr_rate
from bench.formats_report import formats_targets, print_formats
from core.ingestion.extraction import ExtractionLimits

pytestmark = pytest.mark.skipif(not DEFAULT_FORMATS.is_dir(), reason=f"no {DEFAULT_FORMATS}")


def test_files_are_measured_and_summed_per_format() -> None:
    limits = ExtractionLimits(ocr="off")
    names = ("stanley-cups.csv", "eng_spa_mult.txt", "book-war-and-peace-1p.txt", "empty.txt")
    rows = [measure(DEFAULT_FORMATS / name, limits) for name in names]

    assert rows[0]["format"] == "csv" and rows[0]["units"] == 1 and rows[0]["chars"] > 100
    assert rows[-1] == {"file": "empty.txt", "fault": "empty_file"}
    summed = by_format(rows)
    assert set(summed) == {"csv", "text"}  # the fault counts for no format
    text = summed["text"]
    assert text["files"] == 2
    assert text["chars"] == rows[1]["chars"] + rows[2]["chars"]
    assert text["bytes"] == sum((DEFAULT_FORMATS / n).stat().st_size for n in names[1:3])
    assert ocr_rate(rows)["pages"] == 0 and ocr_rate(rows)["pages_per_s"] is None

    listed = [path.name for path in format_files(DEFAULT_FORMATS)]
    assert "README.md" not in listed and "LICENSE" not in listed and "empty.txt" in listed
    assert "handbook-872p.docx" not in {p.name for p in format_files(DEFAULT_FORMATS, quick=True)}


def twin(text: float, ocr: float) -> dict[str, object]:
    def variant(recall: float) -> dict[str, object]:
        retrieval = {"questions": 10, "recall": recall, "misses": []}
        rate = {"ocr_pages": 13, "extract_s": 169.5, "ocr_pages_per_s": 0.077}
        return {**rate, "retrieval": retrieval}

    lost = round((text - ocr) * 100, 1)
    return {"files": ["a.pdf"], "dpi": 200, "text": variant(text), "ocr": variant(ocr),
            "recall_points_lost": lost}  # fmt: skip


def test_the_twin_target_is_judged_by_points_lost() -> None:
    assert formats_targets({}) == []
    assert formats_targets({"twin": twin(0.9, 0.8)})[0]["verdict"] == "met"  # 10 points
    missed = formats_targets({"twin": twin(0.9, 0.7)})[0]
    assert missed["verdict"] == "not met" and "20.0 points lost" in missed["measured"]


def test_the_tables_print_what_was_measured() -> None:
    rows = [measure(DEFAULT_FORMATS / "stanley-cups.csv", ExtractionLimits())]
    console = Console(record=True, width=200)
    results = {
        "formats_dir": "x",
        "ocr_languages": "eng",
        "rows": rows,
        "by_format": by_format(rows),
        "ocr": ocr_rate(rows),
        "twin": twin(0.935, 0.903),
    }
    print_formats(console, results)
    shown = console.export_text()
    assert "Extraction per format" in shown and "csv" in shown
    assert "text layer 0.935, image-only twin 0.903 (3.2 points lost)" in shown
    assert "13 pages in 169.5 s = 0.077 pages/s" in shown
