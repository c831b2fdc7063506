"""``python -m bench.formats``: extraction throughput per format on ../shared/formats, and
OCR pages per second, in this process (no API, no workflow).

Each file is inspected and extracted whole, as the workflow's extract batches would, and the
wall time of that is reported with the units and characters it gave. Files that fail with
a document fault (the folder's deliberately bad inputs) are listed with their code.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.corpus import REPO
from core.ingestion.extraction import ExtractionLimits, extract_units, inspect_document
from core.ingestion.faults import DocumentFault

DEFAULT_FORMATS = REPO.parent / "shared" / "formats"


def measure(path: Path, limits: ExtractionLimits) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        info = inspect_document(path, limits)
        units = list(extract_units(path, 1, info.unit_count, limits))
    except DocumentFault as fault:
        return {"file": path.name, "fault": fault.code.value}
    seconds = time.perf_counter() - started
    chars = sum(len(unit.text) for unit in units)
    return {
        "file": path.name,
        "format": info.format.value,
        "units": len(units),
        "ocr_pages": sum(unit.ocr for unit in units),
        "chars": chars,
        "seconds": round(seconds, 3),
        "chars_per_s": round(chars / seconds) if seconds else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.formats", description=__doc__)
    parser.add_argument("--formats", type=Path, default=DEFAULT_FORMATS)
    parser.add_argument("--ocr-languages", default=ExtractionLimits.ocr_languages)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    limits = ExtractionLimits(ocr_languages=args.ocr_languages)
    rows = [
        measure(path, limits)
        for path in sorted(args.formats.iterdir())
        if path.is_file() and path.name not in ("LICENSE", "README.md")
    ]
    print(f"{'file':42} {'format':9} {'units':>5} {'ocr':>3} {'chars':>9} {'s':>7} {'chars/s':>9}")
    for row in rows:
        if "fault" in row:
            print(f"{row['file']:42} fault: {row['fault']}")
            continue
        print(
            f"{row['file']:42} {row['format']:9} {row['units']:5} {row['ocr_pages']:3} "
            f"{row['chars']:9,} {row['seconds']:7.2f} {row['chars_per_s'] or 0:9,}"
        )
    ocr_rows = [row for row in rows if row.get("ocr_pages")]
    pages = sum(row["ocr_pages"] for row in ocr_rows)
    seconds = sum(row["seconds"] for row in ocr_rows)
    if pages:
        print(
            f"OCR ({args.ocr_languages}): {pages} pages in {seconds:.1f} s = "
            f"{pages / seconds:.3f} pages/s"
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "ocr_languages": args.ocr_languages}))


if __name__ == "__main__":
    main()
