"""A simulated WeChat platform, written from the protocol (not with wechatpy): it signs and (in safe mode)
encrypts pushes, delivers each message up to three times with its own timeout, and serves the
customer-service API (`/cgi-bin/stable_token`, `/cgi-bin/message/custom/send`) on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.net import free_port  # noqa: F401 (the platform's users start servers on it)

TOKEN = "platformtoken"
APP_ID = "wx0123456789abcdef"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def aes_encrypt(xml: str, key43: str, app_id: str) -> str:
    key = base64.b64decode(key43 + "=")
    raw = os.urandom(16) + struct.pack(">I", len(xml.encode())) + xml.encode() + app_id.encode()
    pad = 32 - len(raw) % 32
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def aes_decrypt(encrypted: str, key43: str) -> tuple[str, str]:
    key = base64.b64decode(key43 + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    raw = raw[:-raw[-1]]
    length = struct.unpack(">I", raw[16:20])[0]
    return raw[20:20 + length].decode(), raw[20 + length:].decode()


def text_xml(openid: str, content: str, msg_id: int, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def voice_xml(openid: str, recognition: str | None, msg_id: int) -> str:
    rec = f"<Recognition><![CDATA[{recognition}]]></Recognition>" if recognition is not None else ""
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
            f"<MediaId><![CDATA[media1]]></MediaId><Format><![CDATA[amr]]></Format>{rec}<MsgId>{msg_id}</MsgId></xml>")


def image_xml(openid: str, msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId></xml>")


def event_xml(openid: str, event: str, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event></xml>")


@dataclass
class Delivery:
    """What one message came to: the reply the user saw (None: none), and how each delivery ended."""

    reply: str | None
    outcomes: list[str] = field(default_factory=list)  # "replied", "empty", "timeout", "HTTP 403", …


class Platform:
    """Pushes to `url` (the account's /wechat) in plaintext, compatible or safe mode."""

    def __init__(self, url: str, mode: str = "plain", token: str = TOKEN, key: str = AES_KEY,
                 app_id: str = APP_ID, timeout_s: float = 5.0, deliveries: int = 3) -> None:
        self.url, self.mode, self.token, self.key, self.app_id = url, mode, token, key, app_id
        self.timeout_s, self.deliveries = timeout_s, deliveries

    def verify(self, echostr: str = "echo123", good: bool = True) -> tuple[int, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
        sig = signature(self.token, timestamp, nonce) if good else "0" * 40
        query = urllib.parse.urlencode({"signature": sig, "timestamp": timestamp, "nonce": nonce, "echostr": echostr})
        return self._request(f"{self.url}?{query}", None, 10)

    def push(self, xml: str, *, timestamp: int | None = None, good_signature: bool = True,
             timeout_s: float | None = None, raw_body: bytes | None = None) -> tuple[int, str]:
        """One delivery: (HTTP status or 0 on timeout, reply body)."""
        ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(4)
        query = {"signature": signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o"}
        if not good_signature:
            query["signature"] = "0" * 40
        body = xml.encode()
        if self.mode in ("compat", "safe"):
            encrypted = aes_encrypt(xml, self.key, self.app_id)
            query.update(encrypt_type="aes", msg_signature=signature(self.token, ts, nonce, encrypted))
            if not good_signature:
                query["msg_signature"] = "0" * 40
            envelope = f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            if self.mode == "compat":  # plaintext fields and the encrypted copy side by side
                body = xml.replace("</xml>", envelope + "</xml>").encode()
            else:
                body = f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName>{envelope}</xml>".encode()
        return self._request(f"{self.url}?{urllib.parse.urlencode(query)}", raw_body or body,
                             timeout_s or self.timeout_s)

    def deliver(self, xml: str) -> Delivery:
        """As WeChat does: deliver, and deliver again after each timeout, up to `deliveries` times."""
        result = Delivery(None)
        for _ in range(self.deliveries):
            status, body = self.push(xml)
            if status == 0:
                result.outcomes.append("timeout")
                continue
            if status != 200:
                result.outcomes.append(f"HTTP {status}")
                return result
            result.reply = self.content(body)
            result.outcomes.append("replied" if result.reply is not None else "empty")
            return result
        return result

    def content(self, body: str) -> str | None:
        """The text a user would see from a reply body (None for `success` or empty)."""
        if body.strip() in ("", "success"):
            return None
        root = ET.fromstring(body)
        encrypted = root.findtext("Encrypt")
        if encrypted is not None:
            ts, nonce = root.findtext("TimeStamp") or "", root.findtext("Nonce") or ""
            assert root.findtext("MsgSignature") == signature(self.token, ts, nonce, encrypted), "bad reply signature"
            xml, app_id = aes_decrypt(encrypted, self.key)
            assert app_id == self.app_id
            root = ET.fromstring(xml)
        assert root.findtext("MsgType") == "text"
        content = root.findtext("Content") or ""
        assert len(content.encode()) <= 2047, "WeChat cuts replies over ~2047 bytes"
        return content

    @staticmethod
    def _request(url: str, body: bytes | None, timeout_s: float) -> tuple[int, str]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "text/xml"} if body else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except TimeoutError:
            return 0, ""
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                return 0, ""
            raise


class CustomerServiceAPI:
    """The customer-service API on loopback: records what is sent; `refuse` makes it answer an errcode."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.tokens_issued = 0
        self.refuse: int = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = urllib.parse.urlparse(self.path)
                if path.path == "/cgi-bin/stable_token":
                    assert body["appid"] == APP_ID and body["secret"] == "appsecret"
                    api.tokens_issued += 1
                    result: dict[str, Any] = {"access_token": f"TOKEN{api.tokens_issued}", "expires_in": 7200}
                elif path.path == "/cgi-bin/message/custom/send":
                    assert urllib.parse.parse_qs(path.query)["access_token"][0].startswith("TOKEN")
                    if api.refuse:
                        result = {"errcode": api.refuse, "errmsg": "api unauthorized"}
                    else:
                        api.sent.append((body["touser"], body["text"]["content"]))
                        result = {"errcode": 0, "errmsg": "ok"}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(result).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
