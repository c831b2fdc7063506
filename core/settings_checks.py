"""Start-up checks of connection settings: each wrong value is refused with a message that says
what is wrong and what a right value looks like, before anything tries to connect.

Plain functions (value in, checked value out, ``ValueError`` otherwise) used by the validators
of ``core.settings.Settings``; ``describe_errors`` turns a failed ``Settings()`` into one line
per wrong value, each naming its environment variable and never showing a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "DOCCHAT_"
# Never echoed back in an error message.
SECRET_FIELDS = {"temporal_api_key", "qdrant_api_key", "openai_api_key", "api_keys"}
URL_FIELDS = {"database_url", "broadcast_url", "qdrant_url"}

_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Temporal's default limit on the length of ids and names (limit.maxIDLength).
TEMPORAL_MAX_NAME = 1000
TEMPORAL_CLOUD_HOSTS = (".tmprl.cloud", ".api.temporal.io")

SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
POSTGRES_DRIVER = "postgresql+psycopg"  # psycopg 3, a dependency of docchat
POSTGRES_ALIASES = {"postgresql", "postgres"}  # SQLAlchemy's default (psycopg2) is not shipped
POSTGRES_SCHEMES = {"postgresql", "postgres", POSTGRES_DRIVER}


class ConfigurationError(ValueError):
    """Settings that cannot work; the message has one line per wrong value."""


# --- Temporal ----------------------------------------------------------------------------


def temporal_address(value: str) -> str:
    value = value.strip()
    if "://" in value:
        raise ValueError(
            "must be host:port without a scheme, e.g. temporal:7233 or "
            "my-namespace.a1b2c.tmprl.cloud:7233"
        )
    match = _HOST_PORT.fullmatch(value)
    if match is None:
        if value and ":" not in value:
            raise ValueError("has no port: give host:port (Temporal's frontend listens on 7233)")
        raise ValueError("must be host:port, e.g. temporal:7233 or 127.0.0.1:7233")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError("has a port outside 1-65535")
    return value


def temporal_name(value: str, *, what: str, example: str) -> str:
    """A namespace or task-queue name: non-empty, no surrounding blanks or control characters."""
    if not value.strip():
        raise ValueError(f"must name the {what}, e.g. {example}")
    if value != value.strip() or _CONTROL.search(value):
        raise ValueError(f"must not contain surrounding spaces or control characters ({what})")
    if len(value) > TEMPORAL_MAX_NAME:
        raise ValueError(f"is longer than Temporal's {TEMPORAL_MAX_NAME}-character limit")
    if value.startswith("/_sys/"):
        raise ValueError("must not start with /_sys/ (reserved by Temporal)")
    return value


def is_temporal_cloud(address: str) -> bool:
    host = address.rpartition(":")[0].lower()
    return host.endswith(TEMPORAL_CLOUD_HOSTS)


def temporal_cloud_problem(address: str, namespace: str, api_key: str | None) -> str | None:
    """Temporal Cloud needs an API key (docchat has no mTLS certificate settings) and one of
    the account's namespaces, ``<name>.<account>``."""
    if not is_temporal_cloud(address):
        return None
    if not api_key:
        return (
            f"{ENV_PREFIX}TEMPORAL_ADDRESS points at Temporal Cloud, which needs "
            f"{ENV_PREFIX}TEMPORAL_API_KEY (docchat connects to Temporal Cloud with an API key "
            "over TLS; it has no mTLS certificate settings)."
        )
    if "." not in namespace:
        return (
            f"{ENV_PREFIX}TEMPORAL_NAMESPACE={namespace!r} cannot be a Temporal Cloud "
            "namespace: those look like <name>.<account-id>, e.g. docchat.a1b2c."
        )
    return None


# --- secrets -----------------------------------------------------------------------------


def optional(value: Any) -> Any:
    """An empty or blank variable (``NAME=`` in .env) means "not set"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def api_key(value: str | None) -> str | None:
    if value is None:
        return None
    if any(character.isspace() for character in value.strip()) or _CONTROL.search(value):
        raise ValueError("must be a single token without spaces (was a line pasted whole?)")
    return value.strip()


# --- Qdrant ------------------------------------------------------------------------------


def qdrant_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    example = "e.g. http://qdrant:6333 or https://xyz.cloud.qdrant.io:6333"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be the http:// or https:// URL of a Qdrant server, {example}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"has an invalid port, {example}") from None
    if not parts.hostname:
        raise ValueError(f"has no host, {example}")
    if port is not None and port == 0:
        raise ValueError(f"has an invalid port, {example}")
    return value


def qdrant_key_problem(url: str | None, key: str | None) -> str | None:
    if key and not url:
        return (
            f"{ENV_PREFIX}QDRANT_API_KEY is set but {ENV_PREFIX}QDRANT_URL is not: the local "
            "on-disk store takes no key. Set the URL of the Qdrant server the key belongs to."
        )
    return None


# --- SQL and the broker ------------------------------------------------------------------


def _parse(value: str, *, example: str) -> URL:
    try:
        return make_url(value.strip())
    except (ArgumentError, ValueError):
        raise ValueError(f"is not a database URL, {example}") from None


def database_url(value: str | None) -> str | None:
    """A SQLAlchemy URL whose driver docchat ships: psycopg 3 or the standard library's sqlite3.

    ``postgresql://`` and ``postgres://`` mean psycopg 3 here (SQLAlchemy would pick psycopg2,
    which is not installed)."""
    if value is None:
        return None
    example = "e.g. postgresql+psycopg://docchat:PASSWORD@postgresql:5432/docchat or sqlite:///path"
    url = _parse(value, example=example)
    driver = url.drivername
    if driver in POSTGRES_ALIASES:
        url = url.set(drivername=POSTGRES_DRIVER)
    elif driver in SQLITE_DRIVERS:
        if url.database in (None, "", ":memory:"):
            raise ValueError(
                "is an in-memory SQLite database, which every connection sees empty: "
                "give a file, e.g. sqlite:////data/docchat.db"
            )
    elif driver != POSTGRES_DRIVER:
        backend = driver.partition("+")[0]
        if backend in POSTGRES_ALIASES:
            raise ValueError(
                f"uses the driver {driver!r}, which docchat does not ship: "
                f"use {POSTGRES_DRIVER}://… (psycopg 3)"
            )
        raise ValueError(
            f"uses {driver!r}: docchat supports PostgreSQL ({POSTGRES_DRIVER}://…) and "
            "SQLite (sqlite:///path)"
        )
    if url.drivername == POSTGRES_DRIVER and not (url.host or url.query.get("host")):
        raise ValueError(f"names no host, {example}")
    return url.render_as_string(hide_password=False)


def broadcast_url(value: str | None) -> str | None:
    """A PostgreSQL URL for LISTEN/NOTIFY, returned in libpq's own form (no ``+driver``)."""
    if value is None:
        return None
    example = "e.g. postgresql://docchat:PASSWORD@postgresql:5432/docchat"
    url = _parse(value, example=example)
    if url.drivername not in POSTGRES_SCHEMES:
        raise ValueError(
            f"uses {url.drivername!r}: WebSocket fan-out goes through PostgreSQL "
            f"LISTEN/NOTIFY, so give a PostgreSQL URL ({example}; usually the database's), "
            "or leave it unset for a single API process"
        )
    if not (url.host or url.query.get("host")):
        raise ValueError(f"names no host, {example}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- reporting ---------------------------------------------------------------------------


def describe_errors(exc: ValidationError) -> str:
    lines = [_describe(error) for error in exc.errors(include_url=False)]
    count = f"{len(lines)} value{'s' if len(lines) != 1 else ''}"
    return f"invalid configuration ({count}):\n" + "\n".join(f"  {line}" for line in lines)


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    location: Iterable[Any] = error.get("loc") or ()
    field = next(iter(location), None)
    if not isinstance(field, str):
        return message  # a check across several settings names them itself
    name = f"{ENV_PREFIX}{field.upper()}"
    shown = _shown(field, error.get("input"))
    subject = name if shown is None else f"{name}={shown}"
    if name in message:
        return message if shown is None else f"{message} (got {shown})"
    return f"{subject}: {message}"


def _shown(field: str, value: Any) -> str | None:
    if field in SECRET_FIELDS or value is None or isinstance(value, dict):
        return None
    text = str(value)
    if field in URL_FIELDS:
        try:
            text = make_url(text).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            text = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", text)
    return repr(text[:200])
