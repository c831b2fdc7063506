"""The document API: envelopes on every path, listing, and delete that leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status

ENVELOPE_KEYS = {"success", "data", "error", "metadata"}
ERROR_KEYS = {"error_code", "message", "details", "timestamp"}


def assert_error(body: dict[str, object], code: str) -> None:
    assert set(body) >= ENVELOPE_KEYS
    assert body["success"] is False
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS
    assert error["error_code"] == code


async def test_errors_use_the_envelope(settings: Settings, embedder: Embedder) -> None:
    async with api_client(settings, embedder) as client:
        missing_task = await client.get("/docs/processing/nope/status")
        assert missing_task.status_code == 404
        assert_error(missing_task.json(), "task_not_found")

        missing_doc = await client.get("/docs/nope")
        assert missing_doc.status_code == 404
        assert_error(missing_doc.json(), "document_not_found")

        unknown_route = await client.get("/no/such/route")
        assert unknown_route.status_code == 404
        assert_error(unknown_route.json(), "not_found")

        invalid = await client.get("/docs", params={"limit": 0})
        assert invalid.status_code == 422
        assert_error(invalid.json(), "validation_error")

        wrong_method = await client.put("/docs/upload_file_async")
        assert wrong_method.status_code == 405
        assert_error(wrong_method.json(), "method_not_allowed")


async def test_bad_uploads_are_refused_and_leave_nothing(
    settings: Settings, embedder: Embedder
) -> None:
    async with api_client(settings, embedder) as client:
        binary = bytes(range(256)) * 4  # no accepted format, whatever the name says
        not_pdf = await client.post(
            "/docs/upload_file_async", files={"file": ("report.pdf", binary, "application/pdf")}
        )
        assert not_pdf.status_code == 415
        assert_error(not_pdf.json(), "unsupported_format")
        assert "EPUB" in not_pdf.json()["error"]["details"]["accepted"]

        empty = await client.post(
            "/docs/upload_file_async", files={"file": ("empty.pdf", b"", "application/pdf")}
        )
        assert empty.status_code == 422
        assert_error(empty.json(), "empty_file")

        wrong_field = await client.post(
            "/docs/upload_file_async", files={"document": ("a.pdf", b"%PDF-1.4", "x")}
        )
        assert wrong_field.status_code == 422
        assert_error(wrong_field.json(), "missing_file")

        listing = (await client.get("/docs")).json()
        assert listing["data"] == []
    assert list(settings.uploads_dir.iterdir()) == []


async def test_list_get_and_delete(settings: Settings, embedder: Embedder, corpus: Path) -> None:
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "minimal-document.pdf", "../../etc/x.pdf")).json()
        document_id = accepted["document_id"]
        final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed"

        listing = (await client.get("/docs")).json()["data"]
        assert [item["id"] for item in listing] == [document_id]
        assert listing[0]["filename"] == "x.pdf"  # the path parts are gone
        document = (await client.get(f"/docs/{document_id}")).json()["data"]
        assert document["vector_count"] == document["chunk_count"] > 0
        assert document["task_id"] == accepted["task_id"]

        deleted = await client.delete(f"/docs/{document_id}")
        assert deleted.status_code == 200, deleted.text
        assert (await client.get(f"/docs/{document_id}")).status_code == 404
        status = await client.get(f"/docs/processing/{accepted['task_id']}/status")
        assert status.status_code == 404
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        assert services.resources.vectors.count(document_id) == 0
    assert list(settings.uploads_dir.iterdir()) == []
    assert not (settings.artifacts_dir / document_id).exists()


async def test_delete_cancels_a_running_ingest(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "GeoTopo-komprimiert.pdf")).json()
        await wait_for_status(client, accepted["task_id"], until={"running"})
        deleted = await client.delete(f"/docs/{accepted['document_id']}")
        assert deleted.status_code == 200, deleted.text
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        assert services.resources.vectors.count(accepted["document_id"]) == 0
        workflow = services.temporal.get_workflow_handle(accepted["data"]["workflow_id"])
        description = await workflow.describe()
        assert description.status.name in {"CANCELED", "TERMINATED"}
    assert list(settings.uploads_dir.iterdir()) == []


async def test_health_reports_each_component(settings: Settings, embedder: Embedder) -> None:
    async with api_client(settings, embedder) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    components = response.json()["data"]["components"]
    assert set(components) >= {"database", "temporal", "vector_store"}
    assert all(component["ok"] for component in components.values())
