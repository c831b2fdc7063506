"""Live paths: status-endpoint latency under ingest load, the embedded chat model's
first-token latency, and WebSocket typing fan-out to 1,000 clients."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import REPO, unique_copy
from bench.procstat import rss_mb
from bench.stack import TERMINAL, Stack, running_stack, upload, wait_all
from bench.stats import percentile

LIVE_PDF = "pdflatex-4-pages.pdf"
STATUS_POLL_INTERVAL_S = 0.25  # what the /events stream and a polling UI use
CHAT_WS_PATH = "/chat/{session_id}/ws"
CHAT_SESSIONS_PATH = "/chat/sessions"
CONNECT_CONCURRENCY = 50
ROUND_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class LiveSize:
    ingest_copies: int
    sessions: int
    clients_per_session: int
    llm_runs: int

    @classmethod
    def of(cls, *, quick: bool) -> LiveSize:
        if quick:
            return cls(ingest_copies=5, sessions=10, clients_per_session=10, llm_runs=3)
        return cls(ingest_copies=20, sessions=100, clients_per_session=10, llm_runs=10)


async def run_live(
    files: Sequence[Path], workdir: Path, logs: Path, *, quick: bool
) -> dict[str, Any]:
    size = LiveSize.of(quick=quick)
    chat = _chat_routes(workdir / "probe")
    result: dict[str, Any] = {}
    async with running_stack(workdir, logs) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
            # Fan-out first, on the idle server: its memory per connection is then measured
            # against a steady baseline, not one that ingestion moves by tens of MB. The API
            # loads its models in the background after it starts answering: wait for that too.
            await _until_memory_settles(stack.api_pid)
            if not chat["websocket"]:
                result["fanout"] = {"status": "n/a (chat WebSocket missing)"}
            elif not chat["sessions"]:
                result["fanout"] = {"status": f"n/a (no POST {CHAT_SESSIONS_PATH} route)"}
            else:
                result["fanout"] = await _guard(
                    fanout(
                        stack, http, sessions=size.sessions, per_session=size.clients_per_session
                    )
                )
            result["status_latency"] = await _guard(
                status_under_load(http, files, workdir / "copies", copies=size.ingest_copies)
            )
    result["first_token"] = await _guard(first_token(workdir, runs=size.llm_runs))
    return result


async def _until_memory_settles(
    pid: int, *, within_mb: float = 2.0, steady_s: float = 3.0, limit_s: float = 120.0
) -> None:
    """Wait until ``pid``'s resident memory has moved less than ``within_mb`` for ``steady_s``."""
    deadline = time.monotonic() + limit_s
    low = high = rss_mb(pid) or 0.0
    since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < steady_s:
        await asyncio.sleep(0.25)
        now = rss_mb(pid) or 0.0
        low, high = min(low, now), max(high, now)
        if high - low > within_mb:
            low = high = now
            since = time.monotonic()


async def _guard(work: Any) -> dict[str, Any]:
    """A live benchmark that breaks reports why, instead of ending the whole run."""
    try:
        outcome: dict[str, Any] = await work
    except Exception as exc:
        return {"status": f"error: {type(exc).__name__}: {exc}"[:300]}
    return outcome


# --- status endpoint under ingest load ------------------------------------------------------


async def status_under_load(
    http: httpx.AsyncClient, files: Sequence[Path], folder: Path, *, copies: int
) -> dict[str, Any]:
    source = _live_source(files)
    # The first document loads the model; the load is not what this measures.
    warm = await upload(http, unique_copy(source, folder / "warmup.pdf"))
    await wait_all(http, [warm["task_id"]], interval=0.1)

    paths = [unique_copy(source, folder / f"copy-{i:02d}.pdf") for i in range(copies)]
    status_ms: list[float] = []
    upload_ms: list[float] = []

    async def follow(path: Path) -> None:
        clock = time.perf_counter()
        receipt = await upload(http, path)
        upload_ms.append((time.perf_counter() - clock) * 1000)
        while True:
            clock = time.perf_counter()
            response = await http.get(f"/docs/processing/{receipt['task_id']}/status")
            status_ms.append((time.perf_counter() - clock) * 1000)
            response.raise_for_status()
            if response.json()["data"]["status"] in TERMINAL:
                return
            await asyncio.sleep(STATUS_POLL_INTERVAL_S)

    started = time.perf_counter()
    await asyncio.gather(*(follow(path) for path in paths))
    return {
        "status": "ok",
        "documents": copies,
        "source": source.name,
        "ingest_s": time.perf_counter() - started,
        "requests": len(status_ms),
        "poll_interval_s": STATUS_POLL_INTERVAL_S,
        "p50_ms": percentile(status_ms, 50),
        "p90_ms": percentile(status_ms, 90),
        "p99_ms": percentile(status_ms, 99),
        "max_ms": max(status_ms, default=None),
        "upload_p50_ms": percentile(upload_ms, 50),
    }


def _live_source(files: Sequence[Path]) -> Path:
    from core.ingestion.extraction import pdf
    from core.ingestion.faults import DocumentFault

    preferred = [p for p in files if p.name == LIVE_PDF]
    for path in preferred + sorted(files, key=lambda p: p.stat().st_size):
        try:
            info = pdf.inspect_pdf(path, max_pages=50)
            pdf.require_text(list(pdf.extract_pages(path, 1, info.page_count)))
        except DocumentFault:
            continue
        return path
    raise RuntimeError("no PDF in the corpus has a text layer")


# --- WebSocket typing fan-out ---------------------------------------------------------------


def _chat_routes(data_dir: Path) -> dict[str, bool]:
    """Which chat routes the app has; building the app opens no connection."""
    from api.app import create_app
    from core.settings import Settings

    routes = list(_routes(create_app(Settings(data_dir=data_dir)).routes))
    return {
        "websocket": any(path == CHAT_WS_PATH for path, _ in routes),
        "sessions": any(path == CHAT_SESSIONS_PATH and "POST" in m for path, m in routes),
    }


def _routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """``(path, methods)`` of every route, looking into included routers (FastAPI >= 0.16x
    keeps an included router as one entry of ``app.routes``)."""
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(router.routes, prefix + (getattr(context, "prefix", "") or ""))
        else:
            yield prefix + getattr(route, "path", ""), set(getattr(route, "methods", None) or ())


@dataclass
class _Round:
    sent: dict[str, float] = field(default_factory=dict)  # user_id -> send time
    latencies_ms: list[float] = field(default_factory=list)
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Client:
    session_id: int
    user_id: str
    socket: Any


async def fanout(
    stack: Stack, http: httpx.AsyncClient, *, sessions: int, per_session: int
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    session_ids = []
    for number in range(sessions):
        response = await http.post(CHAT_SESSIONS_PATH, json={"title": f"bench {number}"})
        response.raise_for_status()
        session_ids.append(_session_id(response.json()))

    await asyncio.sleep(1.0)
    rss_before = rss_mb(stack.api_pid)
    ws_base = stack.base_url.replace("http://", "ws://", 1)
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_client(session_id: int, number: int) -> _Client:
        async with limit:
            socket = await connect(
                f"{ws_base}/chat/{session_id}/ws",
                proxy=None,
                compression=None,
                open_timeout=60,
                ping_interval=None,
                max_queue=None,
            )
            greeting = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if greeting.get("type") == "error":
                raise RuntimeError(f"the server refused a client: {greeting}")
        return _Client(session_id, f"bench-{session_id}-{number}", socket)

    started = time.perf_counter()
    clients = await asyncio.gather(
        *(open_client(sid, n) for sid in session_ids for n in range(per_session))
    )
    connect_s = time.perf_counter() - started
    current = _Round()
    readers = [asyncio.create_task(_read(client, lambda: current)) for client in clients]
    try:
        await asyncio.sleep(1.0)  # let the server settle before reading its memory
        rss_after = rss_mb(stack.api_pid)
        by_session: dict[int, list[_Client]] = {}
        for client in clients:
            by_session.setdefault(client.session_id, []).append(client)
        latencies: list[float] = []
        missing = 0
        # The clients share this process: a garbage collection here (100 ms over 1,000 open
        # sockets) would be counted as the server's latency. Python's timeit pauses it alike.
        gc.collect()
        gc.disable()
        for number in range(per_session):  # each round, a different person per session types
            current = _Round(expected=sessions * (per_session - 1))
            for members in by_session.values():
                sender = members[number]
                frame = {"type": "typing", "user_id": sender.user_id, "is_typing": True}
                current.sent[sender.user_id] = time.perf_counter()
                await sender.socket.send(json.dumps(frame))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.done.wait(), ROUND_TIMEOUT_S)
            latencies.extend(current.latencies_ms)
            missing += current.expected - len(current.latencies_ms)
            await asyncio.sleep(0.2)
    finally:
        gc.enable()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(c.socket.close() for c in clients), return_exceptions=True)
    per_connection_kib = None
    if rss_before is not None and rss_after is not None:
        per_connection_kib = (rss_after - rss_before) * 1024 / len(clients)
    return {
        "status": "ok" if latencies else "error: no typing_update was delivered",
        "clients": len(clients),
        "sessions": sessions,
        "connect_s": connect_s,
        "deliveries": len(latencies),
        "missing": missing,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=None),
        "server_rss_before_mb": rss_before,
        "server_rss_after_mb": rss_after,
        "memory_per_connection_kib": per_connection_kib,
    }


async def _read(client: _Client, current_round: Any) -> None:
    with contextlib.suppress(Exception):
        async for raw in client.socket:
            received = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") != "typing_update" or not message.get("is_typing"):
                continue
            state: _Round = current_round()
            sender = message.get("user_id")
            if sender == client.user_id or sender not in state.sent:
                continue
            state.latencies_ms.append((received - state.sent[sender]) * 1000)
            if len(state.latencies_ms) >= state.expected:
                state.done.set()


def _session_id(body: dict[str, Any]) -> int:
    data = body.get("data", body)
    return int(data["id"] if "id" in data else data["session_id"])


# --- first token of the embedded chat model -------------------------------------------------


async def first_token(workdir: Path, *, runs: int) -> dict[str, Any]:
    if not (REPO / "core" / "llm" / "registry.py").is_file():
        return {"status": "n/a (core.llm missing)"}
    from core.llm.base import ChatTurn
    from core.llm.registry import ModelRegistry
    from core.settings import Settings

    settings = Settings(data_dir=workdir / "llm")
    registry: Any = (
        ModelRegistry.from_settings(settings)
        if hasattr(ModelRegistry, "from_settings")
        else ModelRegistry(settings)  # type: ignore[call-arg,arg-type]
    )
    model = registry.get("smollm2")
    turns = [ChatTurn(role="user", content="In one sentence, what is a topological space?")]
    try:
        cold_ms, _ = await _first_piece(model, turns)
        warm_ms = [(await _first_piece(model, turns))[0] for _ in range(runs)]
        started = time.perf_counter()
        pieces = 0
        async for _ in model.stream(turns, max_tokens=64):
            pieces += 1
        decode_s = time.perf_counter() - started
    finally:
        await registry.aclose()
    return {
        "status": "ok",
        "model": model.name,
        "cold_ms": cold_ms,
        "runs": runs,
        "p50_ms": percentile(warm_ms, 50),
        "p99_ms": percentile(warm_ms, 99),
        "pieces_per_s": pieces / decode_s if decode_s > 0 else None,
    }


async def _first_piece(model: Any, turns: list[Any]) -> tuple[float, str]:
    started = time.perf_counter()
    stream = model.stream(turns, max_tokens=16)
    try:
        piece: str = await anext(stream)
    finally:
        await stream.aclose()
    return (time.perf_counter() - started) * 1000, piece
