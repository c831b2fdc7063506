"""Keyword vectors: a chunk's terms as a sparse vector that Qdrant scores BM25-style.

Qdrant multiplies each query term by its inverse document frequency (``Modifier.IDF``, over
the whole collection); what is stored per chunk is the term-frequency half of BM25, so no
vocabulary, document counts or model weights are kept anywhere. Term ids are a hash of the
term, the same in every process and on every machine.

Terms, for every language:
- text is NFKC-normalised (full-width letters and digits become plain ones) and case-folded;
- a word is a run of letters, digits and marks; joined by ``_ . - / :`` it is also kept whole
  (``DOCCHAT_RETRIEVAL_K``, ``--max-size``, ``v1.2.3``, ``E-1234``) beside its parts, so an
  identifier is found as written and by its pieces;
- a word with accents or Arabic vowel marks is also kept without them (``größe`` gives
  ``größe`` and ``grosse``): a query typed either way matches;
- scripts written without spaces (Chinese, Japanese, Thai, ...) have no words to split on:
  their runs become overlapping character bigrams, the usual way to index them without a
  dictionary.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

# BM25's term-frequency saturation: the second occurrence of a term counts less than the
# first. Chunks are cut to about the same token count, so length normalisation (b) is left
# out: it would need the collection's average chunk length, a shared state.
K1 = 1.2
TERM_BUCKETS = 2**31

_UNSPACED = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana ext., CJK ideographs
    "\uff66-\uff9f"  # half-width katakana (NFKC makes them full width; kept for safety)
    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
)
_UNSPACED_RUN = re.compile(f"[{_UNSPACED}]+")


def _mark_ranges() -> str:
    """A regex class body of every combining mark (category M) in the basic plane: Python's
    ``\\w`` leaves them out, and Arabic vowels or Devanagari signs must not split a word."""
    marks = [c for c in range(0x300, 0x10000) if unicodedata.category(chr(c)).startswith("M")]
    ranges: list[tuple[int, int]] = []
    for code in marks:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


# A word: letters, digits and combining marks, never the underscore (it joins compounds).
_WORD = f"(?:[^\\W_]|[{_mark_ranges()}])+"
_COMPOUND = re.compile(rf"{_WORD}(?:[_.\-/:]{_WORD})*")
_PART = re.compile(_WORD)
_TATWEEL = "\u0640"


@dataclass(frozen=True)
class KeywordVector:
    """Term ids (sorted) and their weights, ready for ``models.SparseVector``."""

    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


@functools.lru_cache(maxsize=1 << 16)  # a corpus repeats its terms: hash each once
def term_id(term: str) -> int:
    """A stable bucket for ``term``: the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % TERM_BUCKETS


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace(_TATWEEL, "")


def strip_marks(word: str) -> str:
    """``word`` without accents and vowel marks (``é`` to ``e``, ``كَتَبَ`` to ``كتب``)."""
    decomposed = unicodedata.normalize("NFD", word)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


def terms(text: str) -> Iterator[str]:
    """Every term of ``text`` as it is counted (a term may come more than once)."""
    normal = normalise(text)
    position = 0
    for run in _UNSPACED_RUN.finditer(normal):
        yield from _spaced_terms(normal[position : run.start()])
        yield from _bigrams(run.group())
        position = run.end()
    yield from _spaced_terms(normal[position:])


def _spaced_terms(text: str) -> Iterator[str]:
    for match in _COMPOUND.finditer(text):
        compound = match.group()
        parts = _PART.findall(compound)
        words = parts if len(parts) == 1 else [compound, *parts]
        for word in words:
            yield word
            if not word.isascii():
                bare = strip_marks(word)
                if bare != word and bare:
                    yield bare


def _bigrams(run: str) -> Iterator[str]:
    if len(run) == 1:
        yield run
        return
    for start in range(len(run) - 1):
        yield run[start : start + 2]


def keyword_vector(text: str) -> KeywordVector:
    """The stored side: saturated term frequencies of ``text``."""
    counts = Counter(term_id(term) for term in terms(text))
    indices = sorted(counts)
    return KeywordVector(indices, [_saturate(counts[i]) for i in indices])


def query_vector(text: str) -> KeywordVector:
    """The query side: each distinct term once (Qdrant supplies its IDF weight)."""
    indices = sorted({term_id(term) for term in terms(text)})
    return KeywordVector(indices, [1.0] * len(indices))


def _saturate(count: int) -> float:
    return count * (K1 + 1) / (count + K1)
