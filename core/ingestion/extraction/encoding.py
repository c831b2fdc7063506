"""Bytes to text: a byte-order mark, then a declared charset, then strict UTF-8, then
charset-normalizer's guess for legacy encodings (ISO-8859-1, Windows-1252, Shift JIS, ...)."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Browsers read these labels as Windows-1252 (WHATWG Encoding), and so do we: the bytes
# 0x80-0x9F are curly quotes and dashes in real files that declare "iso-8859-1".
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252"}
# Text with more than this share of control characters (other than tab/newline) is binary.
_MAX_CONTROL_SHARE = 0.01
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def bom_encoding(data: bytes) -> str | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def normalise_label(label: str) -> str | None:
    """A Python codec name for a declared charset label, or ``None`` for an unknown one."""
    name = label.strip().strip("'\"").lower()
    name = _WHATWG_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def guess_encoding(sample: bytes, *, complete: bool, declared: str | None = None) -> str | None:
    """The encoding of ``sample`` (the start of a file, or all of it when ``complete``), or
    ``None`` when it does not look like text in any encoding."""
    found = bom_encoding(sample)
    if found:
        return found
    wide = _wide_without_bom(sample)
    if wide:
        return wide
    if declared:
        return declared
    if _is_utf8(sample, complete=complete):
        return "utf-8"
    best = from_bytes(sample).best()
    if best is None:
        return None
    return normalise_label(best.encoding)


def decode(data: bytes, *, declared: str | None = None) -> str | None:
    """All of ``data`` as text, or ``None`` when it is not text (binary, or undecodable)."""
    encoding = guess_encoding(data, complete=True, declared=declared)
    if encoding is None:
        return None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        if declared is None:
            return None
        return decode(data)  # the declaration was wrong: detect instead
    text = text.removeprefix("\ufeff")
    return text if looks_like_text(text) else None


def looks_like_text(text: str) -> bool:
    if not text:
        return True
    return len(_CONTROL.findall(text[:65536])) <= _MAX_CONTROL_SHARE * min(len(text), 65536)


def _is_utf8(sample: bytes, *, complete: bool) -> bool:
    try:
        # An incremental decoder accepts a sample cut in the middle of a character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _wide_without_bom(sample: bytes) -> str | None:
    """UTF-32 or UTF-16 without a byte-order mark, told by where the NUL bytes of mostly
    Latin text fall. (Such text is valid UTF-8, NULs and all, and a UTF-16 page's <meta>
    still declares an ASCII-compatible charset: neither can be trusted then.)"""
    head = sample[: 4096 - 4096 % 4]
    if len(head) < 8 or head.count(0) < len(head) // 4:
        return None
    lanes = [head[i::4].count(0) / len(head[i::4]) for i in range(4)]
    if lanes[1] > 0.9 and lanes[2] > 0.9 and lanes[3] > 0.9:
        return "utf-32-le"
    if lanes[0] > 0.9 and lanes[1] > 0.9 and lanes[2] > 0.9:
        return "utf-32-be"
    if lanes[1] > 0.7 and lanes[3] > 0.7:
        return "utf-16-le"
    if lanes[0] > 0.7 and lanes[2] > 0.7:
        return "utf-16-be"
    return None
