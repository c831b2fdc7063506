"""The PDFs a run ingests, and unique copies of them."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_FORMATS = REPO.parent / "shared" / "formats"  # one real file of each format
# --quick leaves out the one large document (117 pages): the rest ingests in seconds.
QUICK_EXCLUDE = frozenset({"GeoTopo-komprimiert.pdf"})


def list_pdfs(corpus: Path, *, quick: bool = False) -> list[Path]:
    files = sorted(p for p in corpus.iterdir() if p.is_file() and p.suffix.lower() == ".pdf")
    if quick:
        files = [p for p in files if p.name not in QUICK_EXCLUDE]
    return files


def unique_copy(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` with a random PDF comment appended after ``%%EOF``.

    Readers ignore bytes after the last ``%%EOF`` comment, so the copy stays a valid PDF with
    the same pages, while its bytes (and sha256) differ from every other copy: a service that
    de-duplicates identical uploads still ingests each one.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    with target.open("ab") as handle:
        handle.write(f"\n%{secrets.token_hex(16)}\n".encode())
    return target


def document_row(
    file: str, status: str, *, error_code: str | None = None, pages: int = 0, chunks: int = 0
) -> dict[str, Any]:
    """What happened to one file in one pipeline: completed, skipped (a permanent fault of the
    document, such as encryption or no text layer) or failed."""
    return {
        "file": file,
        "status": status,
        "error_code": error_code,
        "pages": pages,
        "chunks": chunks,
    }
