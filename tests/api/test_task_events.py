"""Server-Sent Events push a task's progress until it ends."""

from __future__ import annotations

import json
from pathlib import Path

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload


def parse_sse(body: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        events.append((name, json.loads(data)))
    return events


async def test_events_stream_progress_until_completed(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        response = await client.get(f"/docs/processing/{accepted['task_id']}/events")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)

        names = [name for name, _ in events]
        assert names[-1] == "end" and set(names[:-1]) == {"progress"}
        assert len(names) >= 3
        progress = [float(str(data["progress_percentage"])) for _, data in events]
        assert progress == sorted(progress)
        assert events[-1][1]["status"] == "completed"

        late = parse_sse((await client.get(f"/docs/processing/{accepted['task_id']}/events")).text)
        # A late joiner gets the current (final) state first, then the end.
        assert [name for name, _ in late] == ["progress", "end"]
        assert late[0][1]["status"] == "completed"

        missing = await client.get("/docs/processing/nope/events")
        assert missing.status_code == 404
        assert missing.json()["error"]["error_code"] == "task_not_found"
