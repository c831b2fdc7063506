"""Real pypdf on real PDFs made by other tools: every document fault has its own code."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ingestion.extraction import pdf
from core.ingestion.faults import DocumentFault, FaultCode


def fault_of(path: Path) -> FaultCode:
    with pytest.raises(DocumentFault) as caught:
        info = pdf.inspect_pdf(path, max_pages=1000)
        pdf.require_text(list(pdf.extract_pages(path, 1, info.page_count)))
    return caught.value.code


def test_text_pdf_yields_numbered_pages(corpus: Path) -> None:
    path = corpus / "pdflatex-4-pages.pdf"
    info = pdf.inspect_pdf(path, max_pages=10)
    pages = list(pdf.extract_pages(path, 2, 3))
    assert info.page_count == 4
    assert [page.page for page in pages] == [2, 3]
    assert all(len(page.text) > 500 for page in pages)


def test_encrypted_pdf_is_a_permanent_fault(corpus: Path) -> None:
    assert fault_of(corpus / "libreoffice-writer-password.pdf") == FaultCode.ENCRYPTED_PDF


def test_image_only_pdf_has_no_extractable_text(corpus: Path) -> None:
    assert fault_of(corpus / "imagemagick-images.pdf") == FaultCode.NO_EXTRACTABLE_TEXT


def test_short_real_text_is_not_mistaken_for_a_scan(corpus: Path) -> None:
    path = corpus / "habibi.pdf"
    pdf.require_text(list(pdf.extract_pages(path, 1, 1)))


@pytest.mark.parametrize("fraction", [0.2, 0.6, 0.95])
def test_truncated_pdf_is_corrupt(corpus: Path, tmp_path: Path, fraction: float) -> None:
    original = (corpus / "pdflatex-4-pages.pdf").read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(original[: int(len(original) * fraction)])
    assert fault_of(truncated) == FaultCode.CORRUPT_PDF


def test_empty_and_non_pdf_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pdf"
    text.write_text("just some text, named .pdf")
    assert fault_of(empty) == FaultCode.EMPTY_FILE
    assert fault_of(text) == FaultCode.NOT_A_PDF


def test_page_cap(corpus: Path) -> None:
    with pytest.raises(DocumentFault) as caught:
        pdf.inspect_pdf(corpus / "GeoTopo-komprimiert.pdf", max_pages=50)
    assert caught.value.code == FaultCode.TOO_MANY_PAGES
    assert "117" in caught.value.message
