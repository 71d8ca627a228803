"""Attacks replayed against a real `policy-assistant serve` over HTTP, as an outsider (or a careless editor) sends
them: each test failed before its fix."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS, SEED
from tests.serve import own_corpus, serving

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-pass"
TOKEN = "wechat-token"
POLICY = "示例办法\n\n第一条　本办法用于测试。\n\n第二条　本办法第二条。\n"


@dataclass
class Site:
    base: str
    root: Path
    corpus: Path
    gradio_dir: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Site]:
    """`serve` with an editor account and a WeChat token (plaintext mode) over its own copy of the demo corpus."""
    root = tmp_path_factory.mktemp("security")
    corpus, env = own_corpus(root, embedder, CORPUS)
    env = {**env, "POLICY_ASSISTANT_WEB__EDITOR_USERNAME": "editor",
           "POLICY_ASSISTANT_WEB__EDITOR_PASSWORD": PASSWORD, "POLICY_ASSISTANT_WECHAT__TOKEN": TOKEN,
           "POLICY_ASSISTANT_WEB__LOGIN_WINDOW_S": "8", "POLICY_ASSISTANT_WEB__MAX_UPLOAD_FOLDER_BYTES": "3000000",
           "GRADIO_TEMP_DIR": str(root / "gradio")}
    (root / "work").mkdir()
    with serving(env, cwd=root / "work") as (base, _):
        yield Site(base, root, corpus, root / "gradio")


def call(client: httpx.Client, base: str, endpoint: str, data: list[Any]) -> tuple[str, Any]:
    """A Gradio endpoint called as its JavaScript client does: ('complete' | 'error' | 'http N', data)."""
    started = client.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data}, timeout=60)
    if started.status_code != 200:
        return f"http {started.status_code}", started.text
    stream = client.get(f"{base}/gradio_api/call/{endpoint}/{started.json()['event_id']}", timeout=300).text
    for event in ("complete", "error"):
        if f"event: {event}" in stream:
            return event, json.loads(stream.split(f"event: {event}", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    raise AssertionError(stream)


def editor(site: Site) -> httpx.Client:
    client = httpx.Client()
    response = client.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD})
    assert response.status_code == 200
    return client


def upload(client: httpx.Client, site: Site, name: str, content: bytes) -> dict[str, Any]:
    response = client.post(f"{site.base}/editors/gradio_api/upload", files={"files": (name, content)}, timeout=60)
    assert response.status_code == 200, response.text
    return {"path": response.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def publish(client: httpx.Client, site: Site, files: list[dict[str, Any]], confirm: bool = False,
            endpoint: str = "publish") -> tuple[str, Any]:
    return call(client, f"{site.base}/editors", endpoint, [files, *[""] * 8, confirm])


def file_part(path: str) -> dict[str, Any]:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def test_a_file_part_in_the_chat_history_reads_no_server_file(site: Site):
    secret = site.root / "state" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("root:x:0:0:secret", encoding="utf-8")
    anonymous = httpx.Client()
    for path in ("/etc/passwd", str(secret), "/proc/self/environ"):
        history = [{"role": "user", "content": [{"type": "file", "file": file_part(path)}]},
                   {"role": "assistant", "content": [{"type": "text", "text": "好的"}]}]
        event, data = call(anonymous, site.base, "ask", ["政务公开考核分值是多少？", history])
        assert event == "error", data
        assert "url" not in json.dumps(data)
    copied = [p.name for p in site.gradio_dir.rglob("*") if p.is_file()] if site.gradio_dir.exists() else []
    assert not {"passwd", "secret.txt", "environ"} & set(copied)
    # a text-only history is still read
    history = [{"role": "user", "content": [{"type": "text", "text": "政务公开考核分值是多少？"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "……"}]}]
    event, data = call(anonymous, site.base, "ask", ["那市里呢？", history])
    assert event == "complete" and len(data[0]) == 4


def test_file_routes_serve_no_server_file(site: Site):
    anonymous = httpx.Client()
    for path in ("/gradio_api/file=/etc/passwd", f"/gradio_api/file={site.root}/state/feedback.sqlite3",
                 "/gradio_api/file=/proc/self/environ", "/gradio_api/file=http://127.0.0.1:9/x",
                 "/gradio_api/proxy=http://127.0.0.1:9/x", "/editors/gradio_api/file=/etc/passwd",
                 "/gradio_api/stream/x/y/1/playlist.m3u8", "/file=/etc/passwd"):
        response = anonymous.get(site.base + path)
        assert response.status_code in (401, 403, 404), path
        assert b"root:" not in response.content


def test_an_editor_cannot_publish_a_server_file_by_naming_its_path(site: Site):
    client = editor(site)
    before = sorted(p.name for p in site.corpus.iterdir())
    readme = Path(__file__).resolve().parents[1] / "README.md"
    for endpoint in ("preview", "publish"):
        event, data = publish(client, site, [file_part(str(readme))], endpoint=endpoint)
        assert event == "error", data
    assert sorted(p.name for p in site.corpus.iterdir()) == before


def test_a_docx_bomb_is_refused_over_http_at_once(site: Site):
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("word/document.xml", b"<w:p>" + b"x" * 150_000_000 + b"</w:p>")
    client = editor(site)
    started = time.monotonic()
    event, data = publish(client, site, [upload(client, site, "bomb.docx", out.getvalue())], endpoint="preview")
    assert event == "error" and "bomb.docx" in data["error"] and "over the 100,000,000-byte limit" in data["error"]
    assert time.monotonic() - started < 10


def test_questions_and_histories_are_bounded(site: Site):
    anonymous = httpx.Client()
    started = time.monotonic()
    event, data = call(anonymous, site.base, "ask", ["政务公开" * 200, []])
    assert event == "error" and "问题过长（800 字）" in data["error"] and time.monotonic() - started < 5
    huge = anonymous.post(f"{site.base}/gradio_api/call/ask", json={"data": ["政务" * 600_000, []]})
    assert huge.status_code == 413
    turns = [{"role": r, "content": [{"type": "text", "text": "问"}]}
             for _ in range(100) for r in ("user", "assistant")]
    event, data = call(anonymous, site.base, "ask", ["那市里呢？", turns])
    assert event == "error" and "对话过长" in data["error"]


def test_the_chat_takes_no_uploads(site: Site):
    response = httpx.post(f"{site.base}/gradio_api/upload", files={"files": ("big.bin", b"x" * 1_000_000)})
    assert response.status_code == 403
    stored = [p for p in site.gradio_dir.rglob("big.bin")] if site.gradio_dir.exists() else []
    assert stored == []
    assert httpx.post(f"{site.base}/editors/gradio_api/upload", files={"files": ("a.md", b"x")}).status_code == 401


def test_uploads_stop_while_the_upload_folder_is_full(site: Site):
    client = editor(site)
    big = upload(client, site, "big.md", b"x" * 3_000_000)
    full = client.post(f"{site.base}/editors/gradio_api/upload", files={"files": ("more.md", b"x")})
    assert full.status_code == 507
    Path(big["path"]).unlink()
    upload(client, site, "more.md", b"x")


def test_publishing_over_a_document_needs_confirmation_and_keeps_the_old_version(site: Site):
    client = editor(site)
    seed = site.corpus / SEED.name
    before = seed.read_bytes()
    own_fields = "---\ntitle: 替换稿\nsource: 省政府网站\nnote: 备注\n---\n"
    replacement = upload(client, site, SEED.name, f"{own_fields}{POLICY}".encode())
    event, preview = publish(client, site, [replacement], endpoint="preview")
    assert event == "complete" and "发布将替换" in preview[0] and "31 条款" in preview[0]
    event, data = publish(client, site, [replacement])
    assert event == "error" and "确认替换" in data["error"]
    assert seed.read_bytes() == before  # nothing was written
    event, (summary, _, _) = publish(client, site, [replacement], confirm=True)
    assert event == "complete" and "更新 1" in summary and "已更新" in summary
    published = seed.read_text(encoding="utf-8")
    assert "source: 省政府网站" in published and "note: 备注" in published  # its own fields are kept
    event, versions = call(client, f"{site.base}/editors", "history", [SEED.stem])
    assert event == "complete" and versions[0].count("<tr>") == 1 + 2 and "2（当前）" in versions[0]
    event, (summary, _, versions, _) = call(client, f"{site.base}/editors", "revert", [SEED.stem, 1])
    assert event == "complete" and "更新 1" in summary and versions.count("<tr>") == 1 + 3
    assert "已恢复到第 1 版" in summary
    assert seed.read_bytes() == before


def test_two_uploads_for_one_document_and_hidden_names_are_refused(site: Site):
    client = editor(site)
    pair = [upload(client, site, name, POLICY.encode()) for name in ("dup.txt", "dup.md")]
    event, data = publish(client, site, pair)
    assert event == "error" and "dup.txt" in data["error"] and "dup.md" in data["error"]
    event, data = publish(client, site, [upload(client, site, ".hidden.md", POLICY.encode())])
    assert event == "error" and ".hidden.md" in data["error"]
    assert not (site.corpus / "dup.md").exists() and not (site.corpus / ".hidden.md").exists()


def test_file_content_shown_in_an_error_is_escaped(site: Site):
    client = editor(site)
    bad = upload(client, site, "kind.md", f"---\nkind: <img src=x onerror=alert(1)>\n---\n{POLICY}".encode())
    event, data = publish(client, site, [bad], endpoint="preview")
    assert event == "error" and "kind.md" in data["error"]
    assert "<img" not in data["error"] and "&lt;img" in data["error"]


def _signed(timestamp: str, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce, "openid": "o-attacker"}


def _text_message(msg_id: int, content: str) -> str:
    return (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o-attacker]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def test_wechat_refuses_absurd_timestamps_and_replayed_signatures(site: Site):
    response = httpx.get(f"{site.base}/wechat", params={**_signed("9" * 400, "n"), "echostr": "e"})
    assert response.status_code == 403
    params = _signed(str(int(time.time())), f"n{time.time_ns()}")
    body = _text_message(1001, "帮助")
    first = httpx.post(f"{site.base}/wechat", params=params, content=body, timeout=30)
    assert first.status_code == 200 and "例如" in first.text
    again = httpx.post(f"{site.base}/wechat", params=params, content=body, timeout=30)
    assert again.status_code == 200  # WeChat's own re-delivery: the same body
    other = httpx.post(f"{site.base}/wechat", params=params, content=_text_message(1002, "帮助"), timeout=30)
    assert other.status_code == 403
    long = httpx.post(f"{site.base}/wechat", params=_signed(str(int(time.time())), "n-long"),
                      content=_text_message(1003, "政务公开" * 200), timeout=30)
    assert long.status_code == 200 and "问题过长" in long.text


def test_anonymous_visitors_of_the_editors_page_see_a_bare_login(site: Site):
    anonymous = httpx.Client()
    page = anonymous.get(f"{site.base}/editors/")
    assert page.status_code == 200 and 'type="password"' in page.text
    assert not any(word in page.text for word in ("publish", "set_status", "export_feedback", "gradio_api_info"))
    assert anonymous.get(f"{site.base}/editors").status_code == 307
    for path in ("/editors/config", "/editors/gradio_api/info", "/editors/gradio_api/openapi.json"):
        assert anonymous.get(site.base + path).status_code == 401, path
    client = editor(site)
    assert "publish" in client.get(f"{site.base}/editors/gradio_api/info").text  # after the login it is all there


def test_other_origins_can_neither_read_responses_nor_post_forms(site: Site):
    for origin in ("http://localhost:9999", "http://evil.example"):
        response = httpx.get(f"{site.base}/config", headers={"Origin": origin})
        assert response.headers.get("access-control-allow-origin") not in (origin, "*")
    cross = httpx.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD},
                       headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    own = httpx.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD},
                     headers={"Origin": site.base})
    assert own.status_code == 200


def test_repeated_wrong_passwords_lock_the_client_out_for_a_while(site: Site):
    client = httpx.Client()
    started = time.monotonic()
    statuses = [client.post(f"{site.base}/editors/login", data={"username": "editor", "password": f"guess{i}"}
                            ).status_code for i in range(7)]
    assert statuses[:5] == [400] * 5 and statuses[5:] == [429, 429]
    assert time.monotonic() - started >= 2  # each failure answered after a delay
    locked = client.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) <= 9
    time.sleep(int(locked.headers["retry-after"]))
    assert client.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD}
                       ).status_code == 200
