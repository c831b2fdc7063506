"""Keyword terms: what a chunk and a query are matched on, in every script."""

from __future__ import annotations

import subprocess
import sys

from core.search.keywords import (
    TERM_BUCKETS,
    keyword_vector,
    query_vector,
    term_id,
    terms,
)


def test_identifiers_are_kept_whole_and_in_parts() -> None:
    found = list(terms("Set DOCCHAT_RETRIEVAL_K=8 or pass --max-size; see v1.2.3 (E-1234)."))
    for term in ("docchat_retrieval_k", "docchat", "retrieval", "k", "8"):
        assert term in found
    for term in ("max-size", "max", "size", "v1.2.3", "e-1234", "1234"):
        assert term in found
    assert "--max-size" not in found and ";" not in "".join(found)


def test_case_width_and_accents_are_folded_with_the_accented_form_kept() -> None:
    found = list(terms("Größe ＡＢＣ１２３ Sierpińskiraum"))
    assert found == ["grösse", "grosse", "abc123", "sierpińskiraum", "sierpinskiraum"]
    # A query typed without the accent meets the stored chunk on the stripped form.
    assert set(query_vector("Sierpinskiraum").indices) <= set(keyword_vector(found[3]).indices)


def test_arabic_words_keep_their_vowel_marks_and_are_also_found_without() -> None:
    # Marks must not split a word (Python's \w leaves them out); tatweel is only stretching.
    found = list(terms("كَتَبَ الطالـــبُ"))
    assert found == ["كَتَبَ", "كتب", "الطالبُ", "الطالب"]


def test_text_without_spaces_becomes_character_bigrams() -> None:
    assert list(terms("吾輩は猫")) == ["吾輩", "輩は", "は猫"]
    assert list(terms("猫")) == ["猫"]
    # Latin words inside Japanese text stay words.
    assert list(terms("東京タワーはTokyo Tower")) == ["東京", "京タ", "タワ", "ワー", "ーは"] + [
        "tokyo",
        "tower",
    ]


def test_stored_weights_saturate_and_query_terms_count_once() -> None:
    stored = keyword_vector("error error error timeout")
    weights = dict(zip(stored.indices, stored.values, strict=True))
    once, thrice = weights[term_id("timeout")], weights[term_id("error")]
    assert once == 1.0 and 1.0 < thrice < 3.0
    assert stored.indices == sorted(stored.indices)
    query = query_vector("error error timeout")
    assert query.values == [1.0, 1.0]
    assert not keyword_vector(" .,;-- ") and not query_vector("?!")


def test_term_ids_are_the_same_in_another_process() -> None:
    # No vocabulary is shared between the worker that stores and the API that queries: the
    # ids must not depend on the process (Python's hash() is salted per process).
    code = "from core.search.keywords import term_id; print(term_id('größe'), term_id('猫で'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [int(x) for x in other] == [term_id("größe"), term_id("猫で")]
    assert all(0 <= int(x) < TERM_BUCKETS for x in other)
