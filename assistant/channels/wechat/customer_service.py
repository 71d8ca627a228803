"""WeChat's customer-service API (客服消息): late answers pushed to users of verified accounts."""

from __future__ import annotations

import logging
from typing import Any

from assistant.channels.wechat.state import WeChatState
from assistant.config import WeChatSettings

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid or expired access_token: fetch a new one once
MAX_PER_MESSAGE = 5  # WeChat allows at most 5 customer-service messages per user message


class CustomerService:
    """Sends text with `/cgi-bin/message/custom/send`; the access token comes from `/cgi-bin/stable_token`
    (which does not invalidate other workers' tokens) and is shared through the channel state."""

    def __init__(self, settings: WeChatSettings, state: WeChatState, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.state = state
        self.timeout_s = timeout_s

    def send(self, openid: str, parts: list[str]) -> list[str]:
        """Push the parts in order; returns those that were not sent (to be kept for 「继续」). A refusal
        (48001 unverified account, 45047 too many messages, …) or a network error stops the push."""
        for i, part in enumerate(parts[:MAX_PER_MESSAGE]):
            try:
                code = self._send_one(openid, part)
            except Exception as e:  # network or protocol failure: keep the rest for the user
                log.warning("customer-service push to %s failed: %s", openid, e)
                return parts[i:]
            if code != 0:
                log.info("customer-service push to %s refused (errcode %s); kept for 「继续」", openid, code)
                return parts[i:]
        return parts[MAX_PER_MESSAGE:]

    def _send_one(self, openid: str, text: str) -> int:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        for fresh in (False, True):
            result = self._post(f"/cgi-bin/message/custom/send?access_token={self._token(fresh)}", body)
            code = int(result.get("errcode", 0))
            if code not in TOKEN_ERRORS:
                return code
        return code

    def _token(self, fresh: bool) -> str:
        if not fresh and (token := self.state.cached("access_token")):
            return token
        result = self._post("/cgi-bin/stable_token", {
            "grant_type": "client_credential", "appid": self.settings.app_id,
            "secret": self.settings.app_secret.get_secret_value(), "force_refresh": False,
        })
        token = result.get("access_token")
        if not token:
            raise RuntimeError(f"no access_token (errcode {result.get('errcode')}: {result.get('errmsg', '')})")
        self.state.cache("access_token", str(token), max(60, int(result.get("expires_in", 7200)) - 300))
        return str(token)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import json

        import httpx

        # UTF-8 as is: WeChat shows \uXXXX escapes literally
        response = httpx.post(self.settings.api_base.rstrip("/") + path, timeout=self.timeout_s,
                              content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                              headers={"Content-Type": "application/json; charset=utf-8"})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
