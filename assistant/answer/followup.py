"""Follow-up questions: an elliptical question ("那市里呢？") is read together with the one before it."""

from __future__ import annotations

import re

from assistant.ingest.normalize import normalize

# Openings and endings that lean on the previous question, and words that point back to its subject.
_LEANING_START = re.compile(r"^(那么?|那如果|如果是|还有|另外|那要是|要是|换成|对于|关于)")
_LEANING_END = re.compile(r"(呢|的呢|怎么样|如何)[？?。！!]*$")
_POINTING = re.compile(r"(这个|那个|这些|那些|这项|该项|上述|它们?|其中|这种|此类|这样)")
_SHORT = 6  # characters: a question this short seldom carries its own subject


def standalone(question: str, previous: list[str]) -> str:
    """The question to retrieve with: the question itself, or, when it leans on the conversation, the previous
    (standalone) question followed by it."""
    if not previous:
        return question
    q = normalize(question)
    core = re.sub(r"[\s，,。？?！!、]", "", q)
    leaning = bool(_LEANING_START.search(core) or _LEANING_END.search(q) or _POINTING.search(core))
    if leaning and len(core) <= 20 or len(core) <= _SHORT:
        return f"{previous[-1]} {question}"
    return question


def points_back(question: str) -> bool:
    """Whether the question points at something said before (这个, 上述, 它 …)."""
    return bool(_POINTING.search(normalize(question)))
