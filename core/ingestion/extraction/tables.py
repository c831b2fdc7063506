"""Spreadsheets (XLSX with openpyxl) and CSV (the standard library's reader) as readable rows.

A table's rows become "Header: value | Header: value" lines, the header repeated on every
row, so each chunk of a table still says what its numbers are. Units hold up to
ROWS_PER_UNIT rows and are labelled with the sheet and the rows' numbers as the spreadsheet
shows them: 'sheet "Q1" rows 2–41' (a CSV has no sheet: "rows 2–41").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from core.ingestion.extraction.containers import open_zip
from core.ingestion.extraction.text import read_text
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text
from core.ingestion.faults import DocumentFault

ROWS_PER_UNIT = 40
# The header is the first row, among the first few, with the most filled cells (a title
# row such as "Stanley Cups,," above it is shown as text).
_HEADER_SEARCH_ROWS = 10

Row = tuple[int, list[str]]  # (the row's number as the sheet shows it, its cells as text)


def csv_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    text = read_text(path, limits)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = [(number, row) for number, row in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise corrupt("CSV file", exc) from exc
    units = table_units(rows, where="")
    if not units:
        raise no_text("the CSV file has no values.")
    return units


def xlsx_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    import openpyxl  # uses defusedxml for every part when it is installed (it is)

    open_zip(path, limits, what="spreadsheet").close()
    handle = path.open("rb")
    try:
        # A file object, not the path: openpyxl refuses paths not ending in .xlsx, and
        # uploads are stored under names of docchat's choosing.
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:
        handle.close()
        raise corrupt("spreadsheet", exc) from exc
    units: list[Unit] = []
    try:
        for sheet in book.worksheets:
            rows = _sheet_rows(sheet.iter_rows(values_only=True))
            units += table_units(rows, where=f'sheet "{sheet.title}" ', start=len(units) + 1)
    except DocumentFault:
        raise
    except Exception as exc:
        raise corrupt("spreadsheet", exc) from exc
    finally:
        book.close()
        handle.close()
    if not units:
        raise no_text("the spreadsheet has no values.")
    return units


def _sheet_rows(values: Iterable[Sequence[object]]) -> list[Row]:
    return [
        (number, [_cell_text(value) for value in row]) for number, row in enumerate(values, start=1)
    ]


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: 13, not 13.0
    return str(value)


def table_units(rows: list[Row], *, where: str, start: int = 1) -> list[Unit]:
    filled = [(number, [cell.strip() for cell in cells]) for number, cells in rows]
    filled = [(number, cells) for number, cells in filled if any(cells)]
    if not filled:
        return []
    header_at = _header_index(filled)
    header = filled[header_at][1] if header_at is not None else None
    lines = [
        (number, _readable(cells, header if header_at is not None and at > header_at else None))
        for at, (number, cells) in enumerate(filled)
        if at != header_at
    ]
    return [
        _unit(start + i, lines[offset : offset + ROWS_PER_UNIT], where)
        for i, offset in enumerate(range(0, len(lines), ROWS_PER_UNIT))
    ]


def _header_index(rows: list[Row]) -> int | None:
    if len(rows) < 2:
        return None
    widths = [sum(1 for cell in cells if cell) for _, cells in rows[:_HEADER_SEARCH_ROWS]]
    widest = max(widths)
    if widest < 2:
        return None
    return widths.index(widest)


def _unit(number: int, lines: list[tuple[int, str]], where: str) -> Unit:
    first, last = lines[0][0], lines[-1][0]
    span = f"row {first}" if first == last else f"rows {first}–{last}"
    text = "\n".join(line for _, line in lines)
    return Unit(number=number, text=text, label=f"{where}{span}")


def _readable(cells: list[str], header: list[str] | None) -> str:
    if header is None:
        return " | ".join(cell for cell in cells if cell)
    pairs: Iterator[str] = (
        f"{header[i]}: {cell}" if i < len(header) and header[i] else cell
        for i, cell in enumerate(cells)
        if cell
    )
    return " | ".join(pairs)
