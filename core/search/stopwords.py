"""The words of a question that say what it asks: English and German stop words left out.

A question's keyword query scores every term it holds, and a question's own words ("which",
"the", "of", "kann", "welche") are in most chunks of a language: summed, they outweigh the one
rare word that names the answer ("A5", "Zweifachtorus"), and they rank chunks of the
question's language above the page in another language that holds that word. Answers search
by the question's content words (``content_query``); quotes weigh them (core.chat.quotes).
"""

from __future__ import annotations

import re
import unicodedata

STOPWORDS = frozenset(
    """
    a an and are as at be by can do does did for from has have how i in is it its of on or
    the that this to was were what when where which who whom whose why will with you your
    about according any into there their they them than then these those also does doing
    many much say says said give list tell me please
    der die das ein eine einer eines einem einen und oder ist sind wie was wer wann wo warum
    welche welcher welches man von zu zur zum im in den dem des mit auf für über bei als
    es sich nicht noch auch dass heißt nennt muss
    get got there here would could should may might must shall been being am
    er sie wir ihr ich du damit dann denn wenn so nur aus an um bis durch nach vor wird
    werden wurde kann können gibt gilt hat haben sein diese dieser dieses dies wo
    """.split()
)

_WORD = re.compile(r"[\w][\w.\-/:]*[\w]|\w", re.UNICODE)


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded and NFKC-normalised: a PDF's ligatures ("ﬀ", "ﬁ")
    become the letters a reader types, so "hausdorffsch" matches "hausdorﬀsch"."""
    normal = unicodedata.normalize("NFKC", text)
    return [w.casefold().strip(".-/:") for w in _WORD.findall(normal)]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning, each once: no stop words, no single letters."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOPWORDS and len(w) > 1))


def content_query(text: str) -> str:
    """``text`` reduced to its content words, for a keyword search; ``text`` itself when it
    has none (a question of stop words only still searches by them)."""
    found = content_words(text)
    return " ".join(found) if found else text
