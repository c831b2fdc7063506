"""Static checks of the production stack: docker-compose.yml, .env.example and deploy/.

No Docker engine and no network are needed. The Compose Specification's JSON schema is vendored
at deploy/compose-spec.json (source and license in deploy/README.md); each rule is also shown to
fire on a deliberately broken copy, so a check that silently passes everything cannot hide here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.json"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init"
# sha256 of the vendored schema as shipped by check-jsonschema 0.39.0; update with the file.
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

# Settings that arrive in a later change; drop each one here once core/settings.py has it.
FUTURE_SETTINGS: set[str] = set()

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD$|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# Compose interpolation: `$$` is a literal dollar; otherwise ${NAME}, ${NAME:-default}, ...
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
ONLY_A_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:(?P<password>[^@\s]+)@")
ENV_LINE = re.compile(r"^(?P<commented>#)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# --- loading ---------------------------------------------------------------------------


class DuplicateKeyError(ValueError):
    """A YAML mapping names one key twice; PyYAML would silently keep the last value."""


def duplicate_keys(node: Any, seen: set[int] | None = None) -> list[str]:
    seen = set() if seen is None else seen
    if id(node) in seen or not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        return []  # a scalar, or a node an alias already led to
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        return [found for child in node.value for found in duplicate_keys(child, seen)]
    found, keys = [], set()
    for key, _ in node.value:
        if key.tag != "tag:yaml.org,2002:merge" and key.value in keys:
            found.append(f"{key.value!r} (line {key.start_mark.line + 1})")
        keys.add(key.value)
    for key, value in node.value:
        found += duplicate_keys(key, seen) + duplicate_keys(value, seen)
    return found


def load_yaml(text: str) -> Any:
    if found := duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader)):
        raise DuplicateKeyError(f"duplicate keys: {', '.join(sorted(set(found)))}")
    return yaml.safe_load(text)


def read_env_example() -> dict[str, tuple[str, bool]]:
    """NAME -> (value, commented_out) for each `NAME=value` or `#NAME=value` line."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ENV_LINE.match(line):
            entries[match["name"]] = (match["value"], bool(match["commented"]))
    return entries


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(COMPOSE_FILE.read_text())
    return doc


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return doc


@pytest.fixture(scope="module")
def env_example() -> dict[str, tuple[str, bool]]:
    return read_env_example()


# --- helpers ---------------------------------------------------------------------------


def strings(node: Any) -> Iterator[str]:
    """Every string value in a loaded YAML document (keys excluded, as Compose interpolates)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: (pair[1] if len(pair) == 2 else None) for pair in pairs}
    return {key: (None if value is None else str(value)) for key, value in env.items()}


def referenced_variables(doc: dict[str, Any]) -> set[str]:
    """Variables Compose reads: interpolated ones and environment keys passed through bare."""
    names = {
        match["braced"] or match["bare"]
        for text in strings(doc)
        for match in INTERPOLATION.finditer(text)
        if match.group(0) != "$$"
    }
    for service in doc["services"].values():
        names.update(key for key, value in environment(service).items() if value is None)
    return names


def variable_defaults(doc: dict[str, Any]) -> dict[str, set[str]]:
    defaults: dict[str, set[str]] = {}
    for text in strings(doc):
        for match in INTERPOLATION.finditer(text):
            if match["op"] in (":-", "-"):
                defaults.setdefault(match["braced"], set()).add(match["arg"])
    return defaults


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Resolve Compose interpolation the way `docker compose config` does, for this subset."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if not isinstance(node, str):
        return node

    def resolve(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["braced"] or match["bare"], match["op"], match["arg"]
        value = env.get(name)
        is_set = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return value if is_set else arg  # type: ignore[return-value]
        if op in (":?", "?"):
            if not is_set:
                raise KeyError(f"{name}: {arg}")
            return value  # type: ignore[return-value]
        if op in (":+", "+"):
            return arg if is_set else ""
        return value or ""

    return INTERPOLATION.sub(resolve, node)


def example_environment() -> dict[str, str]:
    """What a filled-in .env would give: the example's values, each empty secret set."""
    env = {
        name: value or f"example-{name.lower()}"
        for name, (value, commented) in read_env_example().items()
        if not commented
    }
    return env


def named_volumes(service: dict[str, Any]) -> set[str]:
    names = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                names.add(volume["source"])
        elif ":" in volume and not volume.startswith((".", "/", "~", "$")):
            names.add(volume.split(":", 1)[0])
    return names


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


# --- the rules, each returning what it found wrong ---------------------------------------


def schema_errors(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def undeclared_volumes(doc: dict[str, Any]) -> list[str]:
    declared = set(doc.get("volumes") or {})
    return [
        f"{name}: volume {volume!r} is not declared"
        for name, service in doc["services"].items()
        for volume in sorted(named_volumes(service) - declared)
    ]


def dependency_problems(doc: dict[str, Any]) -> list[str]:
    services = doc["services"]
    problems = []
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
            elif condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                if not check.get("test") or check.get("disable"):
                    problems.append(f"{name} waits for {target} to be healthy; it has no check")
            elif condition == "service_completed_successfully":
                if services[target].get("restart", "no") in ("always", "unless-stopped"):
                    problems.append(f"{name} waits for {target} to exit; it restarts forever")
    return problems


def literal_secrets(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and value and not ONLY_A_VARIABLE.fullmatch(value):
                problems.append(f"{name}: {key} is a literal, not a ${{VARIABLE}}")
    for text in strings(doc):
        for match in URL_PASSWORD.finditer(text):
            if not ONLY_A_VARIABLE.fullmatch(match["password"]):
                problems.append(f"password written into URL {text!r}")
    return problems


def unknown_settings(names: set[str]) -> list[str]:
    known = {f"DOCCHAT_{field.upper()}" for field in Settings.model_fields} | FUTURE_SETTINGS
    return sorted(name for name in names if name.startswith("DOCCHAT_") and name not in known)


# --- tests -----------------------------------------------------------------------------


def test_vendored_schema_is_the_recorded_one(schema: dict[str, Any]) -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["title"] == "Compose Specification"


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert schema_errors(compose, schema) == []
    assert schema_errors(interpolate(compose, example_environment()), schema) == []


def test_env_example_alone_interpolates_every_variable(compose: dict[str, Any]) -> None:
    # Filling in the example's empty values is all a deployment needs to do.
    env = example_environment()
    resolved = list(strings(interpolate(compose, env)))
    required = {
        match["braced"]
        for text in strings(compose)
        for match in INTERPOLATION.finditer(text)
        if match["op"] in (":?", "?")
    }
    assert required, "the compose file requires its secrets from .env"
    assert not any("set it in .env" in text for text in resolved)
    for name in required:
        assert any(env[name] in text for text in resolved), name
        # Without it, interpolation refuses, as `docker compose config` does.
        with pytest.raises(KeyError, match=name):
            interpolate(compose, {key: value for key, value in env.items() if key != name})


def test_required_variables_are_empty_in_env_example(
    compose: dict[str, Any], env_example: dict[str, tuple[str, bool]]
) -> None:
    required = {
        match["braced"]
        for text in strings(compose)
        for match in INTERPOLATION.finditer(text)
        if match["op"] == ":?"
    }
    assert required, "expected the secrets to be required with ${VAR:?...}"
    for name in required:
        assert env_example.get(name) == ("", False), f"{name}: give it as an empty `{name}=` line"


def test_every_variable_is_documented_in_env_example(
    compose: dict[str, Any], env_example: dict[str, tuple[str, bool]]
) -> None:
    referenced = referenced_variables(compose)
    assert sorted(referenced - set(env_example)) == [], "undocumented in .env.example"
    assert sorted(set(env_example) - referenced) == [], "documented but unused by compose"


def test_every_env_example_variable_has_a_comment() -> None:
    previous = ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ENV_LINE.match(line):
            assert previous.startswith("# "), f"{match['name']} needs a comment line above it"
        previous = line


def test_env_example_shows_the_compose_defaults(
    compose: dict[str, Any], env_example: dict[str, tuple[str, bool]]
) -> None:
    for name, defaults in variable_defaults(compose).items():
        value, commented = env_example[name]
        assert commented, f"{name} has a default in compose; show it as `#{name}=...`"
        if value:
            assert defaults == {value}, f"{name}: .env.example says {value}, compose {defaults}"


def test_docchat_variables_are_settings_fields(
    compose: dict[str, Any], env_example: dict[str, tuple[str, bool]]
) -> None:
    names = referenced_variables(compose) | set(env_example)
    for service in compose["services"].values():
        names.update(environment(service))
    assert unknown_settings(names) == []


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    assert undeclared_volumes(compose) == []
    used = set().union(*(named_volumes(service) for service in compose["services"].values()))
    assert set(compose["volumes"]) == used


def test_bind_mounts_exist_in_the_repository(compose: dict[str, Any]) -> None:
    # Docker creates a missing bind-mount source as an empty directory, which hides the mistake.
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and volume.startswith("./"):
                assert (ROOT / volume.split(":", 1)[0]).exists(), volume


def test_dependencies_exist_and_can_satisfy_their_condition(compose: dict[str, Any]) -> None:
    assert dependency_problems(compose) == []
    api_waits_for = depends_on(compose["services"]["api"])
    for target in ("postgresql", "temporal", "qdrant", "ollama"):
        assert api_waits_for[target] == "service_healthy"


def test_no_literal_secrets(
    compose: dict[str, Any], env_example: dict[str, tuple[str, bool]]
) -> None:
    assert literal_secrets(compose) == []
    for name, (value, _) in env_example.items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name}: .env.example must not carry a secret"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["python", "worker.py"]
    assert worker["healthcheck"]["test"][-1] == "deploy/worker_healthcheck.py"
    assert (ROOT / "deploy" / "worker_healthcheck.py").is_file()


def test_api_runs_the_app_factory_and_checks_health(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["build"] == "."
    assert " ".join(api["command"]) == (
        "uvicorn api.app:create_app --factory --host 0.0.0.0 --port 8000"
    )
    assert any(port.endswith(":8000") for port in api["ports"])
    assert "/health" in " ".join(api["healthcheck"]["test"])


def test_api_and_worker_share_the_data_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    data_dir = environment(services["api"])["DOCCHAT_DATA_DIR"]
    assert environment(services["worker"])["DOCCHAT_DATA_DIR"] == data_dir
    mounts = [set(services[name]["volumes"]) for name in ("api", "worker")]
    shared = {mount for mount in mounts[0] & mounts[1] if mount.endswith(f":{data_dir}")}
    assert len(shared) == 1 and shared.pop().split(":")[0] in compose["volumes"]


def test_api_and_worker_settings_pass_the_start_up_checks(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, example_environment())
    for name in ("api", "worker"):
        env = environment(resolved["services"][name])
        values: dict[str, Any] = {
            key.removeprefix("DOCCHAT_").lower(): value
            for key, value in env.items()
            if key.startswith("DOCCHAT_") and value is not None
        }
        # Validation alone (no environment, no .env), raising on any value the service refuses.
        settings = Settings.model_validate(values)
        assert settings.database_url and settings.broadcast_url, name
        # The WebSocket broker is the application database itself, through libpq's URL form.
        database = make_url(settings.database_url).set(drivername="postgresql")
        assert make_url(settings.broadcast_url) == database, name
        # Uploads and artifacts live on the volume every replica mounts.
        for folder in (settings.uploads_dir, settings.artifacts_dir):
            assert folder.is_relative_to(settings.data_dir), (name, folder)


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, example_environment())
    for name, service in resolved["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_application_database_is_created_by_the_init_script(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, example_environment())
    postgres = resolved["services"]["postgresql"]
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    url = urlsplit(environment(resolved["services"]["api"])["DOCCHAT_DATABASE_URL"] or "")
    assert url.scheme.startswith("postgresql") and url.hostname == "postgresql"
    database, role = url.path.lstrip("/"), url.username
    scripts = sorted(POSTGRES_INIT.glob("*.sh"))
    assert scripts and all(os.access(script, os.X_OK) for script in scripts)
    sql = "\n".join(script.read_text() for script in scripts)
    assert f"CREATE ROLE {role} LOGIN" in sql
    assert f"CREATE DATABASE {database} OWNER {role}" in sql


def compose_cli() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]):
            probe = subprocess.run([*command, "version"], capture_output=True, check=False)
            if probe.returncode == 0:
                return command
    return None


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    # Compose's own parser, where one is installed (no engine needed); the schema covers the rest.
    command = compose_cli()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in example_environment().items()))
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- each rule fires on a broken copy ----------------------------------------------------


def test_duplicate_yaml_key_is_rejected() -> None:
    text = COMPOSE_FILE.read_text().replace("  worker:\n", "  worker:\n    restart: always\n", 1)
    with pytest.raises(DuplicateKeyError, match="'restart'"):
        load_yaml(text)


def _break(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = broken
    for key in parents:
        node = node[key]
    node[last] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("servics", {}),  # a misspelt top-level key
        ("services.api.depends_on.qdrant.condition", "service_ready"),
        ("services.worker.healthcheck.tset", ["CMD", "true"]),
        ("services.worker.stop_grace_period", 60),
    ],
)
def test_schema_violation_is_caught(
    compose: dict[str, Any], schema: dict[str, Any], path: str, value: Any
) -> None:
    assert schema_errors(_break(compose, path, value), schema) != []


Rule = Callable[[dict[str, Any]], list[str]]


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("services.worker.volumes", ["scratch:/tmp/scratch"], undeclared_volumes),
        ("services.api.depends_on.nowhere", {"condition": "service_started"}, dependency_problems),
        ("services.ollama.healthcheck", {"disable": True}, dependency_problems),
        ("services.temporal-schema.restart", "unless-stopped", dependency_problems),
        ("services.postgresql.environment.POSTGRES_PASSWORD", "hunter2", literal_secrets),
        ("services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD", "admin", literal_secrets),
        ("services.grafana.volumes", ["dashboards:/etc/grafana/dashboards"], undeclared_volumes),
        (
            "services.api.environment.DOCCHAT_DATABASE_URL",
            "postgresql://docchat:hunter2@postgresql/docchat",
            literal_secrets,
        ),
    ],
)
def test_each_rule_catches_a_broken_copy(
    compose: dict[str, Any], path: str, value: Any, rule: Rule
) -> None:
    assert rule(compose) == []
    assert rule(_break(compose, path, value)) != []


def test_unknown_docchat_variable_is_caught() -> None:
    assert unknown_settings({"DOCCHAT_QDRANT_URL", "DOCCHAT_QDRANT_URI"}) == ["DOCCHAT_QDRANT_URI"]
