"""A failed or hostile publish leaves everything as it was: poisoned front matter, a duplicate, input that once
answered 500 and a file that takes too long to read are each refused naming the field or file, nothing is written,
and the next publish goes through. Each is sent to a real `policy-assistant serve` over HTTP, through the JSON API
with a publish key and through the editors' page."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS
from tests.gradio_api import call, login, upload
from tests.serve import own_corpus, serving

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-pass"
KEY = "pa-test-publish-key-0026"
# a server path in a message, as an error once leaked it
SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|home|root|var|srv|opt|usr|work|private)/")


def policy(tag: str) -> str:
    return f"测试办法{tag}\n\n第一条　本办法用于发布测试{tag}。\n\n第二条　本办法第二条{tag}。\n"


@dataclass
class Site:
    base: str
    root: Path
    corpus: Path

    def put(self, doc_id: str, content: bytes | str, name: str = "", **form: str) -> httpx.Response:
        data = content.encode() if isinstance(content, str) else content
        return httpx.put(f"{self.base}/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {KEY}"},
                         files={"file": (name or f"{doc_id}.md", data)}, data=form, timeout=300)

    def api(self, method: str, path: str, **more: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEY}", **more.pop("headers", {})}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=300, **more)

    def snapshot(self) -> dict[str, str]:
        """Every file under the corpus (its originals included) with its bytes' hash."""
        return {p.relative_to(self.corpus).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.corpus.rglob("*")) if p.is_file()}

    def documents(self) -> dict[str, str]:
        got = self.api("GET", "/api/v1/documents?all=true")
        assert got.status_code == 200, got.text
        return {d["doc_id"]: d["indexed_at"] + d["status"] for d in got.json()["documents"]}

    def editor(self) -> Any:
        status, opener = login(self.base, PASSWORD)
        assert status == 200
        return opener

    def publish(self, opener: Any, name: str, content: bytes | str, endpoint: str = "publish") -> tuple[str, Any]:
        data = content.encode() if isinstance(content, str) else content
        file = upload(self.base, opener, name, data)
        return call(f"{self.base}/editors", endpoint, [[file], *[""] * 8, False], opener)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Site]:
    """`serve` with an editor account, a publish key and a 2-second reading budget, over its own demo corpus."""
    root = tmp_path_factory.mktemp("publish")
    corpus, env = own_corpus(root, embedder, CORPUS)
    env = {**env, "POLICY_ASSISTANT_WEB__EDITOR_USERNAME": "editor", "POLICY_ASSISTANT_WEB__EDITOR_PASSWORD": PASSWORD,
           "POLICY_ASSISTANT_API__KEYS": json.dumps([{"name": "cms", "scope": "publish",
                                                      "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                                                      "rate_limit_per_minute": 10_000}]),
           "POLICY_ASSISTANT_INDEX__PARSE_CPU_S": "2", "GRADIO_TEMP_DIR": str(root / "gradio")}
    (root / "work").mkdir()
    with serving(env, cwd=root / "work") as (base, _):
        yield Site(base, root, corpus)


POISONED = {"doc_number": '---\ndoc_number: "\\ud800 测试"\n---\n', "issuer": '---\nissuer: "测试\\udfff"\n---\n'}


@pytest.mark.parametrize("field", list(POISONED))
def test_poisoned_front_matter_changes_nothing_and_the_next_publish_succeeds(site: Site, field: str) -> None:
    before, indexed = site.snapshot(), site.documents()
    refused = site.put(f"poisoned-{field}", POISONED[field] + policy(field))
    assert refused.status_code == 422 and field in refused.json()["error"]["message"], refused.text
    assert site.snapshot() == before and site.documents() == indexed

    published = site.put(f"after-poison-{field}", policy(f"after-{field}"))
    assert published.status_code == 200 and published.json()["summary"]["added"] == [f"after-poison-{field}"]
    changed = site.api("POST", f"/api/v1/documents/after-poison-{field}/status", json={"status": "已废止"})
    assert changed.status_code == 200 and changed.json()["status"] == "已废止", changed.text


def test_poisoned_front_matter_on_the_editors_page_changes_nothing(site: Site) -> None:
    editor = site.editor()
    before, indexed = site.snapshot(), site.documents()
    for endpoint in ("preview", "publish"):
        event, said = site.publish(editor, "poisoned-page.md", POISONED["doc_number"] + policy("page"), endpoint)
        assert event == "error" and "doc_number" in str(said), (endpoint, said)
    assert site.snapshot() == before and site.documents() == indexed

    event, said = site.publish(editor, "after-poison-page.md", policy("after-page"))
    assert event == "complete" and "已发布" in str(said), said


def test_a_duplicate_is_refused_naming_the_document_and_nothing_is_written(site: Site) -> None:
    assert site.put("original", policy("dup")).status_code == 200
    before, indexed = site.snapshot(), site.documents()
    copy = site.put("copy", policy("dup"))
    assert copy.status_code == 409 and "'original'" in copy.json()["error"]["message"], copy.text
    assert site.snapshot() == before and site.documents() == indexed
    assert site.api("GET", "/api/v1/documents/copy").status_code == 404

    event, said = site.publish(site.editor(), "copy-page.md", policy("dup"))
    assert event == "error" and "original" in str(said) and not SERVER_PATH.search(str(said)), said
    assert site.snapshot() == before

    later = site.put("later", policy("later"))
    assert later.status_code == 200 and not SERVER_PATH.search(later.text), later.text


def test_input_that_answered_500_gets_a_4xx_naming_the_field(site: Site) -> None:
    before = site.snapshot()
    cases = {
        "front matter": site.put("nested", "---\ntitle: " + "[" * 400 + "]" * 400 + "\n---\n" + policy("n")),
        "publish_date": site.put("bad-date", "---\npublish_date: 2018-02-30\n---\n" + policy("d")),
        "publish_date ": site.put("bad-form-date", policy("f"), publish_date="2018-02-30"),
        "doc_id": site.put("政务公开" * 21 + "政", policy("long")),  # 85 characters, 255 bytes
    }
    for field, got in cases.items():
        assert got.status_code == 422 and field.strip() in got.text, (field, got.status_code, got.text)
    assert site.snapshot() == before

    for path, body in (("/v1/chat/completions", b'{"model": "policy-assistant", "messages": [{"role": "user", '
                                                 b'"content": "\\ud800"}]}'),
                       ("/api/v1/ask", b'{"question": "\\u653f\\udfff"}'),
                       ("/api/v1/ask", b'{"question": "\\u653f", "history": ["\\udfff"]}')):
        got = site.api("POST", path, content=body, headers={"Content-Type": "application/json"})
        assert got.status_code == 422 and got.json()["error"]["param"].split(".")[0] in ("messages", "question",
                                                                                       "history"), got.text


def test_the_longest_id_that_publishes_can_be_replaced_and_keeps_its_history(site: Site) -> None:
    doc_id = ("政务公开" * 17)[:66]  # 198 bytes
    assert site.put(doc_id, policy("first")).status_code == 200
    again = site.put(doc_id, policy("second"), replace="true")
    assert again.status_code == 200 and again.json()["summary"]["updated"] == [doc_id], again.text
    assert any(p.name.startswith(f"{doc_id}.md.replaced-") for p in (site.corpus / ".originals").iterdir())
    too_long = site.put(doc_id + "政", policy("third"))
    assert too_long.status_code == 422 and too_long.json()["error"]["param"] == "doc_id"


def dense_pdf(pages: int, lines: int = 140) -> bytes:
    """A 2 KB PDF whose pages share one grid of (lines/2)² crossing rules (4,900, just under the count past which
    tables are no longer looked for): about 0.7 s of CPU per page to read."""
    ops = [b"BT /F1 12 Tf 50 800 Td (Article 1 text of the test policy document.) Tj ET"]
    for i in range(lines):
        at = 50 + i * (700 if i % 2 else 500) / lines
        ops.append(b"50 %.2f m 550 %.2f l S" % (at, at) if i % 2 else b"%.2f 50 m %.2f 750 l S" % (at, at))
    stream = zlib.compress(b"\n".join(ops), 9)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 3 0 R "
                b"/Resources << /Font << /F1 4 0 R >> >> >>"] * pages
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_a_file_past_the_reading_budget_is_refused_and_answers_do_not_wait(site: Site) -> None:
    before = site.snapshot()
    outcome: list[httpx.Response] = []
    hostile = threading.Thread(target=lambda: outcome.append(site.put("dense", dense_pdf(8), "dense.pdf")))
    hostile.start()
    during = []
    while hostile.is_alive():
        started = time.perf_counter()
        asked = site.api("POST", "/api/v1/ask", json={"question": "政务公开考核分值是多少？"})
        during.append(time.perf_counter() - started)
        assert asked.status_code == 200
    hostile.join()
    refused = outcome[0]
    assert refused.status_code == 422 and "dense.pdf" in refused.text and "CPU" in refused.text, refused.text
    assert during and statistics.mean(during) < 1.0, during
    assert site.snapshot() == before

    event, said = site.publish(site.editor(), "dense-page.pdf", dense_pdf(8), "preview")
    assert event == "error" and "dense-page.pdf" in str(said) and "CPU" in str(said), said


def test_a_publish_that_fails_while_indexing_puts_back_every_file(tmp_path: Path) -> None:
    from assistant.errors import AssistantError
    from assistant.index.publish import IndexSummary
    from assistant.ingest.limits import Limits
    from assistant.publishing import PublishError, Upload, publish_files, read_uploads

    corpus = tmp_path / "corpus"
    (corpus / ".originals").mkdir(parents=True)
    (corpus / "rules.txt").write_text(policy("old"), encoding="utf-8")
    (corpus / ".originals" / "rules.md").write_text("an earlier original", encoding="utf-8")
    upload = tmp_path / "upload" / "rules.md"
    upload.parent.mkdir()
    upload.write_text(policy("new"), encoding="utf-8")
    loaded = read_uploads([Upload(upload, upload.name)], {}, Limits(parse_cpu_s=0), 400)

    def snapshot() -> dict[str, bytes]:
        return {p.relative_to(corpus).as_posix(): p.read_bytes() for p in corpus.rglob("*") if p.is_file()}

    before = snapshot()

    def busy() -> IndexSummary:
        assert "rules.md" in {p.name for p in corpus.iterdir()}  # written, then the index fails
        raise AssistantError("another reindex holds the lock")

    with pytest.raises(AssistantError, match="lock"):
        publish_files(loaded, corpus, busy, lambda doc_id: None)
    assert snapshot() == before
    with pytest.raises(PublishError, match="rules"):
        publish_files(loaded, corpus, lambda: IndexSummary(errors=["corpus/rules.md: refused"]), lambda doc_id: None)
    assert snapshot() == before


def test_index_reports_a_poisoned_file_by_its_corpus_name_and_indexes_the_rest(tmp_path: Path,
                                                                                embedder: Any) -> None:
    from assistant.index.build import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "poisoned.md").write_text(POISONED["doc_number"] + policy("p"), encoding="utf-8")
    (corpus / "good.md").write_text(policy("g"), encoding="utf-8")
    summary = build_index([corpus], tmp_path / "index", embedder)
    assert summary.added == ["good"]
    assert len(summary.errors) == 1 and summary.errors[0].startswith("corpus/poisoned.md: field 'doc_number'")
    assert str(tmp_path) not in summary.errors[0]


def test_the_reading_child_is_bounded_in_cpu_and_memory_and_reads_as_this_process_does() -> None:
    from assistant.errors import CorpusError
    from assistant.ingest.limits import Limits
    from assistant.ingest.sandbox import parse_file, run_bounded

    started = time.process_time()
    with pytest.raises(CorpusError, match=r"spin\.md: needs more than 1 s of CPU time"):
        run_bounded(pow, 3, 10**10, name="spin.md", limits=Limits(parse_cpu_s=1))
    with pytest.raises(CorpusError, match=r"big\.md: needs more than 300,000,000 bytes of memory"):
        run_bounded(bytearray, 2_000_000_000, name="big.md", limits=Limits(parse_memory_bytes=300_000_000))
    assert time.process_time() - started < 1  # the work was the child's
    seed = CORPUS / "shandong-2018-zhengwu-gongkai.md"
    apart, here = (parse_file(seed, CORPUS, Limits(parse_cpu_s=cpu), 400) for cpu in (60, 0))
    assert apart[0] == here[0] and [c.clause_id for c in apart[1]] == [c.clause_id for c in here[1]]
