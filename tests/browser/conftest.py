"""Browser tier: `streamlit run` in a subprocess on a free port, driven by Debian Chromium via Playwright.

Fixtures:
  streamlit_server  (session) a server on an empty data dir        -> Server(url, data_dir, ...)
  demo_server       (session) a server on a data dir where the demo was loaded once
                    (core.demo.load_demo, with_pretrained=False)    -> Server
  browser           (session) Chromium launched headless from /usr/bin/chromium
  page              a fresh Playwright page (own context) per test
  start_server(data_dir, **env) -> Server   factory for tests that need their own server
Helper: load_demo_via_ui(page, base_url) clicks "Load demo" on the home page and waits for it.
Tests skip (with the reason) when /usr/bin/chromium is absent; CI installs it (scripts/dev.sh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 120
# Generous: two cores are shared with other work; locators return as soon as the element is there.
UI_TIMEOUT_MS = 90_000


@dataclass
class Server:
    """A running `streamlit run Home.py`."""

    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        # Polling a socket for readiness (not a UI wait): there is nothing to wait on yet.
        time.sleep(0.3)
    raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S} s:\n{server.log_tail()}")


def _server_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDSCOPE_")}
    env.update({
        "EMBEDSCOPE_DATA_DIR": str(data_dir),
        "EMBEDSCOPE_DEMO_PRETRAINED": "0",  # "Load demo" without the pretrained models: fast
        "EMBEDSCOPE_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NUMBA_CACHE_DIR": env.get("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache")),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def _start(data_dir: Path, port: int | None = None, **extra_env: str) -> Server:
    """`python -m ui.serve` on `port` (a free one when None: the sign-in tests need theirs before they
    write the redirect URI into the environment), its log next to the data dir; healthy when it returns."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log_path = data_dir.parent / f"streamlit-{port}.log"
    # ui.serve is what the README's run command and the Dockerfile start: `streamlit run Home.py`
    # with the UMAP warm-up begun with the server process.
    cmd = [sys.executable, "-m", "ui.serve",
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--global.developmentMode", "false"]
    # cwd is the data dir's parent, so a developer's ./.env never leaks into the test server.
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=data_dir.parent, env=_server_env(data_dir, extra_env),
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", data_dir, log_path, process)
    try:
        _wait_healthy(server)
    except Exception:
        _stop(server)
        raise
    return server


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def _chromium_available() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/dev.sh test installs Debian's chromium)")


@pytest.fixture(scope="session")
def start_server(_chromium_available: None) -> Iterator[Callable[..., Server]]:
    """Factory: start_server(data_dir, **env) -> Server; every server is stopped at session end."""
    started: list[Server] = []

    def factory(data_dir: Path, **env: str) -> Server:
        server = _start(data_dir, **env)
        started.append(server)
        return server

    yield factory
    for server in started:
        _stop(server)


@pytest.fixture(scope="session")
def streamlit_server(start_server: Callable[..., Server],
                     tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A dashboard on an empty data dir (with a `datasets/` data root next to it)."""
    base = tmp_path_factory.mktemp("browser-empty")
    (base / "datasets").mkdir()
    return start_server(base / "data", EMBEDSCOPE_DATA_ROOTS=str(base / "datasets"))


@pytest.fixture(scope="session")
def demo_server(start_server: Callable[..., Server],
                tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A dashboard on a data dir where the demo was loaded once (no pretrained spaces: fast)."""
    from core.config import load_settings
    from core.demo import load_demo
    from core.store import open_store

    base = tmp_path_factory.mktemp("browser-demo")
    settings = load_settings(data_dir=base / "data")
    store = open_store(settings)
    try:
        load_demo(store, settings, with_pretrained=False)
    finally:
        store.close()  # the server process opens the embedded store itself
    return start_server(base / "data")


@pytest.fixture(scope="session")
def browser(_chromium_available: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh page; on failure a full-page screenshot is saved as <tmp_path>/failure.png."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    if request.node.stash.get(_FAILED, False):
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
    context.close()


def wait_idle(page: Any) -> None:
    """Wait until Streamlit's script run finished (the app reports notRunning, the "Running…"
    status widget is gone)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")


def open_app(page: Any, url: str) -> None:
    """Open a dashboard URL and wait for the app to render its first element."""
    page.goto(url)
    page.locator('[data-testid="stAppViewContainer"]').wait_for()
    page.locator('[data-testid="stSidebar"]').wait_for()
    wait_idle(page)


def load_demo_via_ui(page: Any, base_url: str) -> None:
    """Open the home page, click "Load demo" and wait until the demo project is listed."""
    open_app(page, base_url)
    page.get_by_role("button", name="Load demo").click()
    page.get_by_text("Project demo").first.wait_for(timeout=300_000)
    wait_idle(page)
