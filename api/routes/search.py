"""``GET /docs/search``: semantic search over the indexed chunks (the retrieval chat uses)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, ServicesDep
from api.envelope import Envelope, ok
from core.chat.retrieval import retrieve
from core.errors import InvalidInputError

router = APIRouter(prefix="/docs", tags=["search"])


class SearchHitPublic(BaseModel):
    document_id: str
    filename: str
    page: int
    chunk_index: int
    score: float
    text: str
    label: str = Field(description='Where the chunk is: "page 3", "slide 2", "§Setup"')


@router.get(
    "/search",
    response_model=Envelope[list[SearchHitPublic]],
    summary="The chunks closest in meaning to a query, best first",
)
async def search_documents(
    services: ServicesDep,
    owner: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for")],
    k: Annotated[int | None, Query(ge=1, le=50, description="How many hits")] = None,
    document_id: Annotated[
        list[str] | None, Query(description="Only these documents (repeat the parameter)")
    ] = None,
) -> Envelope[list[SearchHitPublic]]:
    query = q.strip()
    if not query:
        raise InvalidInputError("The query 'q' is blank.", error_code="validation_error")
    limit = k or services.resources.settings.retrieval_k
    hits = await retrieve(
        services.resources, query, k=limit, owner=owner, document_ids=document_id or None
    )
    results = [
        SearchHitPublic(
            document_id=hit.document_id,
            filename=hit.filename,
            page=hit.page,
            chunk_index=hit.chunk_index,
            score=hit.score,
            text=hit.text,
            label=hit.label or f"page {hit.page}",
        )
        for hit in hits
    ]
    return ok(results, query=query, k=limit, count=len(results), document_ids=document_id or [])
