"""``/index``: the index versions and the re-index that builds a new one (docs/search.md)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter

from api.deps import PrincipalDep, ServicesDep
from api.envelope import Envelope, error_responses, ok
from core.search.reindex import ReindexService

router = APIRouter(prefix="/index", tags=["index"])

Action = Literal["pause", "resume", "cancel", "retry"]


def _reindex(services: ServicesDep) -> ReindexService:
    return ReindexService(services.resources, services.temporal)


@router.get(
    "/versions",
    response_model=Envelope[dict[str, Any]],
    summary="The index versions, the active one, and whether the settings still match it",
)
async def list_versions(services: ServicesDep, _: PrincipalDep) -> Envelope[dict[str, Any]]:
    versions = services.resources.versions
    listed = await asyncio.to_thread(versions.all_versions)
    report = await asyncio.to_thread(versions.report)
    return ok({"versions": [v.as_dict() for v in listed], **report})


@router.post(
    "/versions/{version}/activate",
    response_model=Envelope[dict[str, Any]],
    summary="Make a ready version the one search and chat use (one atomic alias swap)",
    responses=error_responses(404, 409),
)
async def activate_version(
    version: str, services: ServicesDep, _: PrincipalDep
) -> Envelope[dict[str, Any]]:
    activated = await asyncio.to_thread(services.resources.versions.activate, version)
    return ok(activated.as_dict())


@router.delete(
    "/versions/{version}",
    response_model=Envelope[dict[str, str]],
    summary="Drop a version that is not the active one",
    responses=error_responses(404, 409),
)
async def delete_version(
    version: str, services: ServicesDep, _: PrincipalDep
) -> Envelope[dict[str, str]]:
    await _reindex(services).delete_version(version)
    return ok({"version": version, "deleted": "true"})


@router.post(
    "/reindex",
    response_model=Envelope[dict[str, Any]],
    status_code=202,
    summary="Rebuild every document into the configured settings' version, then switch to it",
    responses=error_responses(409),
)
async def start_reindex(services: ServicesDep, _: PrincipalDep) -> Envelope[dict[str, Any]]:
    return ok(await _reindex(services).start())


@router.get(
    "/reindex",
    response_model=Envelope[dict[str, Any]],
    summary="Progress of the running (or last) re-index: documents, chunks, rate, ETA",
    responses=error_responses(404),
)
async def reindex_status(services: ServicesDep, _: PrincipalDep) -> Envelope[dict[str, Any]]:
    return ok(await _reindex(services).status())


@router.post(
    "/reindex/{action}",
    response_model=Envelope[dict[str, Any]],
    summary="Pause, resume or cancel the running re-index, or retry its failed documents",
    responses=error_responses(409),
)
async def steer_reindex(
    action: Action, services: ServicesDep, _: PrincipalDep
) -> Envelope[dict[str, Any]]:
    return ok(await _reindex(services).signal(action))
