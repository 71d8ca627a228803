"""Probe checks: a failed or hostile publish leaves everything as it was."""

from __future__ import annotations

import re
import statistics
import threading
import time
import zlib
from typing import Any

import httpx
from probe_kit import Result, call, check, file_data, upload

# an absolute server path inside a message (/tmp/…, /home/…/corpus/…), as an error might leak it
SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|home|root|var|srv|opt|usr|work|etc|mnt|data)/")


def stamp() -> str:
    return time.strftime("%H%M%S") + str(time.time_ns() % 1000)


def policy(tag: str) -> str:
    """A small policy whose text is this run's own (no duplicate of an earlier run's)."""
    return f"探测文件{tag}\n\n第一条　本条用于发布探测{tag}。\n\n第二条　本条也用于发布探测{tag}。\n"


def put(base: str, api_key: str, doc_id: str, content: bytes | str, name: str = "", timeout: float = 300,
        **form: str) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    return httpx.put(f"{base}/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {api_key}"},
                     files={"file": (name or f"{doc_id}.md", data)}, data=form, timeout=timeout)


def brief(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:90]}"


def dense_pdf(pages: int, lines: int = 140) -> bytes:
    """A 2 KB PDF whose pages share one content stream: a sentence and a grid of rules crossing (lines/2)² times
    (4,900: just under the count past which tables are no longer looked for), about 0.7 s of CPU per page to read."""
    ops = [b"BT /F1 12 Tf 50 800 Td (Article 1 text of the probe policy document.) Tj ET"]
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


# 3. one upload stops all publishing -----------------------------------------------------------------------------------
POISONS = {"doc_number": '---\ndoc_number: "\\ud800 探测"\n---\n', "issuer": '---\nissuer: "探测\\udfff"\n---\n'}


@check("26.3", "a lone surrogate in front matter is refused (API), corpus unchanged, the next publish succeeds")
def poisoned_front_matter_api(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    tag = stamp()
    seen = []
    for field, front in POISONS.items():
        got = put(base, api_key, f"probe-poison-{field}-{tag}", front + policy(tag + field))
        seen.append(f"{field}: {got.status_code}")
        if not 400 <= got.status_code < 500 or field not in got.text:
            return False, f"{field}: {brief(got)}"
    doc_id = f"probe-after-{tag}"
    started = time.perf_counter()
    after = put(base, api_key, doc_id, policy(tag))
    took = time.perf_counter() - started
    served = httpx.get(f"{base}/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {api_key}"})
    status = httpx.post(f"{base}/api/v1/documents/{doc_id}/status", json={"status": "已废止"},
                        headers={"Authorization": f"Bearer {api_key}"}, timeout=300)
    held = after.status_code == 200 and served.status_code == 200 and status.status_code == 200
    return held, (f"{', '.join(seen)}; next publish {after.status_code} in {took:.1f} s, served "
                  f"{served.status_code}, status change {status.status_code}")


@check("26.3", "a lone surrogate in front matter is refused (editors' page), the next publish succeeds")
def poisoned_front_matter_editors(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    tag = stamp()
    name = f"probe-poison-{tag}.md"
    _, uploaded = upload(editor, f"{base}/editors", name, (POISONS["doc_number"] + policy(tag)).encode())
    event, data = call(editor, f"{base}/editors", "publish", [[file_data(uploaded[0], name)]])
    if event != "error" or "doc_number" not in str(data):
        return False, f"poisoned: {event} {str(data)[:100]}"
    name = f"probe-after-{tag}.md"
    _, uploaded = upload(editor, f"{base}/editors", name, policy(tag).encode())
    started = time.perf_counter()
    after, said = call(editor, f"{base}/editors", "publish", [[file_data(uploaded[0], name)]])
    took = time.perf_counter() - started
    return after == "complete" and "已发布" in str(said), (f"poisoned: {event} {str(data)[:70]}; next publish "
                                                          f"{after} in {took:.1f} s: {str(said)[:60]}")


def answers_during(base: str, api_key: str, doc_id: str, content: bytes, name: str) -> tuple[list[float], Any, float]:
    """The answer times of questions asked one after another while `content` is published: (times, the publish's
    response, its seconds)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    outcome: list[Any] = []

    def hostile() -> None:
        started = time.perf_counter()
        outcome.append(put(base, api_key, doc_id, content, name, 900))
        outcome.append(time.perf_counter() - started)

    worker = threading.Thread(target=hostile)
    worker.start()
    time.sleep(1.0)
    during = []
    while worker.is_alive():
        started = time.perf_counter()
        httpx.post(f"{base}/api/v1/ask", json={"question": "政务公开考核分值是多少？"}, headers=headers, timeout=300)
        during.append(time.perf_counter() - started)
    worker.join()
    return during, outcome[0], outcome[1]


def mean(during: list[float]) -> float:
    return statistics.mean(during) if during else 0.0


def times(during: list[float]) -> str:
    return (f"{mean(during):.2f} s mean (median {statistics.median(during) if during else 0:.2f} s, max "
            f"{max(during, default=0):.2f} s, {len(during)} questions)")


def normal_publish(base: str, api_key: str, tag: str) -> str:
    started = time.perf_counter()
    normal = put(base, api_key, f"probe-normal-{tag}", policy(tag))
    return f"a normal publish then {time.perf_counter() - started:.1f} s ({normal.status_code})"


@check("26.3", "answers do not wait while an upload is parsed (a 96 KB run of <!--)")
def parse_off_the_gil(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    tag = stamp()
    during, got, took = answers_during(base, api_key, f"probe-comments-{tag}", b"<!--" * 24_000 + tag.encode(),
                                       f"probe-comments-{tag}.md")
    held = mean(during) <= 1.0 and got.status_code != 500
    return held, (f"answer {times(during)} while the upload was parsed for {took:.1f} s ({brief(got)}); "
                  f"{normal_publish(base, api_key, tag)}")


@check("26.3", "a slow file is read within its budget or refused naming the file; answers do not wait for it")
def parse_budget(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    tag = stamp()
    doc_id = f"probe-dense-{tag}"
    # 10 pages of ruled grids: some 6 s of CPU to read (refused by a server whose index.parse_cpu_s is smaller)
    during, got, took = answers_during(base, api_key, doc_id, dense_pdf(10), f"{doc_id}.pdf")
    refused = 400 <= got.status_code < 500
    over = refused and "CPU" in got.text
    held = mean(during) <= 1.0 and got.status_code != 500 and (not refused or f"{doc_id}.pdf" in got.text)
    return held, (f"answer {times(during)} while a 10-page ruled PDF was read for {took:.1f} s "
                  f"({'refused past its CPU budget' if over else brief(got)}); {normal_publish(base, api_key, tag)}")


# 14. a duplicate is refused -------------------------------------------------------------------------------------------
@check("26.14", "a duplicate publish is refused naming the document, and no error shows a server path")
def duplicate(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    tag = stamp()
    first = put(base, api_key, f"probe-original-{tag}", policy(tag))
    again = put(base, api_key, f"probe-copy-{tag}", policy(tag))
    served = httpx.get(f"{base}/api/v1/documents/probe-copy-{tag}", headers={"Authorization": f"Bearer {api_key}"})
    later = put(base, api_key, f"probe-later-{tag}", policy(tag + "later"))
    leaks = [r for r in (first, again, later) if SERVER_PATH.search(r.text)]
    held = (first.status_code == 200 and again.status_code in (409, 422) and f"probe-original-{tag}" in again.text
            and served.status_code == 404 and later.status_code == 200 and not leaks)
    return held, (f"original {first.status_code}; copy {brief(again)}; copy served {served.status_code}; later "
                  f"publish {later.status_code}" + (f"; server path in: {leaks[0].text[:120]}" if leaks else ""))


@check("26.14", "a duplicate publish on the editors' page is refused naming the document")
def duplicate_editors(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    tag = stamp()
    said = []
    for name in (f"probe-original-{tag}.md", f"probe-copy-{tag}.md"):
        _, uploaded = upload(editor, f"{base}/editors", name, policy(tag).encode())
        said.append(call(editor, f"{base}/editors", "publish", [[file_data(uploaded[0], name)]]))
    (first, _), (event, data) = said
    held = first == "complete" and event == "error" and f"probe-original-{tag}" in str(data) \
        and not SERVER_PATH.search(str(data))
    return held, f"original {first}; copy {event}: {str(data)[:120]}"


# 15. input that answered 500 ------------------------------------------------------------------------------------------
@check("26.15", "bad input gets a 4xx naming the field or file, never a 500")
def bad_input(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    tag = stamp()
    cjk = "政务公开" * 25
    tries: list[tuple[str, httpx.Response, str]] = [
        ("nested YAML", put(base, api_key, f"probe-nested-{tag}",
                            "---\ntitle: " + "[" * 400 + "]" * 400 + "\n---\n" + policy(tag)), "front matter"),
        ("front matter 2018-02-30", put(base, api_key, f"probe-date-{tag}",
                                        "---\npublish_date: 2018-02-30\n---\n" + policy(tag)), "publish_date"),
        ("form 2018-02-30", put(base, api_key, f"probe-form-{tag}", policy(tag), publish_date="2018-02-30"),
         "publish_date"),
        ("85-character id", put(base, api_key, cjk[:85], policy(tag)), "doc_id"),
        ("surrogate in /v1/chat/completions", httpx.post(
            f"{base}/v1/chat/completions", headers=headers, timeout=60,
            content=b'{"model": "policy-assistant", "messages": [{"role": "user", "content": "\\ud800"}]}'),
         "messages"),
        ("surrogate in /api/v1/ask", httpx.post(f"{base}/api/v1/ask", headers=headers, timeout=60,
                                                content=b'{"question": "\\udfff\\u653f"}'), "question"),
    ]
    for what, got, field in tries:
        if not 400 <= got.status_code < 500 or field not in got.text:
            return False, f"{what}: {brief(got)}"
    # an id that is accepted can also be replaced, its history kept
    long_id = cjk[:80]
    first = put(base, api_key, long_id, policy(tag + "long"))
    if first.status_code == 200:
        second = put(base, api_key, long_id, policy(tag + "longer"), replace="true")
        if second.status_code != 200:
            return False, f"80-character id published, then its replacement {brief(second)}"
        kept = f"80-character id published and replaced ({second.status_code})"
    elif 400 <= first.status_code < 500 and "doc_id" in first.text:
        kept = f"80-character id refused ({first.status_code})"
    else:
        return False, f"80-character id: {brief(first)}"
    return True, ", ".join(f"{what} {got.status_code}" for what, got, _ in tries) + "; " + kept
