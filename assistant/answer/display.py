"""How answer text is shown to the asker: in the asker's script, with Chinese punctuation where the source mixed
in ASCII (`,` `(室)` beside `，`). Clause text shown as a source stays as the document wrote it."""

from __future__ import annotations

import re

from assistant.ingest.normalize import to_simplified, to_traditional

_WIDE = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
# , ; : ? ! next to a Chinese character (1,000 and 12:30 keep theirs)
_MARK = re.compile(rf"(?<={_WIDE})[,;:?!]|[,;:?!](?={_WIDE})")
_WIDE_CHAR = re.compile(_WIDE)
# a bracket pair, to be turned full-width when it holds a Chinese character: (室) (鲁政办发〔2026〕12号). The
# content is one possessive run (and the Chinese character is looked for afterwards): `[^()]*{_WIDE}[^()]*`
# would try every split of a long run after a lone `(`, quadratic in its length.
_BRACKETS = re.compile(r"\(([^()]*+)\)")


def punctuate(text: str) -> str:
    """Chinese text's ASCII punctuation in its full-width form, where it stands in Chinese."""
    text = _BRACKETS.sub(lambda m: f"（{m.group(1)}）" if _WIDE_CHAR.search(m.group(1)) else m.group(0), text)
    return _MARK.sub(lambda m: _FULL[m.group(0)], text)


def render(text: str, traditional: bool) -> str:
    """For display: the user's script (Simplified unless the question was written in Traditional), Chinese
    punctuation."""
    return punctuate(to_traditional(text) if traditional else to_simplified(text))
