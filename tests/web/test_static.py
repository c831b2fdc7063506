"""The page's files: served by the API, open without a key, and nothing fetched elsewhere."""

from __future__ import annotations

import re

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client
from tests.servers import LiveApi

FILES = {"/": "text/html", "/static/app.js": "text/javascript", "/static/app.css": "text/css"}


async def test_the_page_and_its_files_are_served_locally(web: LiveApi) -> None:
    for path, kind in FILES.items():
        response = await web.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind), response.headers
        # No CDN, no web font, no remote anything: every URL is relative to the server.
        assert not re.search(r"(src|href)=\"(https?:)?//", response.text), path
        assert "import(" not in response.text and "@import" not in response.text
    page = (await web.http.get("/")).text
    assert '<script src="/static/app.js" defer>' in page
    assert '<link rel="stylesheet" href="/static/app.css">' in page
    missing = await web.http.get("/static/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["error_code"] == "not_found"


async def test_the_page_needs_no_key_but_the_api_does(
    settings: Settings, embedder: Embedder
) -> None:
    settings.api_keys = {"page-test-key-0123456789": "alice"}
    async with api_client(settings, embedder) as client:
        for path in FILES:
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/docs")).status_code == 401
        allowed = await client.get(
            "/docs", headers={"Authorization": "Bearer page-test-key-0123456789"}
        )
        assert allowed.status_code == 200
