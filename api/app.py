"""The FastAPI application factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.access_log import install_redaction
from api.body_limits import RequestSizeLimit
from api.envelope import error_responses
from api.errors import install_error_handlers
from api.guard import BrowserGuard
from api.observability import RequestMetrics, fastapi_telemetry
from api.routes import chat, documents, health, index, metrics, pages, processing, search, web
from api.services import Services
from core.auth import Authenticator
from core.chat.ask_limits import AskLimiter
from core.chat.broadcasters import broadcaster_for
from core.chat.service import ChatService
from core.ingestion.backlog import QUEUE_METRICS
from core.ingestion.service import IngestionService
from core.ingestion.sweeper import start_sweeper_for
from core.llm import ModelRegistry
from core.llm.llama_cpp import LlamaCppChatModel
from core.observability import log_context
from core.observability.activity_metrics import ContextThreadPoolExecutor
from core.observability.metrics import WEBSOCKET_CONNECTIONS
from core.observability.tracing import configure_tracing, tracing_enabled
from core.runtime import Resources, freeze_startup_heap, open_resources
from core.search.embeddings import Embedder
from core.search.local_qdrant import LocalQdrantClaim
from core.settings import Settings, get_settings
from core.temporal import connect_temporal

log = logging.getLogger("docchat.api")


async def _warm_up(resources: Resources, registry: ModelRegistry) -> None:
    try:
        await asyncio.to_thread(resources.embedder)
        embedded = registry.get(None)
        if isinstance(embedded, LlamaCppChatModel):
            await embedded.load()
    except Exception:  # a model that fails to load reports itself on first use, typed
        log.warning("model warm-up failed", exc_info=True)
    freeze_startup_heap()


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    models: ModelRegistry | None = None,
) -> FastAPI:
    """``embedder`` and ``models`` replace the ones built from settings (the app closes them)."""
    settings = settings or get_settings()
    if problem := settings.exposure_problem():
        raise RuntimeError(problem)
    log_context.install()
    configure_tracing(settings, service_name="docchat-api")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # First: without a Qdrant server, the local folder must not be another process's.
        claim = LocalQdrantClaim.take(settings, role="the API")
        try:
            async with serving(app):
                yield
        finally:
            if claim is not None:
                claim.release()

    @contextlib.asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        resources = await asyncio.to_thread(open_resources, settings, embedder=embedder)
        client = await connect_temporal(settings)
        registry = models or ModelRegistry.from_settings(settings)
        ingestion = IngestionService(resources, client)
        # With DOCCHAT_BROADCAST_URL, session events reach the clients of every API replica.
        broadcaster = broadcaster_for(settings.broadcast_url)
        chat_service = ChatService(resources, registry, tasks=ingestion, broadcaster=broadcaster)
        app.state.services = Services(
            resources=resources,
            temporal=client,
            ingestion=ingestion,
            chat=chat_service,
        )
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(registry.aclose)
            stack.push_async_callback(ingestion.aclose)
            await chat_service.start()
            stack.push_async_callback(chat_service.stop)
            # Read per scrape: the queue from SQL, the sockets from this process's manager.
            QUEUE_METRICS.attach(resources.engine)
            stack.callback(QUEUE_METRICS.detach, resources.engine)
            WEBSOCKET_CONNECTIONS.set_function(lambda: chat_service.connections.count())
            if settings.embedded_worker:
                # Imported here: only the embedded mode pulls worker code into the API process.
                from worker import build_worker, report_index, start_ingestion_processes

                # Settings that no longer match the active index version: said at start-up.
                await asyncio.to_thread(report_index, resources, strict=False)
                start_ingestion_processes(resources)
                executor = stack.enter_context(
                    ContextThreadPoolExecutor(max_workers=settings.worker_activity_slots)
                )
                worker = build_worker(
                    client, resources, executor=executor, task_queue=settings.temporal_task_queue
                )
                await stack.enter_async_context(worker)
                log.info("embedded worker polling %s", settings.temporal_task_queue)
            # Load the models in the background: start-up stays instant, and neither the first
            # search nor the first answer pays the load (seconds on a small machine).
            warm_up = asyncio.create_task(_warm_up(resources, registry), name="warm-up")
            stack.callback(warm_up.cancel)
            stack.callback(start_sweeper_for(resources).cancel)
            yield
        resources.close()

    app = FastAPI(
        title="docchat",
        summary="Durable document ingestion and chat over your documents.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(tracing=tracing_enabled(settings)),
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        openapi_url="/api/openapi.json",
        # Every route may answer these; each route declares its own others.
        responses=error_responses(400, 401, 403, 413, 422, 500),
    )
    app.state.authenticator = Authenticator(settings.api_keys)
    app.state.ask_limiter = AskLimiter(
        max_concurrent=settings.ask_max_concurrent,
        rate=settings.ask_rate_limit_per_second,
        burst=settings.ask_rate_limit_burst,
    )
    install_redaction()
    install_error_handlers(app)
    app.add_middleware(
        RequestSizeLimit,
        max_bytes=settings.max_request_bytes,
        exempt={"/docs/upload_file_async"},
    )
    if settings.cors_origins:
        # Keys travel in the Authorization header, never in cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    # Outermost: a refused Host or Origin reaches no route, CORS answer or body limit.
    app.add_middleware(
        BrowserGuard,
        allowed_hosts=settings.allowed_hosts,
        loopback_only=not settings.api_keys,
        allowed_origins=settings.cors_origins,
    )
    # Outermost of all: refused requests are timed too.
    app.add_middleware(RequestMetrics)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(processing.router)
    app.include_router(search.router)  # before documents: /docs/search is not a document id
    app.include_router(documents.router)
    app.include_router(pages.router)
    app.include_router(chat.router)
    app.include_router(index.router)
    web.install(app)  # the web page at / and its files under /static
    return app
