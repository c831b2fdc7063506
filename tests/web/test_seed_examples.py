"""The seed's own examples, run as written against a real server: its JavaScript snippets
(§4.1, §4.2, §4.3, §6.3) verbatim in Chromium on the page's origin, and its curl commands (§6).

The seed writes its examples for a server at ``localhost:8000``; this server listens on a free
port. The harness (installed before any page script) only points ``ws://localhost:8000`` at it,
and holds a ``send`` made while the socket is still connecting until it opens, as the seed's
§4.1 assumes (a browser would throw there). The snippets are read from the seed file itself,
so a change to either side fails here. The functions they call and leave to the reader
(``appendToMessage``, ``updateProgressBar``, ``showSuccess``) and the ``formData`` and
``sessionId`` they use are defined by the test, and record what they are given.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, ConsoleMessage, Page
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.servers import LiveApi, live_api
from tests.web.conftest import SLOW_MS

SEED = Path("/work/shared/seed/000_c175b70a8e646331.txt")
SEED_ORIGIN = "localhost:8000"

HARNESS = """(address) => {
  const Native = window.WebSocket;
  window.seedSockets = [];
  class SeedWebSocket extends Native {
    constructor(url, protocols) {
      const seed = String(url).startsWith("ws://SEED_ORIGIN/");
      super(seed ? String(url).replace("SEED_ORIGIN", address) : url, protocols);
      this.held = [];
      this.addEventListener("open", () => {
        for (const data of this.held.splice(0)) super.send(data);
      });
      if (!seed) return;  // the page's own socket
      this.received = [];
      this.addEventListener("message", (event) => this.received.push(JSON.parse(event.data)));
      window.seedSockets.push(this);
    }
    send(data) {
      if (this.readyState === Native.CONNECTING) this.held.push(data);
      else super.send(data);
    }
  }
  window.WebSocket = SeedWebSocket;
}""".replace("SEED_ORIGIN", SEED_ORIGIN)


def seed_snippets(language: str) -> dict[str, str]:
    """Each ``language`` code block of the seed, by the heading (``4.1`` ...) it is under."""
    text = SEED.read_text()
    found: dict[str, str] = {}
    heading = ""
    for block in re.split(r"^(#+ .*)$", text, flags=re.MULTILINE):
        number = re.match(r"#+ (\d+\.\d+) ", block)
        if number:
            heading = number[1]
            continue
        for code in re.findall(rf"```{language}\n(.*?)```", block, flags=re.DOTALL):
            found[heading] = code
    return found


@pytest.fixture(scope="module")
def snippets() -> dict[str, str]:
    if not SEED.exists():
        pytest.skip(f"the seed is not at {SEED}")
    found = seed_snippets("javascript")
    assert set(found) == {"4.1", "4.2", "4.3", "6.3"}, sorted(found)
    return found


@pytest_asyncio.fixture(scope="module")
async def seed_server(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[LiveApi]:
    """A server of its own: a fresh database, so the seed's session 1 is the first made."""
    data_dir = tmp_path_factory.mktemp("seed") / "data"
    async with live_api(data_dir, temporal_env, embedder, corpus, ingest=False) as api:
        created = await api.http.post("/chat/sessions", json={"title": "the seed's session"})
        assert created.status_code == 201, created.text
        assert created.json()["data"]["id"] == 1
        yield api


async def seed_page(context: BrowserContext, server: LiveApi) -> tuple[Page, list[str]]:
    """The page on the server's origin with the harness; its console and script errors."""
    page = await context.new_page()
    logged: list[str] = []

    def console(message: ConsoleMessage) -> None:
        logged.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: logged.append(f"pageerror: {error}"))
    address = server.url.removeprefix("http://")
    await page.add_init_script(f"({HARNESS})({json.dumps(address)})")
    await page.goto(server.url + "/")
    return page, logged


async def run_module(page: Page, code: str) -> None:
    """Run ``code`` as a module script (the seed's snippets use top-level ``await``)."""
    await page.add_script_tag(content=code, type="module")


async def test_seed_4_1_chat_over_the_websocket_with_mistral(
    seed_server: LiveApi, context: BrowserContext, snippets: dict[str, str]
) -> None:
    page, logged = await seed_page(context, seed_server)
    await page.evaluate("() => { window.appended = []; }")
    await run_module(
        page,
        "const appendToMessage = (text) => window.appended.push(text);\n" + snippets["4.1"],
    )
    socket = "window.seedSockets[window.seedSockets.length - 1]"
    await page.wait_for_function(
        f"() => {socket}.received.some((m) => m.type === 'complete' || m.type === 'error')",
        timeout=SLOW_MS,
    )
    received: list[dict[str, Any]] = await page.evaluate(f"() => {socket}.received")
    appended: list[str] = await page.evaluate("() => window.appended")
    kinds = [message["type"] for message in received]
    assert "error" not in kinds, received
    assert not [line for line in logged if line.startswith("pageerror")], logged
    # The typing indicator reached the session, the question was answered by the default
    # model (said first), and every chunk was appended.
    assert any(m["type"] == "typing_update" and m["user_id"] == "user123" for m in received)
    fallback = next(m for m in received if m["type"] == "model_fallback")
    assert fallback["requested_model"] == "mistral" and fallback["model"] == "smollm2"
    assert kinds.index("model_fallback") < kinds.index("chunk")
    complete = received[-1]
    assert complete["type"] == "complete" and complete["model_fallback"] == {
        key: fallback[key] for key in ("requested_model", "model", "reason", "detail")
    }
    assert appended and "".join(appended).strip() == complete["content"]


async def test_seed_4_2_upload_with_progress(
    seed_server: LiveApi, context: BrowserContext, snippets: dict[str, str], corpus: Path
) -> None:
    page, logged = await seed_page(context, seed_server)
    pdf = base64.b64encode((corpus / "pdflatex-4-pages.pdf").read_bytes()).decode()
    await page.evaluate("() => { window.progress = []; window.succeeded = false; }")
    harness = f"""
const updateProgressBar = (value) => window.progress.push(value);
const showSuccess = () => {{ window.succeeded = true; }};
const bytes = Uint8Array.from(atob("{pdf}"), (c) => c.charCodeAt(0));
const formData = new FormData();
formData.append("file", new File([bytes], "seed-4-2.pdf", {{type: "application/pdf"}}));
"""
    await run_module(page, harness + snippets["4.2"])
    await page.wait_for_function("() => window.succeeded", timeout=SLOW_MS)
    progress: list[float] = await page.evaluate("() => window.progress")
    assert not [line for line in logged if line.startswith("pageerror")], logged
    assert progress[-1] == 100.0, progress
    assert progress == sorted(progress), "the bar never goes back"


async def test_seed_4_2_status_values_are_the_seeds(seed_server: LiveApi, corpus: Path) -> None:
    # What §4.2's loop compares against: every status it can see is one of the seed's values.
    seed_values = {"pending", "uploading", "extracting", "chunking", "vectorizing", "completed"}
    with (corpus / "minimal-document.pdf").open("rb") as file:
        accepted = await seed_server.http.post(
            "/docs/upload_file_async", files={"file": ("seed.pdf", file, "application/pdf")}
        )
    task_id = accepted.json()["task_id"]
    assert accepted.json()["data"]["status"] == "pending"
    seen: list[str] = []
    for _ in range(1200):
        status = (await seed_server.http.get(f"/docs/processing/{task_id}/status")).json()
        seen.append(status["data"]["status"])
        if seen[-1] == "completed":
            break
        await asyncio.sleep(0.1)
    assert seen[-1] == "completed" and set(seen) <= seed_values, seen


async def test_seed_4_3_typing_indicators(
    seed_server: LiveApi, context: BrowserContext, snippets: dict[str, str]
) -> None:
    page, logged = await seed_page(context, seed_server)
    await run_module(
        page, "const sessionId = 1;\n" + snippets["4.3"] + "\nwindow.typingUsers = typingUsers;"
    )
    await page.wait_for_function("() => window.typingUsers !== undefined")
    typing_users: dict[str, Any] = await page.evaluate("() => window.typingUsers")
    assert not [line for line in logged if line.startswith("pageerror")], logged
    assert typing_users["success"] is True
    assert [user["user_id"] for user in typing_users["data"]] == ["user123"]


async def test_seed_6_3_websocket_connection_test(
    seed_server: LiveApi, context: BrowserContext, snippets: dict[str, str]
) -> None:
    page, logged = await seed_page(context, seed_server)
    await run_module(page, snippets["6.3"])
    await page.wait_for_function("() => window.seedSockets.length > 0")
    deadline = asyncio.get_running_loop().time() + 30
    while not any(line.startswith("Message:") for line in logged):
        assert asyncio.get_running_loop().time() < deadline, logged
        await asyncio.sleep(0.05)
    assert "Connected" in logged
    message = next(line for line in logged if line.startswith("Message:"))
    assert json.loads(message.removeprefix("Message:").strip())["type"] == "connected"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_seed_6_curl_examples_run_as_written(seed_server: LiveApi) -> None:
    commands = list(seed_snippets("bash").values())
    assert [c.strip() for c in commands] == [
        "curl http://localhost:8000/docs/processing/active",
        "curl http://localhost:8000/docs/processing/123/status",
    ]
    port = seed_server.url.rsplit(":", 1)[1]
    answers = []
    for command in commands:
        # As written; curl is only told where localhost:8000 is in this test.
        args = [*command.split(), "--connect-to", f"localhost:8000:127.0.0.1:{port}", "-s"]
        args += ["-w", "\n%{http_code}"]
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err
        body, _, code = out.decode().rpartition("\n")
        answers.append((int(code), json.loads(body)))
    (active_code, active), (missing_code, missing) = answers
    assert active_code == 200 and active["success"] is True
    seed_values = {"pending", "uploading", "extracting", "chunking", "vectorizing"}
    assert all(task["status"] in seed_values for task in active["data"]), active
    assert missing_code == 404 and missing["success"] is False
    assert missing["error"]["error_code"] == "task_not_found"
    assert set(missing["error"]) == {"error_code", "message", "details", "timestamp"}
