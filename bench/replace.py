"""A new version of a long document with one page edited, over the real service: how many of its
chunks are embedded again (the embedding cache gives the others) and how long the new version
takes next to the first ingestion (docs/replace.md)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pypdf

from bench.corpus import unique_copy
from bench.stack import running_stack, upload, wait_all
from core.ingestion.storage import DocumentStorage
from tests.pdfs import text_pdf

LONG_DOCUMENT = "GeoTopo-komprimiert.pdf"
QUICK_PAGES = 30
EDITED_LINES = [
    "This page was rewritten for the new version of the document.",
    "Its passages are the only ones the new version has to embed again;",
    "every other page keeps its text, and so its vectors.",
]


def run_replace(corpus: Path, workdir: Path, logs: Path, *, quick: bool) -> dict[str, Any]:
    source = corpus / LONG_DOCUMENT
    if not source.is_file():
        return {"error": f"no {LONG_DOCUMENT} in {corpus}"}
    workdir.mkdir(parents=True, exist_ok=True)
    reader = pypdf.PdfReader(source)
    pages = QUICK_PAGES if quick else len(reader.pages)
    edited_page = pages // 2
    first = workdir / "v1.pdf"
    second = workdir / "v2.pdf"
    first.write_bytes(_pages(reader, pages, replace=None))
    second.write_bytes(_pages(reader, pages, replace=edited_page))
    result = asyncio.run(_measure(first, second, workdir, logs, corpus))
    result.update(document=LONG_DOCUMENT, pages=pages, edited_page=edited_page)
    return result


async def _measure(
    first: Path, second: Path, workdir: Path, logs: Path, corpus: Path
) -> dict[str, Any]:
    async with running_stack(workdir, logs) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
            # The embedding process loads its model on first use: not part of either time.
            warm = await upload(
                http, unique_copy(corpus / "minimal-document.pdf", workdir / "warm.pdf")
            )
            await wait_all(http, [warm["task_id"]])

            started = time.perf_counter()
            accepted = await upload(http, first)
            done = (await wait_all(http, [accepted["task_id"]]))[accepted["task_id"]]
            first_s = time.perf_counter() - started
            if done["status"] != "completed":
                return {"error": f"first version ended {done['status']}"}
            document_id = accepted["document_id"]

            started = time.perf_counter()
            content = await asyncio.to_thread(second.read_bytes)
            response = await http.put(
                f"/docs/{document_id}/file",
                files={"file": (second.name, content, "application/pdf")},
            )
            response.raise_for_status()
            task_id = response.json()["data"]["task_id"]
            replaced = (await wait_all(http, [task_id]))[task_id]
            replace_s = time.perf_counter() - started
            if replaced["status"] != "completed":
                return {"error": f"new version ended {replaced['status']}"}
    chunks = DocumentStorage(
        uploads_dir=stack.data_dir / "uploads", artifacts_dir=stack.data_dir / "artifacts"
    ).read_chunks(document_id)
    total = int(replaced["chunk_count"])
    reused = int(replaced["chunks_reused"])
    edited_page = first_page_differing(first, second)
    return {
        "first_chunks": int(done["chunk_count"]),
        "first_ingest_s": first_s,
        "chunks": total,
        "chunks_embedded": total - reused,
        "chunks_reused": reused,
        "edited_page_chunks": sum(chunk.page == edited_page for chunk in chunks),
        "replace_s": replace_s,
    }


def first_page_differing(first: Path, second: Path) -> int:
    a, b = pypdf.PdfReader(first), pypdf.PdfReader(second)
    for number, (x, y) in enumerate(zip(a.pages, b.pages, strict=True), 1):
        if x.extract_text() != y.extract_text():
            return number
    return 0


def _pages(reader: pypdf.PdfReader, count: int, *, replace: int | None) -> bytes:
    edited = pypdf.PdfReader(io.BytesIO(text_pdf([EDITED_LINES]))).pages[0]
    writer = pypdf.PdfWriter()
    for number, page in enumerate(reader.pages[:count], 1):
        writer.add_page(edited if number == replace else page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
