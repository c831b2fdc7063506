"""``GET /docs/search``: search over the indexed chunks (the retrieval chat uses)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, ServicesDep
from api.envelope import Envelope, ok
from core.errors import InvalidInputError
from core.search.retrieval import retrieve
from core.search.vectorstore import Retrieval, SearchHit

router = APIRouter(prefix="/docs", tags=["search"])

Side = Literal["dense", "keyword"]


class SearchHitPublic(BaseModel):
    document_id: str
    filename: str
    page: int
    chunk_index: int
    score: float = Field(
        description="What the hits are ordered by: cosine similarity (dense), BM25 score "
        "(keyword) or reciprocal rank fusion of both (hybrid)"
    )
    text: str
    label: str = Field(description='Where the chunk is: "page 3", "slide 2", "§Setup"')
    found_by: list[Side] = Field(description="The sides that ranked this chunk")
    ranks: dict[Side, int] = Field(description="Each side's 1-based rank of this chunk")
    dense_score: float | None = Field(
        description="Cosine similarity to the query (null with retrieval=keyword)"
    )
    keyword_score: float | None = Field(
        description="BM25 score, where the keyword side ranked this chunk"
    )

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitPublic:
        ranks: dict[Side, int] = {}
        if hit.dense_rank is not None:
            ranks["dense"] = hit.dense_rank
        if hit.keyword_rank is not None:
            ranks["keyword"] = hit.keyword_rank
        return cls(
            document_id=hit.document_id,
            filename=hit.filename,
            page=hit.page,
            chunk_index=hit.chunk_index,
            score=hit.score,
            text=hit.text,
            label=hit.label or f"page {hit.page}",
            found_by=list(ranks),
            ranks=ranks,
            dense_score=hit.dense_score,
            keyword_score=hit.keyword_score,
        )


@router.get(
    "/search",
    response_model=Envelope[list[SearchHitPublic]],
    summary="The chunks that best match a query, by meaning and by its words, best first",
)
async def search_documents(
    services: ServicesDep,
    owner: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for")],
    k: Annotated[int | None, Query(ge=1, le=50, description="How many hits")] = None,
    document_id: Annotated[
        list[str] | None, Query(description="Only these documents (repeat the parameter)")
    ] = None,
    retrieval: Annotated[
        Retrieval | None,
        Query(
            description="hybrid: meaning and words fused (the default); dense: meaning alone; "
            "keyword: words alone"
        ),
    ] = None,
) -> Envelope[list[SearchHitPublic]]:
    query = q.strip()
    if not query:
        raise InvalidInputError("The query 'q' is blank.", error_code="validation_error")
    settings = services.resources.settings
    limit = k or settings.retrieval_k
    mode = retrieval or settings.retrieval_mode
    hits = await retrieve(
        services.resources,
        query,
        k=limit,
        owner=owner,
        document_ids=document_id or None,
        retrieval=mode,
    )
    results = [SearchHitPublic.of(hit) for hit in hits]
    return ok(
        results,
        query=query,
        k=limit,
        count=len(results),
        document_ids=document_id or [],
        retrieval=mode,
    )
