"""Sign-in tier: a real OpenID Connect provider (oidc-provider-mock, a PyPI package) on loopback and the
dashboard started with `python -m ui.serve` pointed at it, one of each per test module.

Fixtures:
  oidc_provider   (module) the provider's base URL; it knows the user ALICE (no password: its login form
                  has one button per predefined user)
  signin_server   (module) a dashboard with sign-in on, on a tiny seeded store -> Server
  chromium        (module) Debian Chromium through Playwright (skips when /usr/bin/chromium is absent)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Server,
    _free_port,
    _start,
    _stop,
)

ALICE = {"sub": "alice", "email": "alice@example.com", "name": "Alice Example", "groups": ["ml-viewers"]}
CLIENT_ID = "embedscope-test"
CLIENT_SECRET = "test-client-secret-not-for-production"
PROJECT, SPACE, DATASET = "signin", "pixels", "train"
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m oidc_provider_mock` on a free loopback port; yields its base URL."""
    if importlib.util.find_spec("oidc_provider_mock") is None:  # not imported here: it warns on import
        pytest.skip("pip install oidc-provider-mock (the test extra)")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port),
           "--user-claims", json.dumps(ALICE)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OIDC provider did not start:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)  # polling a socket for readiness: nothing to wait on yet
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def seed_store(data_dir: Path, n: int = 12) -> None:
    """A tiny project (grey pictures, a "pixels" space) so pages have thumbnails to serve."""
    from core.config import load_settings
    from core.ids import point_id
    from core.store import open_store
    from core.types import SpaceInfo

    settings = load_settings(data_dir=data_dir)
    folder = settings.demo_dir / PROJECT
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ids, vectors, payloads = [], [], []
    for i in range(n):
        pixels = rng.integers(0, 255, (16, 16), dtype=np.uint8)
        path = folder / f"img{i:02d}.png"
        Image.fromarray(pixels, mode="L").save(path)
        ids.append(point_id(PROJECT, DATASET, path.name))
        vector = pixels.astype(np.float32).ravel() + 1.0
        vectors.append(vector / np.linalg.norm(vector))
        payloads.append({"dataset": DATASET, "key": path.name, "uri": str(path), "label": f"c{i % 3}",
                         "kind": "item"})
    store = open_store(settings)
    try:
        store.ensure_space(PROJECT, SpaceInfo(SPACE, 256, "vector", description="grey pixels (test seed)"))
        store.upsert(PROJECT, SPACE, ids, np.stack(vectors).astype(np.float32), payloads)
    finally:
        store.close()  # the server process opens the embedded store itself


def start_signin_server(data_dir: Path, provider: str, **extra_env: str) -> Server:
    """`python -m ui.serve` with EMBEDSCOPE_AUTH_* pointing at `provider`, on a free loopback port."""
    port = _free_port()
    return _start(data_dir, port, **{
        "EMBEDSCOPE_AUTH_CLIENT_ID": CLIENT_ID,
        "EMBEDSCOPE_AUTH_CLIENT_SECRET": CLIENT_SECRET,
        "EMBEDSCOPE_AUTH_SERVER_METADATA_URL": f"{provider}/.well-known/openid-configuration",
        "EMBEDSCOPE_AUTH_REDIRECT_URI": f"http://127.0.0.1:{port}/oauth2callback",
        "EMBEDSCOPE_AUTH_REQUIRED": "true",
        "PYTHONPATH": str(ROOT),
        **extra_env,
    })


@pytest.fixture(scope="module")
def signin_server(oidc_provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("signin") / "data"
    seed_store(data_dir)
    # Alice's group makes her a viewer (and an editor rule that does not match her is there to be skipped).
    server = start_signin_server(data_dir, oidc_provider, EMBEDSCOPE_ROLE_VIEWERS="ml-viewers",
                                 EMBEDSCOPE_ROLE_EDITORS="ml-editors", EMBEDSCOPE_DEFAULT_ROLE="none")
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/dev.sh test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_env() -> dict[str, str]:
    """This process's environment without EMBEDSCOPE_* settings (for plain-process runs of ui.serve)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EMBEDSCOPE_")}
