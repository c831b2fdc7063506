"""Shared steps of the extraction tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from core.ingestion.extraction import ExtractionLimits, Unit, extract_units, inspect_document
from core.ingestion.faults import DocumentFault, FaultCode


def extract_all(path: Path, limits: ExtractionLimits) -> list[Unit]:
    info = inspect_document(path, limits)
    return list(extract_units(path, 1, info.unit_count, limits))


def whole_text(units: list[Unit]) -> str:
    return " ".join(" ".join(unit.text for unit in units).split())


def fault_of(path: Path, limits: ExtractionLimits) -> DocumentFault:
    with pytest.raises(DocumentFault) as caught:
        extract_all(path, limits)
    return caught.value


def code_of(path: Path, limits: ExtractionLimits) -> FaultCode:
    return fault_of(path, limits).code


def rezip(source: Path, target: Path, replace: dict[str, bytes]) -> Path:
    """A copy of the zip container ``source`` with some members' bytes replaced."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for member in original.infolist():
            data = replace.get(member.filename, original.read(member))
            copy.writestr(member, data)
    return target
