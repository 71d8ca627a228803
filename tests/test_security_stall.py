"""A hostile document cannot stall the service: against a real `policy-assistant serve`, over HTTP, a stored clause
built to make a regex backtrack and uploads built to make a parser superlinear are published (or refused) at once,
and another client's unrelated question asked meanwhile is answered within a second."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS, ROOT
from tests.serve import own_corpus, serving

sys.path.insert(0, str(ROOT / "bench"))
import probe_stall  # noqa: E402  (the probe's own hostile files)

pytestmark = pytest.mark.slow
KEY = "pa-test-publish-key-stall"


@dataclass
class Site:
    base: str
    pid: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("stall")
    _, env = own_corpus(root, embedder, CORPUS)
    env["POLICY_ASSISTANT_API__KEYS"] = json.dumps(
        [{"name": "cms", "scope": "publish", "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
          "rate_limit_per_minute": 10_000}])
    (root / "work").mkdir()
    with serving(env, cwd=root / "work") as (base, server):
        probe_stall.ask(base, KEY, probe_stall.UNRELATED)  # warm: the first answer loads what answers need
        yield Site(base, server.pid)


def test_a_clause_built_to_backtrack_stalls_no_answer(site: Site):
    published = probe_stall.put(site.base, KEY, "stall-brackets", probe_stall.bracket_run(), "stall-brackets.md")
    assert published.status_code == 200, published.text
    during, (citing_s, citing), _ = probe_stall.meanwhile(
        lambda: probe_stall.ask(site.base, KEY, probe_stall.RUN_QUESTION), site.base, KEY)
    assert citing.status_code == 200
    assert "stall-brackets" in citing.text  # the question cites the clause: its text is shown
    assert citing_s <= 3.0, f"the citing question took {citing_s:.1f} s"
    assert probe_stall.median(during) <= 1.0, probe_stall.seen(during)
    clauses = httpx.get(f"{site.base}/api/v1/documents/stall-brackets", headers={"Authorization": f"Bearer {KEY}"},
                        timeout=60).json()["clauses"]
    assert max(len(c["text"]) for c in clauses) <= 400  # the run is split at publish: no clause over the bound


def test_an_upload_of_comment_openers_is_read_at_once(site: Site):
    held, said = probe_stall.publish_meanwhile(site.base, KEY, "stall-comments", probe_stall.comment_openers(),
                                               "stall-comments.md", limit_s=10)
    assert held, said


def test_a_long_unpunctuated_run_publishes_without_stalling_answers(site: Site):
    held, said = probe_stall.publish_meanwhile(site.base, KEY, "stall-run", probe_stall.unpunctuated(30_000),
                                               "stall-run.md", limit_s=60)
    assert held, said


def test_a_pdf_of_dense_rules_is_read_quickly(site: Site):
    held, said = probe_stall.publish_meanwhile(site.base, KEY, "stall-rules", probe_stall.ruled_pdf(4_000),
                                               "stall-rules.pdf", limit_s=15)
    assert held, said
    assert "200" in said.split(":", 1)[1][:5]


def test_html_nested_100000_deep_publishes(site: Site):
    got = probe_stall.put(site.base, KEY, "stall-nested", probe_stall.nested_html(), "stall-nested.html")
    assert got.status_code == 200, got.text


def test_a_docx_of_expanding_entities_is_refused_by_name(site: Site):
    got = probe_stall.put(site.base, KEY, "stall-entities", probe_stall.entity_docx(), "stall-entities.docx")
    assert got.status_code == 422, got.text
    assert "stall-entities.docx" in got.text and "entit" in got.text


def test_a_ten_megabyte_html_file_costs_bounded_memory(site: Site):
    status = Path(f"/proc/{site.pid}/status")
    if not status.exists():
        pytest.skip("no /proc to read the server's memory from")

    def rss_mb() -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) // 1024

    before, peak, done = rss_mb(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        got = probe_stall.put(site.base, KEY, "stall-big", probe_stall.big_html(), "stall-big.html")
    finally:
        done.set()
        sampler.join()
    assert got.status_code != 500, got.text
    assert peak[0] - before < 400, f"RSS grew by {peak[0] - before} MB while 10 MB of HTML was read"
