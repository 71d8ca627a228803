"""Bounds on what one corpus file may expand to: a zip bomb, a YAML alias bomb or a file that becomes megabytes of
text is refused with the file's name before its memory is spent."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import yaml

from assistant.errors import CorpusError
from assistant.ingest.records import Clause, PolicyDocument

_HINT = "raise POLICY_ASSISTANT_INDEX__{} if the file is genuine, or split it"


@dataclass(frozen=True)
class Limits:
    """The bounds (settings in `IndexSettings`, same names)."""

    max_file_bytes: int = 20_000_000
    max_expanded_bytes: int = 100_000_000
    max_text_chars: int = 2_000_000
    max_clauses: int = 5_000
    max_front_matter_chars: int = 20_000


def check_file_size(size: int, name: str, limits: Limits) -> None:
    if size > limits.max_file_bytes:
        raise CorpusError(name, f"file is {size:,} bytes, over the {limits.max_file_bytes:,}-byte limit",
                          _HINT.format("MAX_FILE_BYTES"))


def check_zip(data: bytes, name: str, limits: Limits) -> None:
    """A DOCX is a zip: refuse it when its parts would expand past the bound. The sizes its directory declares
    are binding, since `zipfile` stops reading a part there (and fails its CRC check if the part is longer)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise CorpusError(name, f"not a readable DOCX file ({e.__class__.__name__}: {e})") from e
    expanded = sum(entry.file_size for entry in entries)
    if expanded > limits.max_expanded_bytes or len(entries) > 10_000:
        raise CorpusError(name, f"expands to {expanded:,} bytes in {len(entries):,} parts, over the "
                          f"{limits.max_expanded_bytes:,}-byte limit", _HINT.format("MAX_EXPANDED_BYTES"))


def check_text(chars: int, name: str, limits: Limits) -> None:
    """`chars`: the length of the text a file gave."""
    if chars > limits.max_text_chars:
        raise CorpusError(name, f"holds over {limits.max_text_chars:,} characters of text",
                          _HINT.format("MAX_TEXT_CHARS"))


def check_clauses(count: int, name: str, limits: Limits) -> None:
    if count > limits.max_clauses:
        raise CorpusError(name, f"splits into {count:,} clauses, over the limit of {limits.max_clauses:,}",
                          _HINT.format("MAX_CLAUSES"))


def parse_bounded(doc: PolicyDocument, name: str, max_chars: int, limits: Limits) -> list[Clause]:
    """The document's clauses; none, or more than the limit, is a `CorpusError` naming the file."""
    from assistant.ingest.clauses import parse_clauses

    clauses = parse_clauses(doc, max_chars=max_chars)
    if not clauses:
        raise CorpusError(name, "no clauses found in the text")
    check_clauses(len(clauses), name, limits)
    return clauses


def check_front_matter(front: str, name: str, limits: Limits) -> None:
    """Front matter is a handful of fields: it may not be huge, and it may not use YAML anchors and aliases
    (nine nested aliases expand to 387 million strings)."""
    if len(front) > limits.max_front_matter_chars:
        raise CorpusError(name, f"front matter is {len(front):,} characters, over the limit of "
                          f"{limits.max_front_matter_chars:,}")
    try:
        tokens = list(yaml.scan(front, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return  # the loader reports malformed YAML with its line
    if any(isinstance(t, yaml.AliasToken | yaml.AnchorToken) for t in tokens):
        raise CorpusError(name, "front matter uses YAML anchors or aliases (& or *)",
                          "write each field's value out in full")
