"""Debian's chromium, headless, driven through the DevTools protocol over a pipe: pages looked at as a person would.

`Chromium` starts one browser (``--remote-debugging-pipe``: the protocol's
JSON messages on file descriptors 3 and 4, so no port and no client library)
with its proxy pointed at a closed port, so that any request to the network
would fail and show. `Chromium.load` opens a page in a fresh tab and returns
a `PageVisit`: every request the page made, its console messages and
uncaught exceptions, its log entries (a failed resource load is one), its
DOM as serialized after loading, and a screenshot.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["Chromium", "PageVisit", "chromium_path"]

#: Where a request would go if the page made one: a port nothing listens on (discard, 9).
CLOSED_PROXY = "127.0.0.1:9"


def chromium_path() -> str:
    """The chromium binary; AssertionError naming the package when it is not installed."""
    path = shutil.which("chromium")
    assert path, "no chromium on PATH: install Debian's chromium package (scripts/test.sh does)"
    return path


@dataclasses.dataclass
class PageVisit:
    """What a page did while it loaded, and what it showed."""

    url: str
    #: URLs of every request the page made (its own file first).
    requests: list[str]
    #: Console messages of level error or warning, uncaught exceptions, and log entries of level error.
    errors: list[str]
    #: ``document.documentElement.outerHTML`` after loading.
    dom: str
    #: A PNG screenshot of the viewport.
    screenshot: bytes


class Chromium:
    """A headless chromium; use as a context manager (the browser is closed on exit)."""

    def __init__(self, width: int = 1300, height: int = 1800, timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def pipes_on_3_and_4() -> None:
            # Copies first: a pipe's own descriptor may be 3 or 4 already, and dup2 onto itself
            # would keep its close-on-exec flag.
            read_copy, write_copy = os.dup(commands_read), os.dup(replies_write)
            os.dup2(read_copy, 3)
            os.dup2(write_copy, 4)

        self._process = subprocess.Popen(
            [chromium_path(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={self._profile}", f"--proxy-server={CLOSED_PROXY}",
             # Loopback too goes through the (closed) proxy: no request of any kind gets through.
             "--proxy-bypass-list=<-loopback>", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pipes_on_3_and_4, close_fds=False,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser (politely, then by killing it) and remove its profile."""
        try:
            if self._process.poll() is None:
                self._send("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol ---------------------------------------------------------------

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._replies], [], [], remaining)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise EOFError(f"chromium closed its pipe (exit {self._process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _wait(self, done: Any) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read(deadline)
            if done(message):
                if "error" in message:
                    raise RuntimeError(f"chromium: {message['error']}")
                return message
            self._events.append(message)

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._wait(lambda m: m.get("id") == number).get("result", {})

    # -- pages ----------------------------------------------------------------------

    def load(self, path: Path | str) -> PageVisit:
        """Open ``path`` (a local file) in a new tab, wait for its load event, and say what it did."""
        url = Path(path).resolve().as_uri()
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self._send(f"{domain}.enable", session=session)
        self._send("Emulation.setDeviceMetricsOverride",
                   {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                   session=session)
        self._events = []
        self._send("Page.navigate", {"url": url}, session=session)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
        dom = self._send("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                              "returnByValue": True}, session=session)["result"]["value"]
        shot = base64.b64decode(self._send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        events = [e for e in self._events if e.get("sessionId") == session]
        self._send("Target.closeTarget", {"targetId": target})
        requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        errors = []
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                errors.append(f"console.{params['type']}: " + " ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                errors.append(f"failed request: {params.get('errorText')}")
        return PageVisit(url, requests, errors, dom, shot)
