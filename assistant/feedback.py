"""Staff feedback on answers (👍/👎 and a comment), kept in SQLite with the question, answer and citations."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL, refused INTEGER NOT NULL);
"""
COLUMNS = ("id", "created_at", "rating", "comment", "question", "answer", "citations", "refused")


class FeedbackStore:
    """One SQLite file; every call opens its own connection (the web server answers from many threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(self, rating: str, comment: str, answer: dict[str, Any]) -> int:
        """Store one rating ('up' or 'down') of an answer (`Answer.to_json()`); its id."""
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        citations = "; ".join(f"[{c['n']}] 《{c['title']}》 {c['clause']}" for c in answer.get("citations", []))
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, answer, citations, refused) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.strftime("%Y-%m-%d %H:%M:%S"), rating, comment.strip(), answer.get("question", ""),
                 answer.get("answer", ""), citations, int(bool(answer.get("refused")))))
            return int(cursor.lastrowid or 0)

    def rows(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            return [dict(zip(COLUMNS, row, strict=True))
                    for row in db.execute(f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id")]

    def to_csv(self) -> str:
        """All feedback as CSV (UTF-8 with BOM, so that spreadsheet programs read the Chinese right)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({key: spreadsheet_cell(value) for key, value in row.items()} for row in self.rows())
        return "\ufeff" + out.getvalue()


# a cell starting with one of these is a formula to Excel, WPS and LibreOffice (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a spreadsheet program shows it without running it: text that would start a formula gets a
    leading single quote (anonymous questions and comments reach the editors' spreadsheet)."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def answer_record(answer: Any) -> str:
    """What the chat keeps of its last answer, for feedback on it."""
    return json.dumps(answer.to_json(), ensure_ascii=False)
