"""Fixtures for the extraction tests: the real files of ../shared/formats, and limits that
OCR in English only (a third of the time of the default eng+deu+jpn on these pages)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.ingestion.extraction import ExtractionLimits
from tests.conftest import CORPUS

FORMATS = CORPUS.parent / "formats"


@pytest.fixture(scope="session")
def formats() -> Path:
    if not FORMATS.is_dir():
        pytest.skip(f"the shared formats folder is not at {FORMATS}")
    return FORMATS


@pytest.fixture(scope="session")
def limits() -> ExtractionLimits:
    return ExtractionLimits(ocr_languages="eng")


@pytest.fixture(scope="session")
def tesseract() -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("Tesseract is not installed (`make test` installs tesseract-ocr)")
