"""Rich Text Format with striprtf: a small pure-Python reader of RTF's text (RTF carries no
reliable heading structure, so units are cited by line, as plain text is)."""

from __future__ import annotations

from pathlib import Path

from striprtf.striprtf import rtf_to_text

from core.ingestion.extraction.text import line_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text


def rtf_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    # RTF is 7-bit ASCII by definition; anything else is escaped (\'xx, \uN) inside it.
    source = path.read_bytes().decode("latin-1")
    try:
        text: str = rtf_to_text(source, errors="replace")  # type: ignore[no-untyped-call]
    except Exception as exc:  # striprtf fails with assorted errors on damaged groups
        raise corrupt("RTF document", exc) from exc
    units = line_units(text)
    if not units:
        raise no_text("the RTF document has no text.")
    return units
