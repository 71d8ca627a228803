"""The core records: a policy document and the clauses it is split into."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

# Statuses that mean a document (and so each of its clauses) is no longer in force.
NOT_IN_FORCE = ("已废止", "已廢止", "失效", "已失效", "历史版本", "歷史版本", "已修改", "已被修改")


# how the kinds of document are named to people (the CLI, the editors' page)
KIND_NAMES = {"policy": "政策文件", "interpretation": "政策解读"}


@dataclass
class PolicyDocument:
    """One policy or interpretation, with its front-matter metadata and cleaned text."""

    doc_id: str
    title: str
    text: str
    doc_number: str = ""
    issuer: str = ""
    publish_date: str = ""
    effective_date: str = ""
    expiry_date: str = ""
    status: str = "现行有效"
    kind: str = "policy"
    interprets: str = ""
    # The document that supersedes this one / that this one supersedes (doc id, title or 文号).
    replaced_by: str = ""
    replaces: str = ""
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        payload = "\x1f".join(f"{k}={v}" for k, v in sorted(self.metadata().items())) + "\x1e" + self.text
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def metadata(self) -> dict[str, str]:
        """Flat metadata carried by every clause of this document."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "doc_number": self.doc_number,
            "issuer": self.issuer,
            "publish_date": self.publish_date,
            "effective_date": self.effective_date,
            "expiry_date": self.expiry_date,
            "status": self.status,
            "kind": self.kind,
            "interprets": self.interprets,
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "source": self.source,
        }

    def in_force(self, today: dt.date | None = None) -> bool:
        return in_force(self.status, self.expiry_date, today)


def invalid_text(doc: PolicyDocument) -> tuple[str, str] | None:
    """(the field, what is wrong) for the first of the document's text and metadata that is not proper Unicode (a
    lone surrogate such as "\\ud800" in front matter cannot be stored, indexed or shown), or None."""
    fields = [("text", doc.text), *doc.metadata().items(), *((f"{_shown(k)} (its name)", k) for k in doc.extra),
              *((_shown(k), v) for k, v in doc.extra.items())]
    for name, value in fields:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return name, (f"holds a lone surrogate (U+{ord(value[e.start]):04X}) at character {e.start + 1}, which is "
                          "not Unicode text")
    return None


def _shown(name: str) -> str:
    """A field's name as a message can carry it (a name that is itself no Unicode, escaped)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return ascii(name)[1:-1]


def in_force(status: str, expiry_date: str = "", today: dt.date | None = None) -> bool:
    """False when the status says so (已废止, 历史版本 …) or the expiry date has passed."""
    return status not in NOT_IN_FORCE and not expired(expiry_date, today)


def expired(expiry_date: str, today: dt.date | None = None) -> bool:
    try:
        return bool(expiry_date) and dt.date.fromisoformat(expiry_date[:10]) < (today or dt.date.today())
    except ValueError:
        return False


@dataclass
class Clause:
    """The unit that is embedded, retrieved and cited."""

    clause_id: str
    doc_id: str
    path: tuple[str, ...]
    label: str
    heading: str
    text: str
    order: int
    metadata: dict[str, str] = field(default_factory=dict)
    # Labels of the interpreted document's clauses that this (interpretation) clause explains.
    refers_to: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")

    @property
    def doc_number(self) -> str:
        return self.metadata.get("doc_number", "")

    @property
    def status(self) -> str:
        return self.metadata.get("status", "")

    def in_force(self, today: dt.date | None = None) -> bool:
        return in_force(self.status, self.metadata.get("expiry_date", ""), today)
