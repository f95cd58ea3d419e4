"""Debian's chromium, headless, for the tests that look at a page as a person's browser shows it.

`make test` installs it where it is missing and apt-get may run (CI); elsewhere the browser tests
skip, unless RECSYS_REQUIRE_BROWSER is set (.ci/run sets it), when its absence fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_ENV = "RECSYS_REQUIRE_BROWSER"
TIMEOUT = 120


def chromium() -> str:
    """The chromium binary; skips the test (fails it where RECSYS_REQUIRE_BROWSER is set) without one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"chromium is not installed and {REQUIRE_ENV} is set: run `make browser`")
    pytest.skip("chromium is not installed (`make browser` installs Debian's)")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=True)


def dump_dom(url: str, profile: Path, width: int, height: int) -> str:
    """The page's DOM after it loaded and its scripts ran."""
    args = [f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom", url]
    return _run(args, profile).stdout


def screenshot(url: str, out: Path, profile: Path, width: int, height: int) -> Path:
    _run([f"--window-size={width},{height}", f"--screenshot={out}", url], profile)
    return out
