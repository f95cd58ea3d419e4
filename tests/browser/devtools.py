"""A headless chromium driven over the DevTools protocol (a websocket), for tests that use a web UI as
a person does: open a page, wait for what it shows, type into its fields, press its buttons.

No WebDriver: chromium speaks the protocol itself (`--remote-debugging-port`), and the `websockets`
package the environment already holds carries it.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.browser.chromium import chromium

LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    """One browser tab: protocol calls, JavaScript evaluated in the page, waits for a condition."""

    def __init__(self, socket):
        self.socket = socket
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries the call's id
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, script: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{script[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, script: str, seconds: float = 60, every: float = 0.5):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.evaluate(script)
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"waited {seconds}s for: {script[:300]}")

    def open(self, url: str) -> None:
        """Navigate and wait until that page (not the one before it) has loaded."""
        answer = self.call("Page.navigate", url=url)
        if answer.get("errorText"):
            raise RuntimeError(f"{url}: {answer['errorText']}")
        self.wait_for(f"location.href.startsWith({url!r}) && document.readyState === 'complete'")


@contextlib.contextmanager
def browser_page(profile: Path, width: int = 1280, height: int = 1000):
    """A headless chromium with one page, closed on exit."""
    from websockets.sync.client import connect

    log = profile.parent / f"{profile.name}-chromium.log"  # a file: a pipe nobody reads fills up
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        browser_url = None
        deadline = time.time() + 60
        while browser_url is None and time.time() < deadline and proc.poll() is None:
            found = LISTENING.search(log.read_text(errors="replace"))
            browser_url = found.group(1) if found else None
            time.sleep(0.2)
        if browser_url is None:
            raise RuntimeError(f"chromium opened no DevTools port: {log.read_text()[-2000:]}")
        port = browser_url.split("/")[2]
        with urllib.request.urlopen(f"http://{port}/json/list", timeout=10) as answer:
            tabs = [t for t in json.load(answer) if t["type"] == "page"]
        if not tabs:
            raise RuntimeError("chromium has no page to drive")
        with connect(tabs[0]["webSocketDebuggerUrl"], max_size=2**26) as socket:
            page = Page(socket)
            page.call("Page.enable")
            page.call("Runtime.enable")
            yield page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
