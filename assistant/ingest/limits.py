"""Bounds on what one corpus file may expand to: a zip bomb, a YAML alias bomb or a file that becomes megabytes of
text is refused with the file's name before its memory is spent; text that is not Unicode is refused naming the
field."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import yaml

from assistant.errors import CorpusError
from assistant.ingest.records import Clause, PolicyDocument, invalid_text

_HINT = "raise POLICY_ASSISTANT_INDEX__{} if the file is genuine, or split it"
# front matter is a flat list of fields: a value nested deeper than this is no metadata (and the YAML loader
# recurses once per level)
MAX_FRONT_MATTER_DEPTH = 10
# what YAML reads as a date (its timestamp form); 2018-02-30 fails there with a ValueError
_YAML_DATE = re.compile(r"\d{4}-\d\d?-\d\d?(?:[Tt ].*)?")


@dataclass(frozen=True)
class Limits:
    """The bounds (settings in `IndexSettings`, same names)."""

    max_file_bytes: int = 20_000_000
    max_expanded_bytes: int = 100_000_000
    max_text_chars: int = 2_000_000
    max_clauses: int = 5_000
    max_front_matter_chars: int = 20_000
    # reading one file (in a child process, sandbox.py): its CPU seconds (0: read in this process, unbounded) and
    # its address space
    parse_cpu_s: int = 60
    parse_memory_bytes: int = 1_000_000_000


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
    """The document's clauses; none, or more than the limit, or text that is not Unicode, is a `CorpusError` naming
    the file (and the field)."""
    from assistant.ingest.clauses import parse_clauses

    check_unicode(doc, name)
    clauses = parse_clauses(doc, max_chars=max_chars)
    if not clauses:
        raise CorpusError(name, "no clauses found in the text")
    check_clauses(len(clauses), name, limits)
    return clauses


def check_unicode(doc: PolicyDocument, name: str) -> None:
    found = invalid_text(doc)
    if found is not None:
        field, problem = found
        raise CorpusError(name, f"field '{field}' {problem}" if field != "text" else f"the text {problem}",
                          "save the file as UTF-8 and write the field out as text, without \\u escapes")


def check_front_matter(front: str, name: str, limits: Limits) -> None:
    """Front matter is a handful of fields: it may not be huge, nest deep, use YAML anchors and aliases (nine nested
    aliases expand to 387 million strings), or give a date that is no date."""
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
    _check_depth(tokens, name)
    _check_dates(tokens, name)


def _check_depth(tokens: list[yaml.Token], name: str) -> None:
    depth = deepest = 0
    for token in tokens:
        if isinstance(token, yaml.FlowSequenceStartToken | yaml.FlowMappingStartToken | yaml.BlockSequenceStartToken
                      | yaml.BlockMappingStartToken):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(token, yaml.FlowSequenceEndToken | yaml.FlowMappingEndToken | yaml.BlockEndToken):
            depth -= 1
    if deepest > MAX_FRONT_MATTER_DEPTH:
        raise CorpusError(name, f"front matter nests values {deepest} levels deep (at most {MAX_FRONT_MATTER_DEPTH})",
                          "give each field a plain value")


def _check_dates(tokens: list[yaml.Token], name: str) -> None:
    """A plain value YAML would read as a date must be one (`publish_date: 2018-02-30` names its field)."""
    key = ""
    for previous, token in zip(tokens, tokens[1:], strict=False):
        if not isinstance(token, yaml.ScalarToken):
            continue
        if isinstance(previous, yaml.KeyToken):
            key = str(token.value)
        elif token.plain and _YAML_DATE.fullmatch(token.value):
            try:
                yaml.safe_load(token.value)
            except (ValueError, yaml.YAMLError):
                raise CorpusError(name, f"front matter field '{key}' is {token.value}, which is no date",
                                  "write the date as YYYY-MM-DD") from None
