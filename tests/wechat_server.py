"""A `create_app` server whose assistant is slowed down, for tests that restart or multiply processes.

    python -m tests.wechat_server PORT

Settings come from the environment as for `policy-assistant serve`; WECHAT_TEST_DELAYS is a JSON object
{"part of a question": seconds}, and every question asked is appended to the file WECHAT_TEST_ASKED.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import uvicorn

from assistant.answer.records import Answer
from assistant.config import Settings
from assistant.server import create_app
from assistant.service import Assistant


class Slowed:
    def __init__(self, inner: Assistant, delays: dict[str, float], log: str) -> None:
        self.inner, self.delays, self.log = inner, delays, log

    def ask(self, question: str, history: Sequence[str] = ()) -> Answer:
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(question + "\n")
        for part, delay in self.delays.items():
            if part in question:
                time.sleep(delay)
        return self.inner.ask(question, history)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main() -> None:
    settings = Settings()
    inner = Assistant(settings)
    inner.warm_up()
    slowed = Slowed(inner, json.loads(os.environ.get("WECHAT_TEST_DELAYS", "{}")), os.environ["WECHAT_TEST_ASKED"])
    app = create_app(settings, slowed)  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
