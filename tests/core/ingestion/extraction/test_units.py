"""How documents become units: sections and their labels, long sections split, tables with
their header on every row, batches that slice the same units, encodings told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ingestion.extraction import ExtractionLimits, Format, detect_format, extract_units
from core.ingestion.extraction import encoding as enc
from core.ingestion.extraction.sections import MAX_UNIT_CHARS, Block, sections_to_units
from core.ingestion.extraction.tables import ROWS_PER_UNIT
from tests.core.ingestion.extraction.helpers import extract_all


def test_heading_paths_nest_and_close() -> None:
    units = sections_to_units(
        [
            Block("Preface words."),
            Block("Guide", level=1),
            Block("Setup", level=2),
            Block("Installation", level=3),
            Block("Run the installer."),
            Block("Usage", level=2),
            Block("Use it."),
            Block("Appendix", level=1),
            Block("More."),
        ]
    )
    assert [unit.label for unit in units] == [
        "paragraphs 1",
        "§Guide",
        "§Guide › Setup",
        "§Guide › Setup › Installation",
        "§Guide › Usage",
        "§Appendix",
    ]
    assert units[3].text == "Installation\n\nRun the installer."
    assert [unit.number for unit in units] == [1, 2, 3, 4, 5, 6]


def test_long_sections_split_at_paragraphs_with_part_labels() -> None:
    paragraph = "word " * 600  # 3,000 characters
    units = sections_to_units([Block("Big", level=1), *[Block(paragraph) for _ in range(6)]])
    assert len(units) == 3
    assert [unit.label for unit in units] == ["§Big", "§Big (part 2)", "§Big (part 3)"]
    assert all(len(unit.text) <= MAX_UNIT_CHARS for unit in units)
    headless = sections_to_units([Block(paragraph) for _ in range(6)])
    assert [unit.label for unit in headless] == [
        "paragraphs 1–2",
        "paragraphs 3–4",
        "paragraphs 5–6",
    ]


def test_a_paragraph_longer_than_a_unit_is_cut() -> None:
    units = sections_to_units([Block("x" * (3 * MAX_UNIT_CHARS))])
    assert len(units) == 3 and "".join(unit.text for unit in units) == "x" * (3 * MAX_UNIT_CHARS)


def test_every_table_unit_repeats_the_header(tmp_path: Path, limits: ExtractionLimits) -> None:
    path = tmp_path / "people.csv"
    rows = ["name;city;age"] + [f"person {i};town {i};{20 + i}" for i in range(100)]
    path.write_text("\n".join(rows) + "\n")
    assert detect_format(path) is Format.CSV
    units = extract_all(path, limits)
    assert len(units) == 3  # 100 rows, ROWS_PER_UNIT to a unit
    assert units[0].label == f"rows 2–{ROWS_PER_UNIT + 1}"
    assert units[-1].label == "rows 82–101"
    for unit in units:
        for line in unit.text.splitlines():
            assert line.startswith("name: person ") and "| city: town " in line
    assert "name: person 99 | city: town 99 | age: 119" in units[-1].text


def test_batches_slice_the_same_units(formats: Path, limits: ExtractionLimits) -> None:
    path = formats / "winter-sports.epub"
    whole = extract_all(path, limits)
    batches = [
        unit
        for first in range(1, len(whole) + 1, 25)
        for unit in extract_units(path, first, min(first + 24, len(whole)), limits)
    ]
    assert batches == whole


@pytest.mark.parametrize(
    ("codec", "expected"),
    [("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be"), ("utf-32-le", "utf-32-le")],
)
def test_wide_encodings_without_a_byte_order_mark(codec: str, expected: str) -> None:
    data = "Plain words in a file, line after line.\n".encode(codec) * 20
    assert enc.guess_encoding(data, complete=True) == expected
    assert enc.decode(data) == "Plain words in a file, line after line.\n" * 20


def test_legacy_encodings_are_detected() -> None:
    text = "Größere Übungen für Änderungen, schöne Grüße aus München und Köln.\n" * 5
    assert enc.decode(text.encode("cp1252")) == text
    # A wrong declaration is overruled when the bytes cannot be in it.
    assert enc.decode("naïve café".encode(), declared="ascii") == "naïve café"


def test_plain_prose_with_commas_is_text_not_csv(tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_text("First, we talk.\nThen, later, we write it down, again.\nDone.\n")
    assert detect_format(path) is Format.TEXT
