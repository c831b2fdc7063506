"""Process measurements read from /proc (Linux): resident memory now and at its peak."""

from __future__ import annotations

import resource
from pathlib import Path

NOFILE_WANTED = 4096


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` now, in MiB."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's high-water mark of ``pid``'s resident memory (VmHWM), in MiB.

    Exact, unlike sampling: no short spike between two samples is missed.
    """
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return children


def peak_rss_with_children_mb(pid: int) -> float | None:
    """``pid``'s peak resident memory plus each direct child's (an upper bound of their peak
    together: the peaks need not coincide)."""
    own = peak_rss_mb(pid)
    if own is None:
        return None
    return own + sum(peak_rss_mb(child) or 0.0 for child in child_pids(pid))


def own_peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raise_open_files_limit(wanted: int = NOFILE_WANTED) -> int:
    """Raise the soft limit on open files (1,000 sockets need it); children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
