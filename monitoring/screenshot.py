"""A headless Chromium screenshot of a page that draws itself with JavaScript (the Evidently
dashboard), driven through the DevTools protocol: navigate, wait in real time until the charts
have drawn their lines, capture. (`chromium --screenshot` uses virtual time and captures before
the dashboard's data requests return: no lines.)"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

CHART_PATHS_JS = "document.querySelectorAll('svg path').length"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Headless Chromium driven through the DevTools protocol (`with Browser() as b:`): navigate,
    evaluate JavaScript in the page (read it, fill and submit forms), capture PNGs."""

    def __init__(self, width: int = 1400, height: int = 2200):
        self.width, self.height = width, height

    def __enter__(self) -> Browser:
        import websocket  # websocket-client

        chromium = find_chromium()
        if chromium is None:
            raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
        port = _free_port()
        # chromium's helper processes may still write to the profile as it is removed
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--remote-debugging-port={port}",
                "--remote-allow-origins=*",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self.ws = websocket.create_connection(_page_socket(port, timeout=30), timeout=30)
            self._ids = iter(range(1, 1_000_000))
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def call(self, method: str, **params) -> dict:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                return reply.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def navigate(self, url: str, ready_js: str = "document.readyState === 'complete'", timeout: float = 30) -> bool:
        """Open `url` and wait until `ready_js` is true (or `timeout`); returns whether it was."""
        self.call("Page.navigate", url=url)
        return self.wait_for(ready_js, timeout)

    def wait_for(self, expression: str, timeout: float = 30, every: float = 0.25) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(every)
        return False

    def capture(self, out: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def __exit__(self, *exc) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        _stop_group(self.proc)
        self._profile.cleanup()


def screenshot(
    url: str, out: Path, width: int = 1400, height: int = 2200, min_paths: int = 6, timeout: float = 60.0
) -> dict:
    """Render `url`, wait until it has drawn at least `min_paths` SVG paths (or `timeout`), save a
    PNG to `out`; returns {"paths": n, "seconds": s, "path": out}."""
    with Browser(width, height) as browser:
        started = time.monotonic()
        browser.call("Page.navigate", url=url)
        paths = 0
        while time.monotonic() - started < timeout:
            time.sleep(1.0)
            paths = browser.evaluate(CHART_PATHS_JS) or 0
            if paths >= min_paths:
                time.sleep(2.0)  # let the last panels finish their transitions
                break
        browser.capture(out)
        return {"paths": int(paths), "seconds": time.monotonic() - started, "path": str(out)}


def _stop_group(proc: subprocess.Popen) -> None:
    """Chromium forks helpers: stop the whole process group."""

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _page_socket(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"chromium DevTools not reachable on port {port}")


def not_blank(png: Path) -> float:
    """Share of pixels that are not the page's background colour (0 for a blank page)."""

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    values, counts = np.unique(pixels, axis=0, return_counts=True)
    return float(1 - counts.max() / counts.sum())
