"""Checks a generated answer against the clauses it was given: every [n] must name one of them, every
sentence must cite one, and every number, date, amount, percentage and 文号 must stand in a cited clause."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from assistant.index.links import find_doc_numbers
from assistant.ingest.normalize import normalize

log = logging.getLogger(__name__)

_MARK = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*(?:\[\d{1,3}\])*")
_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_CHINESE_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    facts: list[str]  # numbers and 文号 the sentence states
    missing: list[str]  # … that none of its cited clauses contains
    kept: bool


@dataclass
class Verification:
    """The outcome: the sentences kept, what was removed or flagged and why."""

    sentences: list[SentenceCheck] = field(default_factory=list)
    unknown_citations: list[int] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.kept) and not self.unknown_citations and all(s.kept for s in self.sentences)

    @property
    def kept(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.kept]

    def checks(self, given: dict[int, str]) -> list[dict[str, Any]]:
        """Per citation: the sentences that cite it and whether their facts were found in it."""
        result = []
        for n in sorted({n for s in self.sentences for n in s.cited}):
            citing = [s for s in self.sentences if n in s.cited]
            result.append({"n": n, "clause": given.get(n, ""), "sentences": len(citing),
                           "facts_found": all(not s.missing for s in citing),
                           "missing": sorted({m for s in citing for m in s.missing})})
        return result


def chinese_to_int(text: str) -> int | None:
    """A Chinese numeral (十五, 二十三, 一百零五, 三万) as an integer; digit strings like 二〇一八 digit by digit."""
    if all(ch in _DIGITS for ch in text):
        return int("".join(str(_DIGITS[ch]) for ch in text)) if len(text) > 1 else _DIGITS[text]
    total, section, number = 0, 0, 0
    for ch in text:
        if ch in _DIGITS:
            number = _DIGITS[ch]
        elif ch in _UNITS:
            section += (number or 1) * _UNITS[ch]
            number = 0
        elif ch in _BIG:
            total += (section + number) * _BIG[ch]
            section, number = 0, 0
        else:
            return None
    return total + section + number


def facts(text: str) -> set[str]:
    """The numbers (Arabic or Chinese, as integers or decimals) and 文号 a text states, normalised."""
    normal = normalize(_MARK.sub("", text))
    found = set(find_doc_numbers(normal))
    without_numbers = normal
    for number in found:
        without_numbers = without_numbers.replace(number, " ")
    found.update(m.group(0).lstrip("0") or "0" for m in _ARABIC.finditer(without_numbers))
    for match in _CHINESE_NUMBER.finditer(without_numbers):
        token = match.group(0)
        if token in ("一", "万", "千", "百", "亿"):  # "一" alone is mostly a word (一是、统一), not a figure
            continue
        value = chinese_to_int(token)
        if value is not None:
            found.add(str(value))
    return found


def verify(answer: str, clauses: dict[int, str]) -> Verification:
    """Check `answer` (sentences ending in [n] markers) against `clauses` (n → clause text given to the model)."""
    result = Verification()
    clause_facts = {n: facts(text) for n, text in clauses.items()}
    for raw in _SENTENCE.findall(answer):
        sentence = raw.strip()
        if not _MARK.sub("", sentence).strip(" ，,。"):
            continue
        marks = [int(m) for m in _MARK.findall(sentence)]
        unknown = [n for n in marks if n not in clauses]
        if unknown:
            log.warning("generated answer cites clauses it was not given: %s", unknown)
            result.unknown_citations.extend(unknown)
        cited = list(dict.fromkeys(n for n in marks if n in clauses))
        stated = sorted(facts(sentence))
        available = set().union(*(clause_facts[n] for n in cited)) if cited else set()
        missing = [f for f in stated if f not in available]
        text = _MARK.sub("", sentence).strip()
        result.sentences.append(SentenceCheck(text, cited, stated, missing, kept=bool(cited) and not missing))
    return result
