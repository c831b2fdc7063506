"""Remove files that no document row owns, at start-up and then periodically.

What a crash or a failed clean-up can leave behind: an upload in ``uploads/`` whose rows were
never written (or were deleted while its file could not be), an ``artifacts/<id>/`` folder of a
document that no longer exists, and ``*.partial`` files of a write that never finished (an
upload cut off, an extraction killed mid-batch).

Nothing that may still be in use is touched: every file and folder must also be older than
``min_age_s`` (by its last change, a rename included). An upload in flight writes its
``.partial`` file as the bytes arrive, and gets its row within a moment of the last byte; a
step writing an artifact touches it as it goes. The files are listed before the rows are read,
so a file whose row is written meanwhile is seen with its row.

Every API process and worker runs a sweeper over the same folders: sweeps may overlap, and
each removal tolerates a file that is already gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from core.db import session_scope
from core.ingestion.resources import IngestionResources
from core.ingestion.storage import DocumentStorage
from core.ingestion.tables import Document

log = logging.getLogger("docchat.sweeper")

PARTIAL_SUFFIX = ".partial"


@dataclass
class SweepResult:
    uploads: list[Path] = field(default_factory=list)
    artifact_dirs: list[Path] = field(default_factory=list)
    partials: list[Path] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return len(self.uploads) + len(self.artifact_dirs) + len(self.partials)


def sweep(
    engine: Engine, storage: DocumentStorage, *, min_age_s: float, now: float | None = None
) -> SweepResult:
    """Remove what no row owns and nobody changed for ``min_age_s``; return what went."""
    cutoff = (time.time() if now is None else now) - min_age_s
    # Files first, rows second (see the module's docstring).
    old_uploads = [path for path in _children(storage.uploads_dir) if _file_older(path, cutoff)]
    old_dirs = [
        path
        for path in _children(storage.artifacts_dir)
        if path.is_dir() and _tree_older(path, cutoff)
    ]
    old_partials = [path for path in _partials(storage.artifacts_dir) if _file_older(path, cutoff)]
    stored_names, document_ids = _owned(engine)

    result = SweepResult()
    for path in old_uploads:
        if path.name.endswith(PARTIAL_SUFFIX):
            result.partials.append(path)
        elif path.name not in stored_names:
            result.uploads.append(path)
    for path in old_dirs:
        if path.name not in document_ids:
            result.artifact_dirs.append(path)
    swept_dirs = set(result.artifact_dirs)
    result.partials.extend(
        path for path in old_partials if not swept_dirs.intersection(path.parents)
    )

    for path in [*result.uploads, *result.partials]:
        path.unlink(missing_ok=True)
    for path in result.artifact_dirs:
        shutil.rmtree(path, ignore_errors=True)
    if result.removed:
        log.info(
            "swept %d uploads, %d artifact folders and %d partial files that no document owns",
            len(result.uploads),
            len(result.artifact_dirs),
            len(result.partials),
        )
    return result


async def run_sweeper(
    engine: Engine, storage: DocumentStorage, *, interval_s: float, min_age_s: float
) -> None:
    """Sweep now, then every ``interval_s`` (only once when it is 0), until cancelled."""
    while True:
        try:
            await asyncio.to_thread(sweep, engine, storage, min_age_s=min_age_s)
        except Exception:  # a database or disk hiccup: the next sweep tries again
            log.warning("sweeping orphaned files failed", exc_info=True)
        if interval_s <= 0:
            return
        await asyncio.sleep(interval_s)


def start_sweeper(
    engine: Engine, storage: DocumentStorage, *, interval_s: float, min_age_s: float
) -> asyncio.Task[None]:
    """The sweeper as a background task of the running loop; cancel it at shut-down."""
    return asyncio.create_task(
        run_sweeper(engine, storage, interval_s=interval_s, min_age_s=min_age_s),
        name="orphan-sweeper",
    )


def start_sweeper_for(resources: IngestionResources) -> asyncio.Task[None]:
    settings = resources.settings
    return start_sweeper(
        resources.engine,
        resources.storage,
        interval_s=settings.sweep_interval_minutes * 60,
        min_age_s=settings.sweep_min_age_minutes * 60,
    )


def _owned(engine: Engine) -> tuple[set[str], set[str]]:
    """The upload names and document ids that rows own."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Document.stored_name, Document.id, Document.pending_stored_name)
        ).all()
    # A new version's upload (docs/replace.md) is owned by its document until committed.
    names = {name for name, _, _ in rows} | {pending for _, _, pending in rows if pending}
    return names, {document_id for _, document_id, _ in rows}


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _partials(folder: Path) -> Iterator[Path]:
    with contextlib.suppress(FileNotFoundError):
        yield from folder.rglob(f"*{PARTIAL_SUFFIX}")


def _changed_at(path: Path) -> float:
    status = path.stat()
    return max(status.st_mtime, status.st_ctime)


def _file_older(path: Path, cutoff: float) -> bool:
    try:
        return path.is_file() and _changed_at(path) < cutoff
    except FileNotFoundError:
        return False


def _tree_older(folder: Path, cutoff: float) -> bool:
    """Nothing in ``folder`` (itself included) changed since ``cutoff``."""
    try:
        return _changed_at(folder) < cutoff and all(
            _changed_at(path) < cutoff for path in folder.rglob("*")
        )
    except FileNotFoundError:
        return False
