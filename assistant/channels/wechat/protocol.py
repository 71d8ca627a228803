"""The WeChat push protocol: signatures, freshness, body checks and AES, before anything is parsed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from assistant.config import WeChatSettings


class RejectedRequest(Exception):
    """A request that is not a genuine, well-formed WeChat push; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_ENCRYPT = re.compile(
    rb"<Encrypt>\s*<!\[CDATA\[([A-Za-z0-9+/=]+)\]\]>\s*</Encrypt>|<Encrypt>([A-Za-z0-9+/=]+)</Encrypt>")
_DANGEROUS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(token: str, signature: str, timestamp: str, nonce: str, window_s: int,
                    now: float | None = None, extra: str | None = None) -> None:
    """Raise `RejectedRequest` unless `signature` signs (token, timestamp, nonce[, extra]) and the timestamp is
    within `window_s` of now. Compared in constant time."""
    parts = [token, timestamp, nonce] + ([extra] if extra is not None else [])
    if not signature or not hmac.compare_digest(sign(*parts).encode(), signature.strip().lower().encode()):
        raise RejectedRequest(403, "bad signature")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # seconds since 1970
        raise RejectedRequest(403, "bad timestamp")
    sent = int(timestamp)
    if abs((time.time() if now is None else now) - sent) > window_s:
        raise RejectedRequest(403, "stale timestamp")


def check_body(body: bytes) -> None:
    """Any DTD or entity declaration, and an empty body, are refused before parsing (the size is capped while
    the body is read)."""
    if _DANGEROUS.search(body):
        raise RejectedRequest(400, "DOCTYPE or ENTITY in body")
    if not body.strip():
        raise RejectedRequest(400, "empty body")


def encrypted_part(body: bytes) -> str:
    """The <Encrypt> value of a safe-mode body (found without parsing the XML)."""
    match = _ENCRYPT.search(body)
    if not match:
        raise RejectedRequest(400, "no Encrypt element")
    return (match.group(1) or match.group(2)).decode("ascii")


@dataclass
class Cipher:
    """AES-256-CBC as WeChat uses it: 16 random bytes, 4-byte length, the XML, the AppID; PKCS#7 to 32 bytes."""

    key: bytes
    app_id: str

    @classmethod
    def from_encoding_key(cls, encoding_aes_key: str, app_id: str) -> Cipher:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as e:
            raise ValueError("EncodingAESKey is not 43 base64 characters") from e
        if len(key) != 32:
            raise ValueError("EncodingAESKey is not 43 base64 characters")
        return cls(key, app_id)

    def decrypt(self, encrypted: str) -> str:
        from wechatpy.crypto import PrpCrypto

        return str(PrpCrypto(self.key).decrypt(encrypted, self.app_id))

    def encrypt(self, xml: str) -> str:
        from wechatpy.crypto import PrpCrypto

        return PrpCrypto(self.key).encrypt(xml, self.app_id).decode("ascii")


def ciphers(settings: WeChatSettings) -> list[Cipher]:
    """The current key's cipher first, then the previous key's (accepted while WeChat rotates keys)."""
    keys = [settings.encoding_aes_key.get_secret_value(), settings.previous_encoding_aes_key.get_secret_value()]
    return [Cipher.from_encoding_key(k, settings.app_id) for k in keys if k]


def decrypt(encrypted: str, candidates: list[Cipher]) -> tuple[str, Cipher]:
    """The plaintext XML and the cipher that opened it; a wrong key or AppID is a rejected request, not a crash
    (wechatpy surfaces them as struct.error, UnicodeDecodeError, ValueError or InvalidAppIdException)."""
    if not candidates:
        raise RejectedRequest(400, "encrypted message but no EncodingAESKey is configured")
    for cipher in candidates:
        try:
            return cipher.decrypt(encrypted), cipher
        except Exception:  # noqa: BLE001 - any failure of one key means: try the next
            continue
    raise RejectedRequest(400, "cannot decrypt (wrong EncodingAESKey or AppID)")


def encrypted_reply(xml: str, cipher: Cipher, token: str, nonce: str, timestamp: str) -> str:
    """A safe-mode reply envelope around `xml`."""
    encrypt = cipher.encrypt(xml)
    signature = sign(token, timestamp, nonce, encrypt)
    return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")


def parse(xml: str) -> Any:
    """A wechatpy message or event object (xmltodict underneath; DTDs were refused before)."""
    from wechatpy import parse_message

    if _DANGEROUS.search(xml.encode("utf-8")):
        raise RejectedRequest(400, "DOCTYPE or ENTITY in message")
    try:
        message = parse_message(xml)
    except Exception as e:  # malformed XML or a missing MsgType
        raise RejectedRequest(400, f"malformed message: {type(e).__name__}") from None
    if message is None:
        raise RejectedRequest(400, "empty message")
    return message


def text_reply(to_user: str, from_user: str, content: str, now: int | None = None) -> str:
    """A passive text reply (CreateTime set here: wechatpy's default is fixed when it is imported). wechatpy puts
    each value in a CDATA section as it is: the values are made CDATA-safe first."""
    from wechatpy.replies import TextReply

    reply = TextReply(target=cdata_safe(to_user), source=cdata_safe(from_user), content=cdata_safe(content),
                      time=now or int(time.time()))
    return str(reply.render())


# what XML 1.0 may carry: tab, LF, CR, and from U+0020 on, less the surrogates, U+FFFE and U+FFFF
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def cdata_safe(text: str) -> str:
    """`text` to go inside <![CDATA[…]]>: a "]]>" in it (a clause may hold one) would end the section and break the
    reply's XML, so it is split across two sections, which a reader joins back; characters XML cannot carry at
    all are dropped."""
    return _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>")
