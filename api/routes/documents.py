"""Document upload and management under ``/docs``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import MAX_OFFSET, IngestionDep, PrincipalDep, SettingsDep
from api.envelope import Envelope, error_responses, ok
from api.schemas import DocumentPublic, UploadAccepted, UploadEnvelope
from core.ingestion.service import StartedTask
from core.ingestion.uploads import FILE_FIELD, REPLACES_FIELD, ReceivedFile, receive_pdf
from core.settings import Settings

router = APIRouter(prefix="/docs", tags=["documents"])


def _multipart_body(fields: dict[str, dict[str, str]]) -> dict[str, object]:
    """The OpenAPI request body of a multipart upload: the required file, and ``fields``."""
    properties = {FILE_FIELD: {"type": "string", "format": "binary"}, **fields}
    schema = {"type": "object", "required": [FILE_FIELD], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


_REPLACES_PROPERTY = {
    "type": "string",
    "description": "Optional: the id of the document this file is a new version of "
    "(as PUT /docs/{id}/file).",
}
_UPLOAD_BODY = _multipart_body({REPLACES_FIELD: _REPLACES_PROPERTY})
# PUT /docs/{id}/file names the document in its path, not in a field.
_REPLACE_BODY = _multipart_body({})


@router.post(
    "/upload_file_async",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadEnvelope,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": UploadEnvelope, "description": "The same bytes were uploaded before"},
        # 404 and 409: the `replaces` field names a document that is not the caller's or busy
        **error_responses(404, 409, 415, 429, 503),
    },
    summary="Upload a PDF; ingestion runs as a durable workflow",
    description="Answers 202 with the new task, or 200 with `duplicate: true` and the existing "
    "document's task when the same bytes were uploaded before.",
)
async def upload_file_async(
    request: Request,
    response: Response,
    ingestion: IngestionDep,
    settings: SettingsDep,
    owner: PrincipalDep,
) -> UploadEnvelope:
    await ingestion.admit(owner=owner)  # 429 before a byte of a refused upload is stored
    received = await _receive(request, settings)
    if received.replaces:
        started = await ingestion.replace(received.replaces, received, owner=owner)
    else:
        started = await ingestion.start(received, owner=owner)
    return _accepted(started, received, response)


@router.put(
    "/{document_id}/file",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadEnvelope,
    openapi_extra=_REPLACE_BODY,
    responses={
        200: {"model": UploadEnvelope, "description": "The document already has these bytes"},
        **error_responses(404, 409, 415, 429, 503),
    },
    summary="Upload a new version of a document; only its changed chunks are embedded",
    description="Runs the ingestion workflow on the new file; search keeps answering from the "
    "current version until the new one is complete, then from the new one only. Answers 202 "
    "with the new task, or 200 with `duplicate: true` when the bytes are the current ones.",
)
async def replace_document_file(
    document_id: str,
    request: Request,
    response: Response,
    ingestion: IngestionDep,
    settings: SettingsDep,
    owner: PrincipalDep,
) -> UploadEnvelope:
    await ingestion.admit(owner=owner)  # a new version is a workflow too: the same backlog cap
    received = await _receive(request, settings)
    started = await ingestion.replace(document_id, received, owner=owner)
    return _accepted(started, received, response)


async def _receive(request: Request, settings: Settings) -> ReceivedFile:
    """Stream the multipart upload to disk, within the size cap, its format told by its bytes."""
    return await receive_pdf(
        request.stream(),
        request.headers.get("content-type"),
        directory=settings.uploads_dir,
        max_bytes=settings.max_upload_bytes,
    )


def _accepted(started: StartedTask, received: ReceivedFile, response: Response) -> UploadEnvelope:
    task = started.task
    if started.duplicate:
        # Same bytes as a document this principal already has: nothing new to ingest.
        response.status_code = status.HTTP_200_OK
    accepted = UploadAccepted(
        task_id=task.id,
        document_id=task.document_id,
        workflow_id=task.workflow_id,
        filename=received.filename,
        size_bytes=received.size_bytes,
        status=task.status,
        state=task.state,
        duplicate=started.duplicate,
        status_url=f"/docs/processing/{task.id}/status",
        events_url=f"/docs/processing/{task.id}/events",
    )
    envelope = ok(accepted)
    return UploadEnvelope(
        success=True,
        data=accepted,
        metadata=envelope.metadata,
        task_id=task.id,
        document_id=task.document_id,
    )


@router.get("", response_model=Envelope[list[DocumentPublic]], summary="List documents")
async def list_documents(
    ingestion: IngestionDep,
    owner: PrincipalDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Envelope[list[DocumentPublic]]:
    rows = await ingestion.documents(owner=owner, limit=limit, offset=offset)
    return ok([DocumentPublic.of(row) for row in rows], limit=limit, offset=offset)


@router.get(
    "/{document_id}",
    response_model=Envelope[DocumentPublic],
    summary="One document, with the number of its vectors in Qdrant",
    responses=error_responses(404),
)
async def get_document(
    document_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[DocumentPublic]:
    found = await ingestion.document_details(document_id, owner=owner)
    return ok(
        DocumentPublic.of(found.document, task_id=found.task_id, vector_count=found.vector_count)
    )


@router.delete(
    "/{document_id}",
    response_model=Envelope[dict[str, str]],
    summary="Delete a document: cancels its ingestion, removes file, rows and vectors",
    responses=error_responses(404),
)
async def delete_document(
    document_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[dict[str, str]]:
    await ingestion.delete_document(document_id, owner=owner)
    return ok({"document_id": document_id, "deleted": "true"})
