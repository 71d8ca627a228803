"""Decode a text file: UTF-8 (with or without BOM), GBK/GB18030 or Big5, chosen by how plausible the text is."""

from __future__ import annotations

from assistant.errors import CorpusError

# Below this share of plausible characters, no decoding is trusted: the file is refused rather than indexed as
# mojibake.
_MIN_PLAUSIBLE = 0.9


def decode_text(data: bytes, name: str) -> str:
    """The file's text. UTF-8 is taken when it decodes; otherwise GB18030 and Big5 are both tried and the one
    whose Chinese characters are common ones wins (Big5 bytes also decode as GB18030, into rare characters)."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CorpusError(name, "binary content in a text file", "is the file extension right?")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise CorpusError(name, "a UTF-16 byte-order mark, but not UTF-16 text", "save the file as UTF-8") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    decoded: list[tuple[float, str, str]] = []
    for encoding in ("gb18030", "big5hkscs"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        decoded.append((plausibility(text), encoding, text))
    if decoded:
        score, _, text = max(decoded)
        if score >= _MIN_PLAUSIBLE:
            return text
    tried = ", ".join(f"{enc} ({score:.0%} common characters)" for score, enc, _ in decoded) or "none decodes"
    raise CorpusError(name, f"unknown text encoding: not UTF-8; tried GB18030 and Big5: {tried}",
                      "save the file as UTF-8")


def plausibility(text: str) -> float:
    """Share of the text's Chinese characters that are common ones: in GB2312 (Simplified) or in Big5's
    frequently used level (Traditional). Mojibake is mostly rare characters. 1.0 for text with no Chinese."""
    chinese = [ch for ch in text if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"]
    if not chinese:
        return 1.0
    common = sum(1 for ch in chinese if _common(ch))
    return common / len(chinese)


def _common(ch: str) -> bool:
    try:
        ch.encode("gb2312")
        return True
    except UnicodeEncodeError:
        pass
    try:
        code = int.from_bytes(ch.encode("big5"), "big")
    except UnicodeEncodeError:
        return False
    return 0xA440 <= code <= 0xC67E  # Big5 level 1: the 5,401 frequently used characters
