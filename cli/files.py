"""Which files ``docchat ingest`` sends: the files named, and the files of the folders named.

Nothing is chosen by extension: the server tells every format by its bytes, and refuses
what it cannot read with a typed 415 the summary shows. Hidden entries of a folder (``.git``,
``.DS_Store``) are left out, and a note says how many, so nothing is skipped silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Found:
    # (the file, the name the summary shows: a named file's name; a folder's file its path
    # from the folder's name, so two ``notes.md`` in different subfolders stay apart)
    files: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect_files(paths: Sequence[Path], *, recursive: bool, globs: Sequence[str]) -> Found:
    found = Found()
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        resolved = path.resolve()
        if resolved not in seen:  # a file named twice, or inside a folder also named
            seen.add(resolved)
            found.files.append((path, name))

    for path in paths:
        if not path.is_dir():
            add(path, path.name)
            continue
        hidden = unmatched = 0
        for file, relative in _walk(path, recursive=recursive):
            if any(part.startswith(".") for part in relative.parts):
                hidden += 1
            elif globs and not _matches(relative, globs):
                unmatched += 1
            else:
                add(file, (path.name / relative).as_posix())
        if hidden:
            found.notes.append(f"{path}: left out {hidden} hidden file(s)")
        if unmatched:
            found.notes.append(f"{path}: left out {unmatched} file(s) no --glob matches")
        if not recursive and any(child.is_dir() for child in path.iterdir()):
            found.notes.append(f"{path}: has subfolders, not read without --recursive")
    return found


def _walk(folder: Path, *, recursive: bool) -> Iterator[tuple[Path, Path]]:
    """Regular files under ``folder`` (symbolic links followed to files), by name."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    for entry in sorted(entries):
        if entry.is_file():
            yield entry, entry.relative_to(folder)


def _matches(relative: Path, globs: Sequence[str]) -> bool:
    # A pattern without a slash matches the name (``*.docx``), one with a slash the path
    # inside the folder (``reports/*.pdf``).
    return any(
        fnmatch.fnmatch(relative.as_posix() if "/" in g else relative.name, g) for g in globs
    )
