"""Helpers for tests that call the HintQ servers over HTTP."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil

from servers.launch import ephemeral_port_range


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen  # the `aigq serve` launcher (its process group holds the servers)

    def url(self, path: str, port_offset: int = 0) -> str:
        return f"http://127.0.0.1:{self.port + port_offset}{path}"


def free_port() -> int:
    """A free port whose successor is free too (KServe's predictor takes port + 1), below the
    kernel's ephemeral range. Not bind(0): that hands out odd ports in the range and connect()
    takes even ones, so port + 1 is exactly where the tests' own client sockets land, and a
    killed predictor's restart can find its port held in TIME_WAIT (bind: address in use)."""
    low, _ = ephemeral_port_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low - 2) if low > 2048 else rng.randrange(1024, 65534)
        try:
            with socket.socket() as s, socket.socket() as s2:
                s.bind(("127.0.0.1", port))
                s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def post(url: str, body, content_type: str | None = "application/json", timeout: float = 30) -> tuple[int, dict | str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type} if content_type else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def known_users(home: Path, n: int = 1) -> list[str]:
    """The most active users of the home's logs (they have features and a nearline list)."""
    return list(pd.read_parquet(home / "data" / "sessions.parquet")["user_id"].value_counts().index[:n])


def known_user(home: Path) -> str:
    return known_users(home)[0]


def answer_of(body: dict) -> dict:
    """The HintQ answer from either server's response (KServe wraps it in `predictions`)."""
    return body["predictions"][0] if "predictions" in body else body


def has_message(body) -> bool:
    """A 4xx body says what is wrong: a non-empty text, or JSON with an error/detail message."""
    if isinstance(body, str):
        return bool(body.strip())
    text = json.dumps(body)
    return any(k in body for k in ("error", "detail", "message")) and len(text) > 20


HINTQ_PATHS = {"bento": "/recommend", "kserve": "/v1/models/hintq:predict"}


def hintq_body(server: str, request: dict) -> dict:
    return request if server == "bento" else {"instances": [request]}


def child_processes(proc: subprocess.Popen, marker: str) -> list:
    """Live descendants whose command line holds `marker`. A killed child its parent has not
    reaped yet is a zombie with no command line; it is neither a victim nor a restart."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and marker in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found
