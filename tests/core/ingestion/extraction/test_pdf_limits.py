"""Extraction under a text cap stops as soon as the cap is passed, even inside one page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.ingestion.extraction import pdf
from core.ingestion.faults import DocumentFault, FaultCode
from tests.pdfs import bomb_pdf, text_pdf


def test_a_decompression_bomb_is_stopped_early(tmp_path: Path) -> None:
    # 20 pages of 2 MB of text each, in a 150 KB file: extracting it all takes about a minute.
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bomb_pdf(pages=20, lines_per_page=20_000))
    assert bomb.stat().st_size < 400_000
    started = time.monotonic()
    pages = pdf.extract_pages(bomb, 1, 20, max_chars=50_000)
    with pytest.raises(DocumentFault) as refused:
        next(pages)  # not even the first page is handed out
    assert refused.value.code == FaultCode.TEXT_TOO_LARGE
    assert "page 1" in refused.value.message
    assert time.monotonic() - started < 15


def test_the_cap_counts_across_pages_and_yields_what_fits(tmp_path: Path) -> None:
    path = tmp_path / "three.pdf"
    path.write_bytes(text_pdf([["x" * 60] * 10, ["y" * 60] * 10, ["z" * 60] * 10]))
    whole = [len(page.text) for page in pdf.extract_pages(path, 1, 3)]
    assert len(whole) == 3 and all(size > 600 for size in whole)

    cap = whole[0] + whole[1] // 2
    extracted = pdf.extract_pages(path, 1, 3, max_chars=cap)
    assert next(extracted).page == 1
    with pytest.raises(DocumentFault) as refused:
        next(extracted)
    assert refused.value.code == FaultCode.TEXT_TOO_LARGE
    assert "page 2" in refused.value.message
    # Exactly at the cap is still allowed.
    assert len(list(pdf.extract_pages(path, 1, 3, max_chars=sum(whole)))) == 3
