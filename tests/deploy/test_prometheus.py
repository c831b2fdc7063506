"""The compose stack's Prometheus scrapes what the services serve: by configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings
from tests.deploy.test_compose import environment, load_yaml

REPO = Path(__file__).resolve().parent.parent.parent
PROMETHEUS_FILE = REPO / "deploy" / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml((REPO / "docker-compose.yml").read_text())
    return dict(doc["services"])


@pytest.fixture(scope="module")
def jobs() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_mounts_the_scrape_config(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # Its UI has no login: loopback only.
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])


def test_the_api_job_scrapes_the_api_port_and_path(
    services: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    api = services["api"]
    port = api["command"][api["command"].index("--port") + 1]
    job = jobs["docchat-api"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"api:{port}"]
    # /metrics must be readable without a key for this job (it sends none).
    assert Settings().metrics_access == "open"
    assert "DOCCHAT_METRICS_ACCESS" not in environment(api)


def test_worker_jobs_find_every_replica_on_the_ports_the_worker_serves(
    services: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    workers = ["worker", "embedding-worker"]  # the text and the embedding workers
    for job_name, variable in (
        ("docchat-worker", "DOCCHAT_WORKER_METRICS_PORT"),
        ("temporal-sdk", "DOCCHAT_TEMPORAL_SDK_METRICS_PORT"),
    ):
        [discovery] = jobs[job_name]["dns_sd_configs"]
        assert discovery["names"] == workers  # all replicas of `--scale worker=N`
        for name in workers:
            assert str(discovery["port"]) == environment(services[name])[variable]
    for name in workers:
        env = environment(services[name])
        # Each worker keeps the shared settings as well (the merge key kept them).
        assert env["DOCCHAT_DATA_DIR"] == environment(services["api"])["DOCCHAT_DATA_DIR"]
        assert "ports" not in services[name]


def test_the_temporal_job_scrapes_the_servers_metrics_endpoint(
    services: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    endpoint = environment(services["temporal"])["PROMETHEUS_ENDPOINT"]
    assert endpoint is not None
    port = endpoint.rsplit(":", 1)[1]
    assert jobs["temporal-server"]["static_configs"][0]["targets"] == [f"temporal:{port}"]
