"""Security smoke test: replay known attacks against a running `policy-assistant serve` and print, for each,
`held` or `broken` with what was seen.

    .venv/bin/python bench/probe.py http://127.0.0.1:7860 --editor editor:PASSWORD --wechat-token TOKEN

Without `--editor` the editors' checks that need a login are skipped; without `--wechat-token` the WeChat checks
are. Some checks change the server's corpus (a refused overwrite, a test upload): run it against a test server.
Exit code: the number of broken checks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
import zipfile
from typing import Any

import httpx
from probe_kit import CHECKS, POLICY, Result, call, check, file_data, login, upload, urls_in


# 1. anonymous file read -------------------------------------------------------------------------------------------
@check("1", "chat history with a file part does not read a server file")
def file_part_in_history(base: str, **_: Any) -> Result:
    anonymous = httpx.Client()
    history = [{"role": "user", "content": [{"type": "file", "file": file_data("/etc/passwd")}]},
               {"role": "assistant", "content": [{"type": "text", "text": "好的"}]}]
    event, data = call(anonymous, base, "ask", ["政务公开考核分值是多少？", history])
    for url in urls_in(data):
        got = anonymous.get(url if url.startswith("http") else base + url)
        if got.status_code == 200 and b"root:" in got.content:
            return False, f"{url} served /etc/passwd"
    return True, f"{event}: {str(data)[:100]}"


@check("1", "file, proxy and stream routes serve no server file")
def file_routes(base: str, **_: Any) -> Result:
    anonymous = httpx.Client()
    for path in ("/gradio_api/file=/etc/passwd", "/gradio_api/file/etc/passwd", "/file=/etc/passwd",
                 "/editors/gradio_api/file=/etc/passwd", "/gradio_api/file=http://127.0.0.1:1/",
                 "/gradio_api/proxy=http://127.0.0.1:1/etc/passwd", "/gradio_api/file=state/feedback.sqlite3",
                 "/gradio_api/file=/proc/self/environ"):
        got = anonymous.get(base + path)
        if got.status_code == 200:
            return False, f"{path}: 200 ({got.content[:40]!r})"
    return True, "every path refused"


@check("2", "an editor cannot publish a server file by naming its path")
def editor_names_a_path(base: str, editor: httpx.Client | None = None, server_file: str = "", **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    for endpoint in ("preview", "publish"):
        event, data = call(editor, f"{base}/editors", endpoint, [[file_data(server_file)]])
        if event == "complete":
            return False, f"{endpoint} read {server_file}: {str(data)[:100]}"
    return True, f"{event}: {str(data)[:100]}"


# 3. bombs ---------------------------------------------------------------------------------------------------------
def docx_bomb(expanded_mb: int) -> bytes:
    paragraph = b"<w:p><w:r><w:t>" + "政务公开".encode() * 50 + b"</w:t></w:r></w:p>"
    body = paragraph * (expanded_mb * 1_000_000 // len(paragraph))
    document = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.'
                b'openxmlformats.org/wordprocessingml/2006/main"><w:body>' + body + b"</w:body></w:document>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml", document)
    return out.getvalue()


YAML_BOMB = ("---\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
             + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                       f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
                       for i in range(8))
             + "title: 炸弹\n---\n第一条　内容。\n")


def _refused_quickly(editor: httpx.Client, base: str, name: str, content: bytes, limit_s: float) -> Result:
    status, uploaded = upload(editor, f"{base}/editors", name, content)
    if status != 200:
        return True, f"upload refused ({status})"
    started = time.monotonic()
    event, data = call(editor, f"{base}/editors", "preview", [[file_data(uploaded[0], name)]])
    seconds = time.monotonic() - started
    held = event == "error" and seconds < limit_s
    return held, f"{event} after {seconds:.1f} s: {str(data)[:120]}"


@check("3", "a DOCX zip bomb (300 MB of XML) is refused before it is expanded")
def zip_bomb(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    return _refused_quickly(editor, base, "bomb.docx", docx_bomb(300), 10)


@check("3", "a YAML alias bomb in front matter is refused at once")
def yaml_bomb(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    return _refused_quickly(editor, base, "yaml-bomb.md", YAML_BOMB.encode(), 5)


# 4. unbounded input -----------------------------------------------------------------------------------------------
@check("4", "a 1 MB question is refused at once with a message")
def long_question(base: str, **_: Any) -> Result:
    started = time.monotonic()
    event, data = call(httpx.Client(), base, "ask", ["政务公开" * 250_000, []])
    seconds = time.monotonic() - started
    return event != "complete" and seconds < 3, f"{event} after {seconds:.1f} s: {str(data)[:100]}"


@check("4", "a 2,000-character question is refused at once with a message")
def over_length_question(base: str, **_: Any) -> Result:
    started = time.monotonic()
    event, data = call(httpx.Client(), base, "ask", ["政务公开考核分值是多少？" * 170, []])
    seconds = time.monotonic() - started
    return event == "error" and seconds < 3, f"{event} after {seconds:.1f} s: {str(data)[:100]}"


@check("4", "a history of 500 turns is refused")
def long_history(base: str, **_: Any) -> Result:
    history = [{"role": r, "content": [{"type": "text", "text": "政务公开考核分值是多少？"}]}
               for _ in range(250) for r in ("user", "assistant")]
    event, data = call(httpx.Client(), base, "ask", ["那市里呢？", history])
    return event != "complete", f"{event}: {str(data)[:100]}"


# 5. uploads -------------------------------------------------------------------------------------------------------
@check("5", "anonymous uploads to the chat are refused")
def chat_upload(base: str, **_: Any) -> Result:
    status, data = upload(httpx.Client(), base, "big.bin", b"x" * 5_000_000)
    return status >= 400, f"{status}: {str(data)[:80]}"


@check("5", "anonymous uploads to the editors' page are refused")
def editors_upload(base: str, **_: Any) -> Result:
    status, data = upload(httpx.Client(), f"{base}/editors", "big.bin", b"x" * 1000)
    return status >= 400, f"{status}: {str(data)[:80]}"


# 6. brute force ---------------------------------------------------------------------------------------------------
@check("6", "the editors' login refuses a client after repeated wrong passwords")
def brute_force(base: str, **_: Any) -> Result:
    client = httpx.Client()
    statuses = [client.post(f"{base}/editors/login", data={"username": "editor", "password": f"guess{i}"}).status_code
                for i in range(30)]
    limited = statuses.count(429)
    return limited > 0 and statuses.index(429) <= 10, f"statuses: {sorted(set(statuses))}, {limited} of 30 were 429"


# 7. overwrites ----------------------------------------------------------------------------------------------------
@check("7", "a publish that would replace a document needs confirmation")
def silent_overwrite(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    target = "shandong-2018-zhengwu-gongkai"  # the demo corpus's notice
    _, uploaded = upload(editor, f"{base}/editors", f"{target}.txt", POLICY.encode())
    event, data = call(editor, f"{base}/editors", "publish", [[file_data(uploaded[0], f"{target}.txt")]])
    return event == "error", f"{event}: {str(data)[:120]}"


@check("7", "two uploads that map to one document are refused")
def same_stem(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    files = [file_data(upload(editor, f"{base}/editors", name, POLICY.encode())[1][0], name)
             for name in ("probe-dup.txt", "probe-dup.md")]
    event, data = call(editor, f"{base}/editors", "preview", [files])
    return event == "error" and "probe-dup.md" in str(data), f"{event}: {str(data)[:120]}"


# 8. lower ---------------------------------------------------------------------------------------------------------
@check("8", "a hidden file name is refused, not written and ignored")
def hidden_name(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    _, uploaded = upload(editor, f"{base}/editors", ".probe-hidden.md", POLICY.encode())
    event, data = call(editor, f"{base}/editors", "preview", [[file_data(uploaded[0], ".probe-hidden.md")]])
    return event == "error", f"{event}: {str(data)[:120]}"


@check("10", "metadata shown in an error is escaped")
def escaped_errors(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    name = "probe-kind.md"
    content = "---\nkind: <img src=x onerror=alert(1)>\n---\n第一条　内容。"
    _, uploaded = upload(editor, f"{base}/editors", name, content.encode())
    event, data = call(editor, f"{base}/editors", "preview", [[file_data(uploaded[0], name)]])
    return event == "error" and "<img" not in str(data), f"{event}: {str(data)[:120]}"


@check("9", "WeChat: a signed 400-digit timestamp is refused, not a 500")
def wechat_timestamp(base: str, wechat_token: str = "", **_: Any) -> Result:
    if not wechat_token:
        return True, "skipped (no --wechat-token)"
    timestamp, nonce = "9" * 400, "n1"
    sig = hashlib.sha1("".join(sorted([wechat_token, timestamp, nonce])).encode()).hexdigest()
    got = httpx.get(f"{base}/wechat", params={"signature": sig, "timestamp": timestamp, "nonce": nonce, "echostr": "e"})
    return got.status_code in (400, 403), f"{got.status_code}"


@check("9", "WeChat: a signed URL replayed with another body is refused")
def wechat_replay(base: str, wechat_token: str = "", **_: Any) -> Result:
    if not wechat_token:
        return True, "skipped (no --wechat-token)"
    timestamp, nonce = str(int(time.time())), f"probe{time.time_ns()}"
    sig = hashlib.sha1("".join(sorted([wechat_token, timestamp, nonce])).encode()).hexdigest()
    params = {"signature": sig, "timestamp": timestamp, "nonce": nonce, "openid": "oprobe"}

    def body(msg_id: int, text: str) -> str:
        return (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oprobe]]></FromUserName>"
                f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>")
    first = httpx.post(f"{base}/wechat", params=params, content=body(time.time_ns(), "帮助"), timeout=30)
    again = httpx.post(f"{base}/wechat", params=params, content=body(time.time_ns() + 1, "帮助"), timeout=30)
    held = first.status_code == 200 and again.status_code in (400, 403)
    return held, f"{first.status_code}, then {again.status_code}"


@check("11", "anonymous GET /editors/ reveals no function")
def editors_page(base: str, **_: Any) -> Result:
    anonymous = httpx.Client()
    for path in ("/editors/", "/editors/config", "/editors/gradio_api/info", "/editors/gradio_api/openapi.json"):
        got = anonymous.get(base + path)
        if got.status_code == 200 and any(word in got.text for word in ("publish", "set_status", "export_feedback")):
            return False, f"{path}: 200 and lists the editors' functions"
    return True, "login page only"


@check("12", "another origin may not read responses (CORS)")
def cors(base: str, **_: Any) -> Result:
    for origin in ("http://localhost:9999", "http://evil.example"):
        got = httpx.get(f"{base}/config", headers={"Origin": origin})
        allowed = got.headers.get("access-control-allow-origin", "")
        if allowed in (origin, "*"):
            return False, f"{origin} allowed ({got.headers.get('access-control-allow-credentials', '')})"
    return True, "no Access-Control-Allow-Origin for other origins"


@check("12", "a cross-site login form is refused")
def cross_site_login(base: str, **_: Any) -> Result:
    got = httpx.post(f"{base}/editors/login", data={"username": "editor", "password": "x"},
                     headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    return got.status_code == 403, f"{got.status_code}"


# 13. doors for other systems ----------------------------------------------------------------------------------------
@check("13", "the API, the OpenAI-compatible endpoint and MCP refuse a request without a valid key")
def doors_without_a_key(base: str, **_: Any) -> Result:
    question = {"question": "政务公开考核分值是多少？"}
    chat = {"model": "policy-assistant", "messages": [{"role": "user", "content": "政务公开考核分值是多少？"}]}
    tries = [("GET", "/api/v1/documents", None, {}), ("POST", "/api/v1/ask", question, {}),
             ("GET", "/api/v1/search?q=政务公开&api_key=x", None, {}), ("GET", "/v1/models", None, {}),
             ("POST", "/v1/chat/completions", chat, {"Authorization": "Bearer sk-guess"}),
             ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"Authorization": "Basic eDp4"}),
             ("DELETE", "/api/v1/documents/shandong-2018-zhengwu-gongkai", None, {})]
    for method, path, body, headers in tries:
        got = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
        if got.status_code != 401:
            return False, f"{method} {path}: {got.status_code} {got.text[:80]}"
    return True, f"{len(tries)} requests, each 401"


def main() -> None:
    # each module's checks register themselves
    import probe_access  # noqa: F401
    import probe_limits  # noqa: F401
    import probe_publish  # noqa: F401
    import probe_stall  # noqa: F401

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the server's base URL, e.g. http://127.0.0.1:7860")
    parser.add_argument("--editor", default="", help="USERNAME:PASSWORD of an editor account")
    parser.add_argument("--wechat-token", default="", help="the server's WeChat token")
    parser.add_argument("--server-file", default="README.md",
                        help="a text file on the server that editors must not be able to publish by naming it "
                        "(relative to the server's working directory)")
    parser.add_argument("--api-key", default="", help="an API key with the publish scope, for the doors' checks")
    parser.add_argument("--only", default="", help="comma-separated item numbers to run, e.g. 1,2,7")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    editor = login(base, args.editor) if args.editor else None  # before the brute-force check locks this client out
    broken = 0
    chosen = [c for c in CHECKS if not args.only or c[0] in args.only.split(",")]
    for number, name, fn in chosen:
        try:
            held, seen = fn(base, editor=editor, wechat_token=args.wechat_token, server_file=args.server_file,
                            api_key=args.api_key)
        except httpx.HTTPError as e:
            held, seen = False, f"{e.__class__.__name__}: {e}"
        broken += not held
        print(f"{'held  ' if held else 'BROKEN'}  {number:>5}  {name}  — {seen}", flush=True)
    print(f"{len(chosen) - broken} held, {broken} broken")
    sys.exit(broken)


if __name__ == "__main__":
    main()
