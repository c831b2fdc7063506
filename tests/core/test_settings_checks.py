"""Start-up checks of the connection settings: each wrong value gets a message that names its
variable, says what a right value looks like, and never shows a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import ConfigurationError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DOCCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "data"))


def refusal(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(f"DOCCHAT_{name.upper()}", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("temporal_address", "http://temporal:7233", "without a scheme"),
        ("temporal_address", "temporal", "has no port"),
        ("temporal_address", "temporal:70000", "outside 1-65535"),
        ("temporal_address", "temporal:7233/x", "must be host:port"),
        ("temporal_namespace", "", "must name the namespace"),
        ("temporal_namespace", "my ns\n", "surrounding spaces or control characters"),
        ("temporal_task_queue", " docchat", "surrounding spaces"),
        ("temporal_task_queue", "/_sys/docchat", "reserved by Temporal"),
        ("temporal_tls", "maybe", "valid boolean"),
        ("qdrant_url", "qdrant:6333", "http:// or https:// URL of a Qdrant server"),
        ("qdrant_url", "http://:6333", "has no host"),
        ("qdrant_url", "http://qdrant:port", "invalid port"),
        ("database_url", "mysql://docchat@db/docchat", "supports PostgreSQL"),
        ("database_url", "postgresql+psycopg2://docchat@db/docchat", "does not ship"),
        ("database_url", "postgresql+asyncpg://docchat@db/docchat", "does not ship"),
        ("database_url", "sqlite://", "in-memory SQLite"),
        ("database_url", "postgresql+psycopg:///docchat", "names no host"),
        ("database_url", "not a url", "is not a database URL"),
        ("broadcast_url", "redis://cache:6379", "LISTEN/NOTIFY"),
        ("broadcast_url", "memory://", "LISTEN/NOTIFY"),
        ("broadcast_url", "postgresql:///docchat", "names no host"),
    ],
)
def test_each_wrong_value_is_named_and_explained(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    message = refusal(monkeypatch, **{name: value})
    assert message.startswith("invalid configuration (1 value):")
    line = message.splitlines()[1].strip()
    assert line.startswith(f"DOCCHAT_{name.upper()}"), line
    assert expected in line


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(
        monkeypatch,
        temporal_api_key="hunter2 hunter2",
        qdrant_url="http://qdrant:6333",
        qdrant_api_key="s3cret\tkey",
        database_url="mysql://docchat:hunter3@db/docchat",
        broadcast_url="redis://:hunter4@cache:6379",
    )
    assert "invalid configuration (4 values)" in message
    assert "DOCCHAT_TEMPORAL_API_KEY: must be a single token" in message
    assert "DOCCHAT_QDRANT_API_KEY: must be a single token" in message
    assert "mysql://docchat:***@db/docchat" in message
    for secret in ("hunter2", "s3cret", "hunter3", "hunter4"):
        assert secret not in message


def test_temporal_cloud_needs_an_api_key_and_a_cloud_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = "docchat.a1b2c.tmprl.cloud:7233"
    message = refusal(monkeypatch, temporal_address=cloud)
    assert "needs DOCCHAT_TEMPORAL_API_KEY" in message
    message = refusal(monkeypatch, temporal_api_key="key-123")
    assert "DOCCHAT_TEMPORAL_NAMESPACE='default' cannot be a Temporal Cloud namespace" in message
    monkeypatch.setenv("DOCCHAT_TEMPORAL_NAMESPACE", "docchat.a1b2c")
    settings = load_settings()
    assert settings.temporal_address == cloud and settings.temporal_api_key == "key-123"


def test_qdrant_key_needs_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, qdrant_api_key="key-123")
    assert "DOCCHAT_QDRANT_API_KEY is set but DOCCHAT_QDRANT_URL is not" in message
    assert "key-123" not in message


def test_a_production_configuration_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "TEMPORAL_ADDRESS": "temporal:7233",
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": "docchat-ingest",
        "TEMPORAL_TLS": "false",
        "DATABASE_URL": "postgresql+psycopg://docchat:pw@postgresql:5432/docchat",
        "BROADCAST_URL": "postgresql+psycopg://docchat:pw@postgresql:5432/docchat",
        "QDRANT_URL": "http://qdrant:6333",
        "QDRANT_API_KEY": "0123456789abcdef",
        "UPLOADS_DIR": "/srv/shared/uploads",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"DOCCHAT_{name}", value)
    settings = load_settings()
    assert settings.database_url == values["DATABASE_URL"]
    # The broker speaks libpq's own URL form.
    assert settings.broadcast_url == "postgresql://docchat:pw@postgresql:5432/docchat"
    assert settings.uploads_dir == Path("/srv/shared/uploads")
    assert settings.artifacts_dir == settings.data_dir / "artifacts"


def test_plain_postgresql_urls_mean_psycopg_and_blank_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgres://docchat:pw@db/docchat",
        broadcast_url=" ",
        qdrant_url="",
        temporal_api_key="",
    )
    assert settings.database_url == "postgresql+psycopg://docchat:pw@db/docchat"
    assert settings.broadcast_url is None and settings.qdrant_url is None
    assert settings.temporal_api_key is None
    ipv6 = Settings(temporal_address="[::1]:7233")
    assert ipv6.temporal_address == "[::1]:7233"


def test_the_worker_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DOCCHAT_TEMPORAL_ADDRESS": "https://temporal:7233",
            "DOCCHAT_DATABASE_URL": "postgresql+psycopg2://docchat:hunter2@db/docchat",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("docchat worker: invalid configuration (2 values):")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
