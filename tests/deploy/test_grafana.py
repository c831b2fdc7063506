"""The compose stack's Grafana: its provisioning is wired to what compose mounts, and every
PromQL expression of the dashboard names a metric that docchat or the Temporal SDK really
exports (a real ingest, then real scrapes of the API's /metrics and of the SDK's port)."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.deploy.test_compose import ROOT, environment, load_yaml
from tests.helpers import api_client, free_port, stack_settings, upload, wait_for_status
from tests.pdfs import text_pdf

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "docchat.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "docchat.yml"

# PromQL words that look like names but are not metrics.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Not inside a number or a duration (the "m" of 5m).
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


# --- reading the dashboard -----------------------------------------------------------------


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, grouping labels, label
    matchers, ranges and string literals taken out first)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if not rest.startswith("(") and match.group().lower() not in KEYWORDS:
            names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """Labels an expression groups by or matches on."""
    found = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",")}
    for selector in re.findall(r"\{([^}]*)\}", expr):
        found.update(MATCHER.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', selector)))
    return found - {""}


# --- what the services really export --------------------------------------------------------


class Exported:
    """Sample names (``_bucket``, ``_count``, ``_total``… included) and, for those with
    samples, their label names, from Prometheus text exposition."""

    def __init__(self) -> None:
        self.labels: dict[str, set[str]] = {}

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            # A labelled family with no samples yet still declares its name and type.
            for suffix in SUFFIXES.get(family.type, ("",)):
                self.labels.setdefault(family.name + suffix, set())
            for sample in family.samples:
                self.labels.setdefault(sample.name, set()).update(sample.labels)

    def unknown(self, dashboard: dict[str, Any]) -> list[str]:
        """What the dashboard reads that is not exported: metrics, and labels of metrics
        seen with samples."""
        problems = []
        for title, expr in expressions(dashboard):
            names = metric_names(expr)
            if not names:
                problems.append(f"{title}: {expr!r} reads no metric")
            for name in sorted(names - set(self.labels)):
                problems.append(f"{title}: no metric {name}")
            for name in sorted(names & set(self.labels)):
                seen = self.labels[name] | ({"le"} if name.endswith("_bucket") else set())
                if self.labels[name] and (missing := label_names(expr) - seen):
                    problems.append(f"{title}: {name} has no label {sorted(missing)}")
        return problems


SUFFIXES = {
    "histogram": ("_bucket", "_count", "_sum"),
    "counter": ("_total",),
    "gauge": ("",),
}


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


def activity_slots(text: str, task_queue: str) -> float:
    """Activity slots of the queue's worker, used and available, as the SDK reports them."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name in (
            "temporal_worker_task_slots_available",
            "temporal_worker_task_slots_used",
        ):
            for sample in family.samples:
                labels = sample.labels
                if labels.get("task_queue") == task_queue and labels.get("worker_type") == (
                    "ActivityWorker"
                ):
                    total += sample.value
    return total


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def grafana() -> dict[str, Any]:
    service: dict[str, Any] = load_yaml((ROOT / "docker-compose.yml").read_text())["services"][
        "grafana"
    ]
    return service


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository path of each bind mount from the repository."""
    found = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source
    return found


# --- tests ------------------------------------------------------------------------------------


def test_compose_mounts_the_provisioning_and_the_dashboards(grafana: dict[str, Any]) -> None:
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    for source in mounted.values():
        assert (ROOT / source).is_dir(), source
    # Grafana's own state (users, sessions) outlives the container.
    assert "grafana-data:/var/lib/grafana" in grafana["volumes"]
    # The dashboards provider reads the folder compose mounts the dashboard JSON into.
    [provider] = yaml.safe_load(PROVIDERS.read_text())["providers"]
    folder = provider["options"]["path"]
    assert (ROOT / mounted[folder] / DASHBOARD.name).is_file()
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{folder}/{DASHBOARD.name}"
    # Grafana has a login, but like Prometheus it is published on loopback only.
    assert all(port.startswith("127.0.0.1:") for port in grafana["ports"])
    assert grafana["image"].startswith("grafana/grafana-oss:")


def test_the_datasource_is_the_compose_prometheus_and_every_panel_uses_it(
    grafana: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    services = load_yaml((ROOT / "docker-compose.yml").read_text())["services"]
    [source] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["type"] == "prometheus"
    host_port = source["url"].removeprefix("http://")
    host, port = host_port.split(":")
    assert host in services and host in grafana["depends_on"]
    # Prometheus listens on the container port compose publishes.
    assert any(published.endswith(f":{port}") for published in services[host]["ports"])
    ids = []
    for panel in panels(dashboard):
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_the_name_reader_sees_metrics_not_functions_labels_or_ranges() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(docchat_http_request_duration_"
        'seconds_bucket{route!="unmatched", method=~"GET|POST"}[$__rate_interval])))'
        " / ignoring (route) max(docchat_websocket_connections offset 5m)"
    )
    assert metric_names(expr) == {
        "docchat_http_request_duration_seconds_bucket",
        "docchat_websocket_connections",
    }
    assert label_names(expr) == {"le", "route", "method"}


async def test_every_dashboard_expression_reads_a_metric_the_code_exports(
    tmp_path: Path,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    dashboard: dict[str, Any],
) -> None:
    sdk_port = free_port()
    settings = stack_settings(
        tmp_path / "data",
        temporal_env,
        temporal_sdk_metrics_port=sdk_port,
        worker_metrics_host="127.0.0.1",
        # Not the default 4: the SDK's slot gauges below show the setting reached the worker.
        worker_activity_slots=3,
    )
    wanted = set().union(*(metric_names(expr) for _, expr in expressions(dashboard)))
    exported = Exported()
    pdf = tmp_path / "small.pdf"
    pdf.write_bytes(text_pdf([["A small page for the dashboard's metrics."] * 4]))
    async with api_client(settings, embedder) as client:
        # An ingest, so the step histograms and the SDK's activity metrics have samples.
        accepted = (await upload(client, pdf)).json()
        final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed", final
        exported.add((await client.get("/metrics")).text)
        # The SDK exports on its own schedule: read until its names are there (or 30 s).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        sdk = Exported()
        while True:
            sdk_text = await asyncio.to_thread(scrape, f"http://127.0.0.1:{sdk_port}/metrics")
            sdk.add(sdk_text)
            temporal_wanted = {name for name in wanted if name.startswith("temporal_")}
            if temporal_wanted <= set(sdk.labels) or loop.time() > deadline:
                break
            await asyncio.sleep(0.5)
    exported.labels.update(sdk.labels)

    assert exported.unknown(dashboard) == []
    assert activity_slots(sdk_text, settings.temporal_task_queue) == 3
    # Both sources are read: docchat's own metrics and the SDK's.
    assert any(name.startswith("docchat_") for name in wanted)
    assert any(name.startswith("temporal_") for name in wanted)
    # The check fires: a misspelt metric, a missing label and a query of no metric.
    broken = copy.deepcopy(dashboard)
    targets = [t for p in panels(broken) for t in p.get("targets", [])]
    targets[0]["expr"] = "sum(rate(docchat_http_request_seconds_count[5m]))"
    targets[1]["expr"] = "sum by (path) (rate(docchat_http_request_duration_seconds_count[5m]))"
    targets[2]["expr"] = "vector(1)"
    problems = exported.unknown(broken)
    assert any("no metric docchat_http_request_seconds_count" in p for p in problems)
    assert any("no label ['path']" in p for p in problems)
    assert any("reads no metric" in p for p in problems)
