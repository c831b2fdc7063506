"""Spacing of Chinese and Japanese text read by OCR.

Tesseract puts a space between most CJK characters it recognises ("日 本 語 は"), and breaks
a vertical column or a wrapped line in the middle of a sentence. Chinese and Japanese are
written without spaces, so every such gap between two CJK characters is an artefact: it is
removed, which also lets keyword search see the words (its bigrams would otherwise stop at
each space). Korean Hangul is not included: Korean separates its words with spaces.
A blank line (a paragraph break) is kept.
"""

from __future__ import annotations

import re

_CJK = (
    "\u3000-\u303f"  # CJK symbols and punctuation (、。「」)
    "\u3040-\u30ff"  # hiragana, katakana
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs, extension A, compatibility
    "\uff00-\uff60\uff61-\uff9f"  # full-width forms, half-width katakana
    "\U00020000-\U0003134f"  # CJK ideograph extensions B-G
)
_GAP = re.compile(f"(?<=[{_CJK}])(?:[ \\t]+|[ \\t]*\\n[ \\t]*)(?=[{_CJK}])")


def close_cjk_gaps(text: str) -> str:
    """``text`` without the spaces and single line breaks between two CJK characters."""
    return _GAP.sub("", text)
