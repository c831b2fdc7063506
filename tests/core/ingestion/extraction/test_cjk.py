"""The spaces and line breaks Tesseract puts between Chinese and Japanese characters."""

from __future__ import annotations

from core.ingestion.extraction.cjk import close_cjk_gaps


def test_gaps_between_two_cjk_characters_go() -> None:
    # Tesseract's reading of jpn-vert.jpeg: spaced characters, a column break mid-sentence.
    read = "元 来 日 本 語 は 漢文 に 倣い 、 文 字 を 上\nか ら 下 へ"
    assert close_cjk_gaps(read) == "元来日本語は漢文に倣い、文字を上から下へ"


def test_other_spacing_stays() -> None:
    assert close_cjk_gaps("Hello world") == "Hello world"
    assert close_cjk_gaps("漢字 and かな") == "漢字 and かな"  # Latin between: real spaces
    assert close_cjk_gaps("한국어 문장") == "한국어 문장"  # Korean separates its words
    assert close_cjk_gaps("第一段落。\n\n第二段落。") == "第一段落。\n\n第二段落。"
