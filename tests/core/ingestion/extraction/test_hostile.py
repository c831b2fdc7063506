"""Hostile and broken input, per format: each refused with its own typed fault, and the
container checks decided before anything is inflated."""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from core.ingestion.extraction import ACCEPTED, ExtractionLimits, detect_format
from core.ingestion.extraction.opendocument import parse_xml
from core.ingestion.faults import DocumentFault, FaultCode
from tests.core.ingestion.extraction.helpers import code_of, extract_all, fault_of, rezip

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<root>&lol9;</root>
"""
# The part that carries each container's text.
MAIN_PART = {
    "eng_spa_mult.docx": "word/document.xml",
    "eng_spa_mult.odt": "content.xml",
    "eng_spa_mult.pptx": "ppt/slides/slide1.xml",
    "stanley-cups.xlsx": "xl/worksheets/sheet1.xml",
    "eng_spa_mult.epub": "GoogleDoc/Untitleddocument.xhtml",
}


@pytest.mark.parametrize(("name", "part"), sorted(MAIN_PART.items()))
def test_xml_entity_expansion_is_refused_unread(
    formats: Path, tmp_path: Path, limits: ExtractionLimits, name: str, part: str
) -> None:
    bomb = rezip(formats / name, tmp_path / name, {part: BILLION_LAUGHS})
    fault = fault_of(bomb, limits)
    assert fault.code is FaultCode.UNSAFE_XML
    assert part in fault.message


def test_parsed_xml_refuses_entities_on_its_own() -> None:
    # The second line of defence, for XML read outside a checked container.
    with pytest.raises(DocumentFault) as caught:
        parse_xml(BILLION_LAUGHS, what="test part")
    assert caught.value.code is FaultCode.UNSAFE_XML


def test_an_xhtml_doctype_without_entities_is_accepted(
    formats: Path, tmp_path: Path, limits: ExtractionLimits
) -> None:
    # EPUB 2 chapters carry the W3C XHTML doctype: no internal subset, so no entities.
    chapter = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1'
        b'//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Intro</h1><p>Plain words.</p>'
        b"</body></html>"
    )
    book = rezip(
        formats / "eng_spa_mult.epub",
        tmp_path / "book.epub",
        {"GoogleDoc/Untitleddocument.xhtml": chapter},
    )
    assert [(unit.label, unit.text) for unit in extract_all(book, limits)] == [
        ("§Intro", "Intro\n\nPlain words.")
    ]


def test_zip_bomb_by_ratio_is_refused_from_the_directory(
    formats: Path, tmp_path: Path, limits: ExtractionLimits
) -> None:
    bomb = tmp_path / "bomb.docx"
    rezip(formats / "eng_spa_mult.docx", bomb, {})
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/zeros.bin", bytes(20 * 1024 * 1024))
    assert bomb.stat().st_size < 200_000  # 20 MiB that packs a thousand times smaller
    fault = fault_of(bomb, limits)
    assert fault.code is FaultCode.DECOMPRESSION_BOMB
    assert "word/media/zeros.bin" in fault.message


@pytest.mark.parametrize(
    "name", ["eng_spa_mult.docx", "eng_spa_mult.odt", "eng_spa_mult.epub", "stanley-cups.xlsx"]
)
def test_total_inflated_size_cap(formats: Path, limits: ExtractionLimits, name: str) -> None:
    tight = replace(limits, max_archive_bytes=4096)
    assert code_of(formats / name, tight) is FaultCode.DECOMPRESSION_BOMB


def test_encrypted_office_file(formats: Path, tmp_path: Path, limits: ExtractionLimits) -> None:
    assert code_of(formats / "password_protected.xlsx", limits) is FaultCode.ENCRYPTED_DOCUMENT
    renamed = tmp_path / "report.docx"
    renamed.write_bytes((formats / "password_protected.xlsx").read_bytes())
    assert code_of(renamed, limits) is FaultCode.ENCRYPTED_DOCUMENT


def test_encrypted_zip_member(formats: Path, tmp_path: Path, limits: ExtractionLimits) -> None:
    data = bytearray((formats / "eng_spa_mult.docx").read_bytes())
    # Set bit 0 (encrypted) of word/document.xml's flags in the central directory, as a zip
    # tool that encrypts the member would (zipfile itself cannot write encrypted members).
    entry = data.find(b"PK\x01\x02")
    while entry >= 0:
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46 : entry + 46 + name_length] == b"word/document.xml":
            data[entry + 8] |= 0x1
        entry = data.find(b"PK\x01\x02", entry + 4)
    path = tmp_path / "locked.docx"
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("word/document.xml").flag_bits & 0x1
    assert code_of(path, limits) is FaultCode.ENCRYPTED_DOCUMENT


def test_legacy_office_file_is_unsupported(tmp_path: Path, limits: ExtractionLimits) -> None:
    legacy = tmp_path / "old.doc"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    fault = fault_of(legacy, limits)
    assert fault.code is FaultCode.UNSUPPORTED_FORMAT
    assert "legacy Office" in fault.message


@pytest.mark.parametrize("fraction", [0.3, 0.9])
@pytest.mark.parametrize("name", ["eng_spa_mult.docx", "sample-presentation.pptx"])
def test_truncated_containers_are_corrupt(
    formats: Path, tmp_path: Path, limits: ExtractionLimits, name: str, fraction: float
) -> None:
    data = (formats / name).read_bytes()
    truncated = tmp_path / name
    truncated.write_bytes(data[: int(len(data) * fraction)])
    assert code_of(truncated, limits) is FaultCode.CORRUPT_DOCUMENT


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("eng_spa_mult.docx", "word/document.xml"),
        ("eng_spa_mult.odt", "content.xml"),
        ("sample-presentation.pptx", "ppt/slides/slide2.xml"),
        ("stanley-cups.xlsx", "xl/workbook.xml"),
        ("eng_spa_mult.epub", "META-INF/container.xml"),
    ],
)
def test_garbage_in_a_main_part_is_corrupt(
    formats: Path, tmp_path: Path, limits: ExtractionLimits, name: str, part: str
) -> None:
    broken = rezip(formats / name, tmp_path / name, {part: b"<unclosed><tag"})
    assert code_of(broken, limits) is FaultCode.CORRUPT_DOCUMENT


def test_other_zip_archives_are_unsupported(tmp_path: Path, limits: ExtractionLimits) -> None:
    path = tmp_path / "photos.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday.txt", "not an office document")
    assert code_of(path, limits) is FaultCode.UNSUPPORTED_FORMAT


def test_binary_data_is_unsupported_and_lists_what_is(
    tmp_path: Path, limits: ExtractionLimits
) -> None:
    path = tmp_path / "program.txt"
    path.write_bytes(bytes(range(256)) * 64)
    fault = fault_of(path, limits)
    assert fault.code is FaultCode.UNSUPPORTED_FORMAT
    assert ACCEPTED in fault.message
    assert "Word (.docx)" in ACCEPTED and "EPUB" in ACCEPTED


def test_no_text_at_all(formats: Path, limits: ExtractionLimits) -> None:
    assert code_of(formats / "empty.txt", limits) is FaultCode.EMPTY_FILE
    whitespace = formats / "fake-text-all-whitespace.txt"
    assert whitespace.stat().st_size > 0
    assert code_of(whitespace, limits) is FaultCode.NO_EXTRACTABLE_TEXT


def test_html_without_visible_text(tmp_path: Path, limits: ExtractionLimits) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Title only</title><script>var a = 1;</script></head>"
        "<body><nav>Home</nav><div style='display:none'>hidden</div></body></html>"
    )
    assert code_of(path, limits) is FaultCode.NO_EXTRACTABLE_TEXT


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares a canvas of ``width`` x ``height`` and holds one row:
    kilobytes on disk, gigabytes if decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(bytes(width + 1))
    idat = b"IDAT" + data
    body = struct.pack(">I", len(data)) + idat + struct.pack(">I", zlib.crc32(idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + head + body + end


@pytest.mark.parametrize("side", [20_000, 200_000])
def test_image_decompression_bomb(tmp_path: Path, limits: ExtractionLimits, side: int) -> None:
    # 20,000² passes Pillow's own warning threshold only; 200,000² its hard limit too.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_claiming(side, side))
    assert path.stat().st_size < 1_000_000
    assert code_of(path, limits) is FaultCode.DECOMPRESSION_BOMB


def test_pixel_cap_applies_to_real_images(formats: Path, limits: ExtractionLimits) -> None:
    tight = replace(limits, max_image_pixels=100_000)
    with Image.open(formats / "DA-1p.png") as image:
        assert image.size[0] * image.size[1] > 100_000
    assert code_of(formats / "DA-1p.png", tight) is FaultCode.DECOMPRESSION_BOMB


def test_unit_and_text_caps(formats: Path, limits: ExtractionLimits) -> None:
    few = replace(limits, max_units=3)
    assert code_of(formats / "sample-presentation.pptx", few) is FaultCode.TOO_MANY_PAGES
    short = replace(limits, max_chars=500)
    assert code_of(formats / "norwich-city.txt", short) is FaultCode.TEXT_TOO_LARGE
    assert code_of(formats / "sample-presentation.pptx", short) is FaultCode.TEXT_TOO_LARGE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentFault) as caught:
        detect_format(tmp_path / "gone.docx")
    assert caught.value.code is FaultCode.FILE_MISSING
