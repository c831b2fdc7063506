"""The formats section's tables and target: throughput per format, OCR pages/s, and recall@5
on the text layer against the image-only twin (bench/formats.py, bench/twin.py)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.twin import RECALL_POINTS_TARGET


def formats_targets(formats: dict[str, Any]) -> list[dict[str, Any]]:
    twin = formats.get("twin") or {}
    if not twin:
        return []
    lost = twin.get("recall_points_lost")
    text = (twin.get("text") or {}).get("retrieval", {}).get("recall")
    ocr = (twin.get("ocr") or {}).get("retrieval", {}).get("recall")
    verdict = "n/a" if lost is None else "met" if lost <= RECALL_POINTS_TARGET else "not met"
    return [
        {
            "target": f"OCR twin recall@5 within {RECALL_POINTS_TARGET:.0f} points of the text "
            "layer",
            "measured": f"text {_num(text, 2)}, OCR {_num(ocr, 2)} ({_num(lost, 1)} points lost)",
            "value": lost,
            "verdict": verdict,
        }
    ]


def print_formats(console: Console, formats: dict[str, Any]) -> None:
    if "error" in formats and "twin" not in formats:
        console.print(f"[red]formats: {formats['error']}")
        return
    languages = formats.get("ocr_languages", "?")
    if formats.get("by_format"):
        table = Table(
            title=f"Extraction per format ({formats['formats_dir']}, in-process, one file "
            "extracted whole)",
            caption="OCR'd files (images, scans) count their recognition time; faults are the "
            "folder's deliberately bad inputs",
        )
        columns = ("format", "files", "units", "OCR pages", "chars", "s", "chars/s", "MB/s")
        for column in columns:
            table.add_column(column, justify="left" if column == "format" else "right")
        for name, row in sorted(formats["by_format"].items()):
            table.add_row(
                name,
                str(row["files"]),
                str(row["units"]),
                str(row["ocr_pages"]),
                f"{row['chars']:,}",
                _num(row["seconds"], 2),
                f"{row['chars_per_s'] or 0:,}",
                _num(row["mb_per_s"], 2),
            )
        console.print(table)
        faults = [row for row in formats.get("rows", []) if "fault" in row]
        if faults:
            console.print(
                "refused as expected: " + ", ".join(f"{r['file']} ({r['fault']})" for r in faults)
            )
    ocr = formats.get("ocr") or {}
    twin = formats.get("twin") or {}
    table = Table(title=f"OCR ({languages}) and the image-only twin")
    for column in ("measure", "value"):
        table.add_column(column)
    if ocr.get("pages"):
        table.add_row(
            "OCR on the formats folder",
            f"{ocr['pages']} pages in {_num(ocr['seconds'], 1)} s = "
            f"{_num(ocr['pages_per_s'], 3)} pages/s",
        )
    if twin:
        text, scan = twin["text"], twin["ocr"]
        table.add_row(
            "OCR on the twins",
            f"{scan['ocr_pages']} pages in {_num(scan['extract_s'], 1)} s = "
            f"{_num(scan['ocr_pages_per_s'], 3)} pages/s ({twin['dpi']} dpi)",
        )
        asked = text["retrieval"]["questions"]
        table.add_row(
            f"recall@5, {asked} questions on {len(twin['files'])} documents",
            f"text layer {_num(text['retrieval']['recall'], 3)}, "
            f"image-only twin {_num(scan['retrieval']['recall'], 3)} "
            f"({_num(twin.get('recall_points_lost'), 1)} points lost)",
        )
        table.add_row(
            "missed@5", f"text {text['retrieval']['misses']}, twin {scan['retrieval']['misses']}"
        )
    console.print(table)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
