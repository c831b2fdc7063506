"""``python -m bench.formats``: extraction throughput per format on ../shared/formats, and
OCR pages per second, in this process (no API, no workflow). ``python -m bench --only
formats`` runs it (``run_formats``) with the OCR twin comparison (bench/twin.py) as well.

Each file is inspected and extracted whole, as the workflow's extract batches would, and the
wall time of that is reported with the units and characters it gave. Files that fail with
a document fault (the folder's deliberately bad inputs) are listed with their code.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.corpus import DEFAULT_FORMATS
from bench.retrieval import Question
from core.ingestion.extraction import ExtractionLimits, extract_units, inspect_document
from core.ingestion.faults import DocumentFault

NOT_DOCUMENTS = frozenset({"LICENSE", "README.md"})
# --quick leaves out the one slow file (python-docx parses the 872-page handbook in ~20 s).
QUICK_EXCLUDE = frozenset({"handbook-872p.docx"})
QUICK_TWIN_FILES = ("google-doc-document.pdf", "multicolumn.pdf")


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
        "bytes": path.stat().st_size,
        "units": len(units),
        "ocr_pages": sum(unit.ocr for unit in units),
        "chars": chars,
        "seconds": round(seconds, 3),
        "chars_per_s": round(chars / seconds) if seconds else None,
    }


def format_files(folder: Path, *, quick: bool = False) -> list[Path]:
    skip = NOT_DOCUMENTS | (QUICK_EXCLUDE if quick else frozenset())
    return sorted(path for path in folder.iterdir() if path.is_file() and path.name not in skip)


def by_format(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows summed per format: throughput over all of that format's files."""
    summed: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "fault" in row:
            continue
        into = summed.setdefault(
            row["format"], {"files": 0, "units": 0, "ocr_pages": 0, "chars": 0, "seconds": 0.0}
        )
        for name in ("units", "ocr_pages", "chars", "seconds"):
            into[name] += row[name]
        into["files"] += 1
        into["bytes"] = into.get("bytes", 0) + row["bytes"]
    for into in summed.values():
        seconds = into["seconds"]
        into["chars_per_s"] = round(into["chars"] / seconds) if seconds else None
        into["mb_per_s"] = round(into["bytes"] / seconds / 1e6, 3) if seconds else None
    return summed


def ocr_rate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OCR pages per second over the files that needed OCR (images, scans)."""
    ocr_rows = [row for row in rows if row.get("ocr_pages")]
    pages = sum(row["ocr_pages"] for row in ocr_rows)
    seconds = sum(row["seconds"] for row in ocr_rows)
    return {
        "files": [row["file"] for row in ocr_rows],
        "pages": pages,
        "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 4) if pages and seconds else None,
    }


def run_formats(
    formats: Path,
    corpus: Path,
    workdir: Path,
    *,
    questions: Sequence[Question],
    quick: bool = False,
) -> dict[str, Any]:
    """``make bench``'s formats section: throughput per format and OCR pages/s on
    ``formats``, then the corpus documents against their image-only twins."""
    from bench.twin import TWIN_FILES, run_twin
    from core.ingestion.chunking import TokenChunker
    from core.ingestion.offload import EmbedderConfig
    from core.settings import Settings

    settings = Settings(data_dir=workdir)
    limits = ExtractionLimits.from_settings(settings)
    result: dict[str, Any] = {"formats_dir": str(formats), "ocr_languages": limits.ocr_languages}
    if formats.is_dir():
        rows = [measure(path, limits) for path in format_files(formats, quick=quick)]
        result |= {"rows": rows, "by_format": by_format(rows), "ocr": ocr_rate(rows)}
    else:
        result["error"] = f"no formats folder at {formats}"
    sources = [corpus / name for name in (QUICK_TWIN_FILES if quick else TWIN_FILES)]
    sources = [path for path in sources if path.is_file()]
    if sources:
        embedder = EmbedderConfig.from_settings(settings).load()
        chunker = TokenChunker(
            embedder.tokenizer,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        result["twin"] = run_twin(
            sources,
            workdir,
            questions=questions,
            chunker=chunker,
            embedder=embedder,
            limits=limits,
            batch_pages=settings.extract_pages_per_activity,
        )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.formats", description=__doc__)
    parser.add_argument("--formats", type=Path, default=DEFAULT_FORMATS)
    parser.add_argument("--ocr-languages", default=ExtractionLimits.ocr_languages)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    limits = ExtractionLimits(ocr_languages=args.ocr_languages)
    rows = [measure(path, limits) for path in format_files(args.formats)]
    print(f"{'file':42} {'format':9} {'units':>5} {'ocr':>3} {'chars':>9} {'s':>7} {'chars/s':>9}")
    for row in rows:
        if "fault" in row:
            print(f"{row['file']:42} fault: {row['fault']}")
            continue
        print(
            f"{row['file']:42} {row['format']:9} {row['units']:5} {row['ocr_pages']:3} "
            f"{row['chars']:9,} {row['seconds']:7.2f} {row['chars_per_s'] or 0:9,}"
        )
    ocr = ocr_rate(rows)
    if ocr["pages_per_s"]:
        print(
            f"OCR ({args.ocr_languages}): {ocr['pages']} pages in {ocr['seconds']:.1f} s = "
            f"{ocr['pages_per_s']:.3f} pages/s"
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "ocr_languages": args.ocr_languages}))


if __name__ == "__main__":
    main()
