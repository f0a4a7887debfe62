"""`aigq serve bento|kserve`: start the servers on 127.0.0.1 as child processes, wait until each
answers its readiness URL, and stop them all together (Ctrl-C, SIGTERM, or one of them dying)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from pipelines.config import PROJECT_ROOT, aigq_home
from pipelines.errors import AigqError


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_url: str


def bento_children(port: int) -> list[Child]:
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    return [Child("bentoml", [bentoml, "serve", "bentos.service:HintQ", "--host", "127.0.0.1", "--port", str(port)],
                  f"http://127.0.0.1:{port}/readyz")]


def kserve_children(port: int, store: str) -> list[Child]:
    module = [sys.executable, "-m", "serving.kserve_server"]
    return [
        Child("kserve predictor", module + ["predictor", "--http_port", str(port + 1)],
              f"http://127.0.0.1:{port + 1}/v1/models/ctr"),
        Child("kserve transformer", module + ["transformer", "--http_port", str(port), "--store", store,
                                              "--predictor_host", f"127.0.0.1:{port + 1}"],
              f"http://127.0.0.1:{port}/v1/models/hintq"),
    ]


def server_env() -> dict:
    env = dict(os.environ)
    env["AIGQ_HOME"] = str(aigq_home())
    env.setdefault("BENTOML_HOME", str(aigq_home() / "bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def wait_ready(child: Child, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AigqError(f"{child.name} exited with code {proc.returncode} before it was ready "
                            f"(command: {' '.join(child.argv)})")
        try:
            with urllib.request.urlopen(child.ready_url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AigqError(f"{child.name} not ready at {child.ready_url} after {timeout:.0f}s")


def run(children: list[Child], timeout: float = 240.0, on_ready=None) -> int:
    procs: list[subprocess.Popen] = []

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    old = {s: signal.signal(s, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())) for s in (signal.SIGTERM,)}
    try:
        for child in children:
            procs.append(subprocess.Popen(child.argv, cwd=PROJECT_ROOT, env=server_env()))
            wait_ready(child, procs[-1], timeout)
        if on_ready:
            on_ready()
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(c for c, p in zip(children, procs) if p.poll() is not None)
        raise AigqError(f"{dead.name} stopped (exit code {procs[children.index(dead)].returncode}); stopping the rest")
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
        for s, h in old.items():
            signal.signal(s, h)
