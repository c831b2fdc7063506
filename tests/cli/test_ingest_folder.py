"""``docchat ingest FOLDER``: a folder of real, mixed files from ../shared/formats, each one
reported — completed, refused with its 415 code, or failed with the workflow's code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import docchat, row
from tests.conftest import REPO
from tests.servers import LiveApi

FORMATS = REPO.parent / "shared" / "formats"

pytestmark = pytest.mark.skipif(not FORMATS.is_dir(), reason=f"no {FORMATS}")


def mixed_folder(root: Path) -> Path:
    folder = root / "mixed"
    (folder / "slides").mkdir(parents=True)
    for name in ("simple.docx", "stanley-cups.csv", "codeblock.md"):
        shutil.copy(FORMATS / name, folder / name)
    # Damaged but readable: a placeholder lacks required attributes, the text is intact.
    shutil.copy(FORMATS / "fake-power-point-malformed.pptx", folder / "slides" / "deck.pptx")
    # Half a Word file: its zip directory is gone, so the workflow fails it, with its code.
    docx = (FORMATS / "handbook-1p.docx").read_bytes()
    (folder / "truncated.docx").write_bytes(docx[: len(docx) // 2])
    # A legacy binary no reader takes: refused at upload, 415.
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00" + bytes(range(256)) * 8)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return folder


async def test_a_folder_of_mixed_files_reports_each_one(server: LiveApi, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path)
    run = await docchat("ingest", folder, "--recursive", url=server.url, timeout=600)

    assert run.code == 1, run  # two of them could not be ingested
    for name in ("mixed/simple.docx", "mixed/stanley-cups.csv", "mixed/codeblock.md"):
        assert "│ completed" in row(run.stdout, name), run.stdout
    assert "│ completed" in row(run.stdout, "mixed/slides/deck.pptx"), run.stdout
    refused = row(run.stdout, "mixed/tool.exe")
    assert "│ failed" in refused and "unsupported_format" in refused
    broken = row(run.stdout, "mixed/truncated.docx")
    assert "│ failed" in broken and "corrupt_document" in broken
    assert "4 completed, 2 failed" in run.stdout
    assert ".DS_Store" not in run.stdout
    assert "left out 1 hidden file(s)" in run.stderr
    assert "error: mixed/tool.exe: unsupported_format" in run.stderr

    # What was ingested is searchable under its own location label.
    hits = await server.http.get("/docs/search", params={"q": "Stanley Cups Blues", "k": 10})
    found = [(hit["filename"], hit["label"]) for hit in hits.json()["data"]]
    assert ("stanley-cups.csv", "rows 1–5") in found, found

    # Without --recursive the subfolder is left out, and said so; --glob picks by name.
    # --json gives the same summary to a script.
    picked = await docchat(
        "ingest", folder, "--glob", "*.csv", "--glob", "*.exe", "--json", url=server.url
    )
    assert picked.code == 1, picked
    summary = json.loads(picked.stdout)
    by_file = {item["file"]: item for item in summary["files"]}
    assert set(by_file) == {"mixed/stanley-cups.csv", "mixed/tool.exe"}
    assert by_file["mixed/stanley-cups.csv"]["result"] == "duplicate"
    assert by_file["mixed/stanley-cups.csv"]["document_id"]
    assert by_file["mixed/tool.exe"]["result"] == "failed"
    assert by_file["mixed/tool.exe"]["error_code"] == "unsupported_format"
    assert summary["counts"] == {"completed": 0, "duplicate": 1, "failed": 1, "cancelled": 0}
    assert "has subfolders, not read without --recursive" in picked.stderr
    assert "left out 3 file(s) no --glob matches" in picked.stderr


async def test_a_folder_with_nothing_to_send_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".hidden").write_text("x")
    run = await docchat("ingest", tmp_path, url="http://127.0.0.1:9")
    assert run.code == 1
    assert "error: no files to ingest" in run.stderr
