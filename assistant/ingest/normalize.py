"""Script and form normalisation shared by clauses and queries (the displayed text stays original)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

# 文号 brackets: 〔2018〕 is canonical; scraped and typed texts use many look-alikes.
_BRACKETS = str.maketrans(
    {"[": "〔", "]": "〕", "【": "〔", "】": "〕", "﹝": "〔", "﹞": "〕", "［": "〔", "］": "〕"}
)
_YEAR_IN_PARENS = re.compile(r"[（(]((?:19|20)\d{2})[)）](?=\s*\d+\s*号)")
_SPACE = re.compile(r"[ \t\u3000]+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    # Taiwan glyph standard (為, 裡, 著), characters only: no vocabulary is changed.
    return opencc.OpenCC("s2tw")


def fold_width(text: str) -> str:
    """Full-width ASCII letters, digits and punctuation to half-width; the ideographic space to a space."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif ch == "\u3000":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def to_traditional(text: str) -> str:
    return str(_s2t().convert(text))


def is_traditional(text: str) -> bool:
    """True when the text contains characters that only Traditional Chinese uses."""
    return to_simplified(text) != text


def normalize_doc_number(text: str) -> str:
    """Unify 文号 bracket variants: 国发[2016]55号, 国发(2016)55号, 国发【2016】55号 → 国发〔2016〕55号."""
    text = text.translate(_BRACKETS)
    return _YEAR_IN_PARENS.sub(r"〔\1〕", text)


def normalize(text: str) -> str:
    """The form used for embedding, BM25 and matching: Simplified, half-width, canonical 文号."""
    text = unicodedata.normalize("NFC", text)
    text = fold_width(text)
    text = to_simplified(text)
    text = normalize_doc_number(text)
    return _SPACE.sub(" ", text).strip()
