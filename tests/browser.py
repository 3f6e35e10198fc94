"""Headless Chromium for the tests that check what a browser renders (marked ``browser``)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

DumpDom = Callable[..., str]

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> DumpDom:
    """``dump_dom(url, *flags)``: the page's DOM once its scripts have run. One profile for
    the session (its first start writes it; later ones reuse it). Skips where Chromium is
    not installed."""
    browser = find_chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")

    def dump_dom(url: str, *flags: str) -> str:
        res = subprocess.run(
            [browser, *_FLAGS, f"--user-data-dir={profile}", *flags, "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=90,
        )
        return res.stdout

    return dump_dom
