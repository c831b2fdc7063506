"""``GET /docs/{document_id}/pages/{page}``: a page's extracted text, e.g. to show a source."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import IngestionDep, PrincipalDep
from api.envelope import Envelope, error_responses, ok
from core.texts import location_label

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
    ingestion: IngestionDep,
    owner: PrincipalDep,
) -> Envelope[PageTextPublic]:
    found = await ingestion.page_text(document_id, page, owner=owner)
    return ok(
        PageTextPublic(
            document_id=document_id,
            filename=found.document.filename,
            page=page,
            page_count=found.document.page_count,
            text=found.page.text,
            label=location_label(found.page.page, found.page.label),
        )
    )
