"""``GET /docs/{document_id}/pages/{page}``: a page's extracted text, e.g. to show a source."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import PrincipalDep, ServicesDep
from api.envelope import Envelope, error_responses, ok
from core.errors import NotFoundError
from core.ingestion import records
from core.ingestion.storage import DocumentStorage
from core.texts import PageText, location_label

router = APIRouter(prefix="/docs", tags=["documents"])


class PageTextPublic(BaseModel):
    document_id: str
    filename: str
    page: int
    page_count: int | None
    text: str
    # "page 3" for a PDF; "slide 3", "§Setup › Installation"... for other formats, whose
    # units are numbered like pages (see docs/formats.md).
    label: str


@router.get(
    "/{document_id}/pages/{page}",
    response_model=Envelope[PageTextPublic],
    summary="The text extracted from one page (1-based), as the answers cite it",
    responses=error_responses(404),
)
async def page_text(
    document_id: str,
    page: Annotated[int, Path(ge=1, description="1-based page number")],
    services: ServicesDep,
    owner: PrincipalDep,
) -> Envelope[PageTextPublic]:
    engine = services.resources.engine
    document = await asyncio.to_thread(records.get_document, engine, document_id)
    if document is None or document.owner != owner:
        raise NotFoundError(f"No document {document_id}.", error_code="document_not_found")
    found = await asyncio.to_thread(_read_page, services.resources.storage, document_id, page)
    if found is None:
        raise NotFoundError(
            f"Page {page} of {document.filename} has no extracted text"
            + (f" (it has {document.page_count} pages)." if document.page_count else "."),
            error_code="page_not_found",
            details={"page": page, "page_count": document.page_count},
        )
    return ok(
        PageTextPublic(
            document_id=document_id,
            filename=document.filename,
            page=page,
            page_count=document.page_count,
            text=found.text,
            label=location_label(found.page, found.label),
        )
    )


def _read_page(storage: DocumentStorage, document_id: str, page: int) -> PageText | None:
    try:
        return next((p for p in storage.read_pages(document_id) if p.page == page), None)
    except FileNotFoundError:  # removed while being read (the document was deleted)
        return None
