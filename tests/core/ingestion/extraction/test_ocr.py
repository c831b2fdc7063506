"""OCR with the real Tesseract: scans as images and as PDFs, mixed PDFs (only their image
pages recognised, counted), the modes, and the page and time caps."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytesseract
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from core.ingestion.extraction import (
    ExtractionLimits,
    Format,
    extract_units,
    inspect_document,
    ocr,
)
from core.ingestion.extraction import require_text as require_text_of
from core.ingestion.faults import DocumentFault, FaultCode
from tests.core.ingestion.extraction.helpers import code_of, extract_all

pytestmark = pytest.mark.usefixtures("tesseract")

# Sentences printed on DA-1p.png, a scanned page of a game book.
SCANNED = "We arrived in the dead of night."
SCANNED_LATER = "Abominations have been"


def scan_as_pdf(formats: Path, target: Path) -> Path:
    """DA-1p.png as a one-page PDF with no text layer: what a scanner produces."""
    with Image.open(formats / "DA-1p.png") as image:
        image.convert("RGB").save(target, "PDF", resolution=72)
    return target


def test_an_image_upload_is_recognised(formats: Path, limits: ExtractionLimits) -> None:
    units = extract_all(formats / "DA-1p.png", limits)
    assert [(unit.label, unit.ocr) for unit in units] == [("page 1", True)]
    assert SCANNED in units[0].text
    assert SCANNED_LATER in units[0].text


def test_a_tiff_frame_and_a_jpeg_of_the_same_scan_agree(
    formats: Path, limits: ExtractionLimits
) -> None:
    found = {}
    for name, expected in [
        ("layout-parser-paper-fast.tiff", Format.TIFF),
        ("layout-parser-paper-fast.jpg", Format.JPEG),
    ]:
        assert inspect_document(formats / name, limits).format is expected
        units = extract_all(formats / name, limits)
        assert [(unit.label, unit.ocr) for unit in units] == [("page 1", True)]
        found[expected] = units[0].text
    for text in found.values():
        assert "LayoutParser: A Unified Toolkit" in text


def test_a_scanned_pdf_is_recognised_page_by_page(
    formats: Path, tmp_path: Path, limits: ExtractionLimits
) -> None:
    path = scan_as_pdf(formats, tmp_path / "scan.pdf")
    assert PdfReader(path).pages[0].extract_text().strip() == ""
    units = extract_all(path, limits)
    assert [(unit.label, unit.ocr) for unit in units] == [("page 1", True)]
    assert SCANNED in units[0].text
    require_text_of(units, Format.PDF)


def test_a_mixed_pdf_recognises_only_its_image_pages(
    formats: Path, corpus: Path, tmp_path: Path, limits: ExtractionLimits
) -> None:
    scan = PdfReader(scan_as_pdf(formats, tmp_path / "scan.pdf"))
    text = PdfReader(corpus / "pdflatex-4-pages.pdf")
    writer = PdfWriter()
    for page in (text.pages[0], scan.pages[0], text.pages[1]):
        writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as handle:
        writer.write(handle)
    units = extract_all(mixed, limits)
    assert [unit.ocr for unit in units] == [False, True, False]
    assert sum(unit.ocr for unit in units) == 1
    assert SCANNED in units[1].text
    assert units[0].text == text.pages[0].extract_text()


def test_image_only_corpus_pdf_is_recognised_and_still_has_no_text(
    corpus: Path, limits: ExtractionLimits
) -> None:
    # imagemagick-images.pdf: six 4-point pages, each a 16x16 pixel smiley and an invisible
    # "Background" label. Every page goes to OCR; there is no text on them to find.
    path = corpus / "imagemagick-images.pdf"
    units = extract_all(path, limits)
    assert len(units) == 6 and all(unit.ocr for unit in units)
    with pytest.raises(DocumentFault) as caught:
        require_text_of(units, Format.PDF)
    assert caught.value.code is FaultCode.NO_EXTRACTABLE_TEXT


def test_an_image_with_no_text_fails_typed(tmp_path: Path, limits: ExtractionLimits) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (600, 400), "white").save(blank)
    units = extract_all(blank, limits)
    with pytest.raises(DocumentFault) as caught:
        require_text_of(units, Format.PNG)
    assert caught.value.code is FaultCode.NO_EXTRACTABLE_TEXT


def test_ocr_off(formats: Path, tmp_path: Path, limits: ExtractionLimits) -> None:
    off = replace(limits, ocr="off")
    assert code_of(formats / "DA-1p.png", off) is FaultCode.NO_EXTRACTABLE_TEXT
    units = extract_all(scan_as_pdf(formats, tmp_path / "scan.pdf"), off)
    assert [unit.ocr for unit in units] == [False]
    with pytest.raises(DocumentFault):
        require_text_of(units, Format.PDF)


def test_ocr_force_recognises_text_pages_too(corpus: Path, limits: ExtractionLimits) -> None:
    forced = replace(limits, ocr="force")
    units = list(extract_units(corpus / "minimal-document.pdf", 1, 1, forced))
    assert units[0].ocr
    layer = PdfReader(corpus / "minimal-document.pdf").pages[0].extract_text()
    first_words = " ".join(layer.split()[:3])
    assert first_words in " ".join(units[0].text.split())


def test_ocr_page_cap(formats: Path, tmp_path: Path, limits: ExtractionLimits) -> None:
    scan = PdfReader(scan_as_pdf(formats, tmp_path / "scan.pdf"))
    writer = PdfWriter()
    for _ in range(3):
        writer.add_page(scan.pages[0])
    buffer = io.BytesIO()
    writer.write(buffer)
    three = tmp_path / "three.pdf"
    three.write_bytes(buffer.getvalue())
    capped = replace(limits, ocr_max_pages=2)
    # The third page is refused before it is rendered; batches pass what earlier ones used.
    assert code_of(three, capped) is FaultCode.OCR_LIMIT_EXCEEDED
    with pytest.raises(DocumentFault) as caught:
        list(extract_units(three, 3, 3, capped, ocr_pages_before=2))
    assert caught.value.code is FaultCode.OCR_LIMIT_EXCEEDED
    forced = replace(capped, ocr="force")
    assert code_of(three, forced) is FaultCode.OCR_LIMIT_EXCEEDED


def test_ocr_time_cap(formats: Path, limits: ExtractionLimits) -> None:
    hurried = replace(limits, ocr_page_timeout_seconds=0.05)
    with pytest.raises(DocumentFault) as caught:
        extract_all(formats / "DA-1p.png", hurried)
    fault = caught.value
    assert fault.code is FaultCode.OCR_LIMIT_EXCEEDED
    assert "per-page limit" in fault.message


def test_languages_are_the_configured_ones_tesseract_has() -> None:
    assert {"eng", "deu", "jpn"} <= ocr.installed_languages()
    # The default's vertical data make the second pass, never the first.
    assert ocr.languages(ExtractionLimits()) == "eng+deu+jpn"
    missing = replace(ExtractionLimits(), ocr_languages="eng+xyz")
    assert ocr.languages(missing) == "eng"
    assert ocr.vertical_languages(missing) == ""
    with pytest.raises(DocumentFault) as caught:
        ocr.languages(replace(ExtractionLimits(), ocr_languages="xyz+abc_vert"))
    assert caught.value.code is FaultCode.NO_EXTRACTABLE_TEXT


# Vertical Japanese: jpn-vert.jpeg, one column block read top to bottom, right to left
# (元来日本語は漢文に倣い、文字を上から下へ、…漢字と仮名の筆順も縦書きを前提としており、…).
needs_vertical = pytest.mark.skipif(
    "jpn_vert" not in ocr.installed_languages(),
    reason="Tesseract's jpn_vert data are not installed (`make test` installs "
    "tesseract-ocr-jpn-vert)",
)
VERTICAL = ExtractionLimits(ocr_languages="eng+jpn+jpn_vert")


@needs_vertical
def test_vertical_japanese_is_read_by_the_vertical_pass(formats: Path) -> None:
    units = extract_all(formats / "jpn-vert.jpeg", VERTICAL)
    assert [(unit.label, unit.ocr) for unit in units] == [("page 1", True)]
    text = units[0].text
    for phrase in ("日本語", "縦書き", "上から下へ", "右から左へ", "漢字と仮名"):
        assert phrase in text
    # Tesseract's spaces between CJK characters, and its column breaks, are gone.
    assert " " not in text and "\n" not in text
    with Image.open(formats / "jpn-vert.jpeg") as image:
        reading = ocr.read_page(image, VERTICAL, where="page 1")
    assert (reading.passes, reading.vertical, reading.script) == (2, True, "Han")
    assert reading.confidence >= VERTICAL.ocr_vertical_retry_confidence


@needs_vertical
def test_without_vertical_data_the_same_page_is_latin_noise(formats: Path) -> None:
    # What the vertical pass is for: the horizontal reading alone finds no Japanese at all.
    horizontal = replace(VERTICAL, ocr_languages="eng+jpn")
    with Image.open(formats / "jpn-vert.jpeg") as image:
        reading = ocr.read_page(image, horizontal, where="page 1")
    assert reading.passes == 1
    assert "日本語" not in reading.text
    assert reading.confidence < horizontal.ocr_vertical_retry_confidence


@needs_vertical
def test_a_horizontal_scan_is_read_once_and_unchanged(formats: Path) -> None:
    with Image.open(formats / "DA-1p.png") as image:
        reading = ocr.read_page(image, replace(VERTICAL, ocr_languages="eng+jpn_vert"), where="p")
        assert image.mode == "RGB"  # handed to Tesseract as it is, as before
        before = pytesseract.image_to_string(image, lang="eng")
    assert (reading.passes, reading.vertical) == (1, False)
    assert reading.text == before.replace("\x0c", "").strip()
    assert SCANNED in reading.text


@needs_vertical
def test_a_weak_latin_scan_is_not_read_again(formats: Path) -> None:
    # A blurred, low-resolution scan reads with low confidence: OSD sees Latin script, so the
    # vertical reading is not tried and the horizontal text is kept as it was.
    assert "osd" in ocr.installed_languages()
    limits = replace(VERTICAL, ocr_languages="eng+jpn_vert")
    with Image.open(formats / "layout-parser-paper-fast.jpg") as image:
        reading = ocr.read_page(image, limits, where="page 1")
        assert image.mode == "RGB"  # handed to Tesseract as it is, as before
        before = pytesseract.image_to_string(image, lang="eng")
    assert reading.confidence < limits.ocr_vertical_retry_confidence
    assert (reading.passes, reading.vertical, reading.script) == (1, False, "Latin")
    assert reading.text == before.replace("\x0c", "").strip()
    assert "LayoutParser" in reading.text


@needs_vertical
def test_an_image_only_pdf_page_of_vertical_japanese_is_read(formats: Path, tmp_path: Path) -> None:
    scan = tmp_path / "tategaki.pdf"
    with Image.open(formats / "jpn-vert.jpeg") as image:
        # Scanned at the resolution pages are rendered at for OCR: the page's own pixels.
        image.convert("RGB").save(scan, "PDF", resolution=VERTICAL.ocr_dpi)
    assert PdfReader(scan).pages[0].extract_text().strip() == ""
    units = extract_all(scan, VERTICAL)
    assert [unit.ocr for unit in units] == [True]
    assert "日本語" in units[0].text and "縦書き" in units[0].text


@needs_vertical
def test_a_blank_image_stays_without_text_after_both_passes(tmp_path: Path) -> None:
    blank = Image.new("RGB", (600, 400), "white")
    reading = ocr.read_page(blank, VERTICAL, where="page 1")
    assert (reading.passes, reading.text) == (2, "")


@needs_vertical
def test_only_vertical_data_configured_reads_vertically_at_once(formats: Path) -> None:
    only = replace(VERTICAL, ocr_languages="jpn_vert")
    assert ocr.languages(only) == "" and ocr.vertical_languages(only) == "jpn_vert"
    with Image.open(formats / "jpn-vert.jpeg") as image:
        reading = ocr.read_page(image, only, where="page 1")
    assert reading.passes == 1 and "縦書き" in reading.text


def test_word_confidence_weighs_words_by_their_characters() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\t"
    header += "left\ttop\twidth\theight\tconf\ttext\n"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t9\t9\t-1\t\n",  # a block row: no word
        "5\t1\t1\t1\t1\t1\t0\t0\t9\t9\t90\tabc\n",
        "5\t1\t1\t1\t1\t2\t0\t0\t9\t9\t30\t日\n",
        "5\t1\t1\t1\t1\t3\t0\t0\t9\t9\t95\t \n",  # a space: no word
    ]
    assert ocr.word_confidence(header + "".join(rows)) == (90 * 3 + 30) / 4
    assert ocr.word_confidence(header) == 0.0
