"""Every accepted format, from real files made by other tools (../shared/formats): the right
format is told by content, a known sentence comes out, and it carries the right location."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.ingestion.extraction import ExtractionLimits, Format, detect_format, inspect_document
from tests.core.ingestion.extraction.helpers import extract_all, whole_text

# file, its format, a sentence in it, the label of the unit holding that sentence
KNOWN = [
    ("simple.docx", Format.DOCX, "This is my second thought.",
     "§These are a few of my favorite things:"),
    ("docx-tables.docx", Format.DOCX, "Lorem ipsum | A link example", "paragraphs 1–11"),
    ("simple.odt", Format.ODT, "This is my third thought",
     "§These are a few of my favorite things:"),
    ("fake.odt", Format.ODT, "Color | Blue | Red | Green", "paragraphs 1–5"),
    ("sample-presentation.pptx", Format.PPTX, "This is the second content slide", "slide 3"),
    ("sample-presentation.pptx", Format.PPTX, "2 | A2 | B2 | C2", "slide 4"),
    ("stanley-cups.xlsx", Format.XLSX, "Team: Maple Leafs | Location: TOR | Stanley Cups: 13",
     'sheet "Stanley Cups" rows 1–5'),
    ("stanley-cups.xlsx", Format.XLSX, "Team: Maple Leafs | Location: TOR | Stanley Cups: 0",
     'sheet "Stanley Cups Since 67" rows 1–5'),
    ("stanley-cups.csv", Format.CSV, "Team: Flyers | Location: PHI | Stanley Cups: 2",
     "rows 1–5"),
    ("fake-html-cp1252.html", Format.HTML, "Die schöne Frau hat einen Kaffee mit Kuchen gegessen.",
     "§My First Heading"),
    ("example-steelJIS-datasheet-utf-16.html", Format.HTML, "Structural steel Chromium",
     "§SNB22-3 Chemical composition, standards and properties"),
    ("example-10k.html", Format.HTML, "SECURITIES AND EXCHANGE COMMISSION", "paragraphs 1–68"),
    ("example-docs-readme.md", Format.MARKDOWN, "You can get an example 10-K in inline XBRL",
     "§Example Docs › XBRL 10-K"),
    ("codeblock.md", Format.MARKDOWN, "<to>Tove</to>", "§XML Example"),
    ("umlauts-non-utf8.md", Format.MARKDOWN, "äöüß", "§können"),
    ("book-war-and-peace-1p.txt", Format.TEXT, '"Well, Prince, so Genoa and Lucca', "lines 1–62"),
    ("norwich-city.txt", Format.TEXT, "Full name Iwan Wyn Roberts", "lines 1–111"),
    ("fake-text-utf-16.txt", Format.TEXT, "This is a test document to use for unit tests.",
     "lines 1–9"),
    ("fake-text-utf-32.txt", Format.TEXT, "This is a test document to use for unit tests.",
     "lines 1–9"),
    ("winter-sports.epub", Format.EPUB, "WITH 12 FULL-PAGE ILLUSTRATIONS IN COLOUR",
     "§WINTER SPORTS IN SWITZERLAND"),
    ("winter-sports.epub", Format.EPUB, "Tees and Crampits",
     "§WINTER SPORTS IN SWITZERLAND › CONTENTS"),
    ("fake-doc.rtf", Format.RTF, "Row 2, Cell 1|Row 2, Cell 2", "lines 1–6"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "expected", "sentence", "label"), KNOWN)
def test_known_sentence_with_its_location(
    formats: Path,
    limits: ExtractionLimits,
    name: str,
    expected: Format,
    sentence: str,
    label: str,
) -> None:
    path = formats / name
    assert inspect_document(path, limits).format is expected
    holding = [unit for unit in extract_all(path, limits) if sentence in unit.text]
    assert [unit.label for unit in holding] == [label]


@pytest.mark.parametrize(("name", "expected"), sorted({(k[0], k[1]) for k in KNOWN}))
def test_format_is_told_by_content_not_name(
    formats: Path, tmp_path: Path, limits: ExtractionLimits, name: str, expected: Format
) -> None:
    misnamed = tmp_path / "upload.pdf"  # uploads are stored under names docchat picks
    shutil.copyfile(formats / name, misnamed)
    assert detect_format(misnamed) is expected
    assert extract_all(misnamed, limits) == extract_all(formats / name, limits)


def test_the_eight_eng_spa_mult_files_give_the_same_text(
    formats: Path, limits: ExtractionLimits
) -> None:
    texts = {
        suffix: whole_text(extract_all(formats / f"eng_spa_mult.{suffix}", limits))
        for suffix in ("docx", "epub", "html", "md", "odt", "pptx", "rtf", "txt")
    }
    reference = texts.pop("txt")
    assert "All human beings are born free and equal" in reference
    assert "Todos los seres humanos nacen libres e iguales" in reference
    # The presentation alone has a title slide before the same text.
    assert texts.pop("pptx") == "Testing multiple languages " + reference
    assert texts == dict.fromkeys(texts, reference)


def test_slides_are_units_numbered_as_shown(formats: Path, limits: ExtractionLimits) -> None:
    units = extract_all(formats / "sample-presentation.pptx", limits)
    assert [(unit.number, unit.label) for unit in units] == [
        (1, "slide 1"), (2, "slide 2"), (3, "slide 3"), (4, "slide 4"),
    ]  # fmt: skip


def test_a_damaged_but_readable_presentation_still_yields_its_slide(
    formats: Path, limits: ExtractionLimits
) -> None:
    # fake-power-point-malformed.pptx has a placeholder missing required attributes; its text
    # is intact, and unstructured's own tests expect exactly these two lines from it.
    units = extract_all(formats / "fake-power-point-malformed.pptx", limits)
    assert units[0].text.splitlines() == ["Problem Date Placeholder", "Test Slide"]


def test_html_scripts_and_styles_are_never_indexed(formats: Path, limits: ExtractionLimits) -> None:
    source = (formats / "example-with-scripts.html").read_text()
    assert "facebook-jssdk" in source and "getElementById" in source
    text = whole_text(extract_all(formats / "example-with-scripts.html", limits))
    assert "Skip to main content" in text
    for code in ("facebook-jssdk", "getElementById", "function (", "{", "font-family"):
        assert code not in text


def test_a_big_real_word_document_is_cut_into_sections(
    formats: Path, limits: ExtractionLimits
) -> None:
    units = extract_all(formats / "handbook-872p.docx", limits)
    assert len(units) > 100
    assert [unit.number for unit in units] == list(range(1, len(units) + 1))
    assert max(len(unit.text) for unit in units) <= 8000
    assert sum(unit.label.startswith("§") for unit in units) > len(units) // 2
