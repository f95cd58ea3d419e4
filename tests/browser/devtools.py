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
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")


@contextlib.contextmanager
def browser_page(profile: Path, width: int = 1280, height: int = 1000):
    """A headless chromium with one page, closed on exit."""
    from websockets.sync.client import connect

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
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        browser_url = None
        deadline = time.time() + 60
        while browser_url is None and time.time() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            found = LISTENING.search(line)
            if found:
                browser_url = found.group(1)
            elif not line and proc.poll() is not None:
                break
        if browser_url is None:
            raise RuntimeError("chromium did not open its DevTools port")
        port = browser_url.split("/")[2]
        with urllib.request.urlopen(f"http://{port}/json/list", timeout=10) as answer:
            tabs = [t for t in json.load(answer) if t["type"] == "page"]
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
