"""Chunk embeddings kept by (index version, chunk text hash), so a chunk whose text did not
change is never embedded twice: a new version of a document embeds only its changed chunks,
and a re-index whose model is unchanged (a chunker-only change) reuses every chunk it finds.

The cache is a SQLite file per worker host (``<data_dir>/embedding-cache.sqlite``): a miss only
costs an embedding, so hosts need not share it. Vectors are stored as the 64-bit floats the
embedder hands over, so a cached vector is bit for bit the one stored the first time.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from core.search.model_identity import ModelIdentity

CACHE_FILE = "embedding-cache.sqlite"
# SQLite's default limit on bound parameters is 999 on old builds: look hashes up in slices.
LOOKUP_SLICE = 500


def index_version_key(model: ModelIdentity, precision: str) -> str:
    """What shapes a chunk's dense vector, as one string: the embedding model and its
    precision. Deliberately not the whole index version (core.search.index_versions): the
    chunker settings and the point layout do not change a given text's vector, so a re-index
    after a chunker-only change reuses every unchanged chunk's vector."""
    return f"{model.name}:{model.dim}:{precision}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Thread-safe; one connection per process, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            # WAL: the API's and the worker's processes read while one of them writes.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors (version TEXT NOT NULL, hash TEXT NOT NULL,"
                " vector BLOB NOT NULL, PRIMARY KEY (version, hash)) WITHOUT ROWID"
            )
            connection.commit()
            self._connection = connection
        return self._connection

    def get_many(self, version: str, hashes: Iterable[str]) -> dict[str, list[float]]:
        wanted = sorted(set(hashes))
        found: dict[str, list[float]] = {}
        with self._lock:
            db = self._db()
            for start in range(0, len(wanted), LOOKUP_SLICE):
                part = wanted[start : start + LOOKUP_SLICE]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT hash, vector FROM vectors WHERE version = ? AND hash IN ({marks})",
                    [version, *part],
                )
                for key, blob in rows:
                    found[key] = _decode(blob)
        return found

    def put_many(self, version: str, vectors: Mapping[str, Sequence[float]]) -> None:
        if not vectors:
            return
        with self._lock:
            db = self._db()
            db.executemany(
                "INSERT OR REPLACE INTO vectors (version, hash, vector) VALUES (?, ?, ?)",
                [(version, key, _encode(vector)) for key, vector in vectors.items()],
            )
            db.commit()

    def count(self, version: str) -> int:
        with self._lock:
            row = (
                self._db()
                .execute("SELECT COUNT(*) FROM vectors WHERE version = ?", [version])
                .fetchone()
            )
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _encode(vector: Sequence[float]) -> bytes:
    return array("d", vector).tobytes()


def _decode(blob: bytes) -> list[float]:
    values = array("d")
    values.frombytes(blob)
    return values.tolist()
