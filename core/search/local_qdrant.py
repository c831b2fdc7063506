"""Qdrant local mode keeps its data in a folder that only one process may open. An API
without ``DOCCHAT_QDRANT_URL`` next to a standalone ``worker.py`` (or two of either) would
start fine and then fail on Qdrant's lock at the first search or vectorize step. Instead each
such process claims the folder when it starts (an ``flock`` the kernel drops when the process
dies, however it ends), and the second refuses to start, saying what to set.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from core.settings import Settings

CLAIM_FILE = "qdrant.claim"


class QdrantFolderInUseError(RuntimeError):
    """Another process already uses this local Qdrant folder."""


class LocalQdrantClaim:
    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @classmethod
    def take(cls, settings: Settings, *, role: str) -> LocalQdrantClaim | None:
        """Claim the folder for this process (``role``: "the API", "a worker"); ``None`` with
        a Qdrant server, which any number of processes share."""
        if settings.qdrant_url:
            return None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / CLAIM_FILE
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise QdrantFolderInUseError(_refusal(settings.qdrant_path, holder, role)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{role} (pid {os.getpid()})")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def _refusal(folder: Path, holder: str, role: str) -> str:
    return (
        f"Cannot start {role}: the local Qdrant folder {folder} is already used by {holder}, "
        "and Qdrant local mode allows one process per folder. Either set DOCCHAT_QDRANT_URL "
        "to a Qdrant server for the API and every worker, or run the worker inside the API "
        "(DOCCHAT_EMBEDDED_WORKER=true, as `make run` does) instead of a separate worker.py."
    )
