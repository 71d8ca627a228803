"""Shared fixtures: every index path points into tmp; the real model and a real demo index are built once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port
from tests.tools import TOOLS, require

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
EVAL = ROOT / "eval"
SEED = CORPUS / "shandong-2018-zhengwu-gongkai.md"
# a small policy that the demo corpus does not answer, for publishing tests
BIKES = """---
title: 示例市共享单车停放管理办法
doc_number: 示市政发〔2025〕9号
---
第一条　为规范共享单车停放，制定本办法。

第二条　共享单车应当停放在道路两侧划定的白色停车框内，禁止停放在盲道上。
"""


# fixtures that start or reach an optional tool: their tests are marked optional_tool (a fixture that reaches one
# through request.getfixturevalue marks its parameter with `needs` instead)
TOOL_FIXTURES = {"chroma_server", "redis_url", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("needs") or TOOL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.optional_tool)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        require(mark.args[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A test that the product refuses for lack of an optional tool (MissingToolError) is that tool's skip, as
    if the test had called its helper: no test fails on a machine without the tool, unless its flag is set."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        from assistant.errors import MissingToolError

        if call.excinfo.errisinstance(MissingToolError) and call.excinfo.value.tool in TOOLS:
            try:
                require(call.excinfo.value.tool)
            except pytest.skip.Exception as skipped:
                report.outcome = "skipped"
                report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {skipped.msg}")


@pytest.fixture(autouse=True)
def _isolated_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does writes into the repository's indexes/."""
    monkeypatch.setenv("POLICY_ASSISTANT_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("POLICY_ASSISTANT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real bundled embedding model, loaded once."""
    from assistant.config import IndexSettings
    from assistant.index.embedder import load_embedder

    return load_embedder(IndexSettings())


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """The shipped demo corpus indexed with the real model into a real embedded Chroma."""
    from assistant.index.build import build_index

    index_dir = tmp_path_factory.mktemp("demo-index")
    build_index([CORPUS], index_dir, embedder)
    yield index_dir


@pytest.fixture(scope="session")
def assistant(demo_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.config import Settings
    from assistant.service import Assistant

    state = tmp_path_factory.mktemp("state")
    return Assistant(Settings(index_dir=demo_index, state_dir=state), embedder=embedder)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Chroma server: $POLICY_ASSISTANT_TEST_CHROMA_URL (CI starts one), else `chroma run` here."""
    chroma = require("chroma")
    if chroma.startswith("http"):
        yield chroma
        return
    import subprocess
    import time
    import urllib.request

    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed after the server stops)
    server = subprocess.Popen([str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not start: {(folder / 'server.log').read_text()}") from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.needs("chroma"))])
def chroma_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs against the embedded store ('') and against a Chroma server (its URL)."""
    if request.param == "embedded":
        return ""
    return str(request.getfixturevalue("chroma_server"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: $POLICY_ASSISTANT_TEST_REDIS_URL (CI starts one), else Debian's `redis-server` here
    (skipped when it is not installed, unless POLICY_ASSISTANT_TEST_REQUIRE_REDIS is set)."""
    import socket
    import subprocess
    import time

    binary = require("redis-server")
    if binary.startswith("redis://"):
        yield binary
        return
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)
