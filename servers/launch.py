"""`aigq serve bento|kserve`: start the servers on 127.0.0.1 as child processes, wait until each
answers its readiness URL, restart one that dies, and stop them all together (Ctrl-C, SIGTERM,
or a crash loop)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, aigq_home
from core.errors import AigqError


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)  # over server_env()


def hintq_workers(configured: int) -> int:
    """Processes for the HintQ service (BentoML's aigq_hintq workers, KServe's transformer
    workers): as configured, or one per core this process may use (the path is CPU-bound Python,
    so one process holds one core at most: on two cores, the demo home, SQLite, one BentoML worker
    sustained 250 req/s and two 450, `benchmarks/load.py`)."""
    return configured if configured > 0 else len(os.sched_getaffinity(0))


def bento_children(port: int, workers: int = 1) -> list[Child]:
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    # BentoML's own configuration override, added to any the caller set
    options = " ".join(
        filter(None, [os.environ.get("BENTOML_CONFIG_OPTIONS", ""), f"services.aigq_hintq.workers={workers}"])
    )
    return [
        Child(
            "bentoml",
            [bentoml, "serve", "bentos.service:HintQ", "--host", "127.0.0.1", "--port", str(port)],
            f"http://127.0.0.1:{port}/readyz",
            env={"BENTOML_CONFIG_OPTIONS": options},
        )
    ]


def kserve_children(port: int, store: str, workers: int = 1) -> list[Child]:
    module = [sys.executable, "-m", "servers.kserve_server"]
    return [
        Child(
            "kserve predictor",
            module + ["predictor", "--http_port", str(port + 1)],
            f"http://127.0.0.1:{port + 1}/v1/models/ctr",
        ),
        Child(
            "kserve transformer",
            module
            + ["transformer", "--http_port", str(port), "--store", store, "--predictor_host", f"127.0.0.1:{port + 1}"]
            + ["--workers", str(workers)],
            f"http://127.0.0.1:{port}/v1/models/hintq",
        ),
    ]


def server_env() -> dict:
    env = dict(os.environ)
    env["AIGQ_HOME"] = str(aigq_home())
    env.setdefault("BENTOML_HOME", str(aigq_home() / "bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return env


def spawn(
    server: str,
    port: int,
    home: Path,
    timeout: float = 240.0,
    store: str = "sqlite",
    env: dict | None = None,
    overrides: tuple[str, ...] = (),
) -> subprocess.Popen:
    """`aigq serve SERVER --port PORT --store STORE [--set KEY=VALUE ...]` in the background (its
    own process group) once it says it is ready; for tests and benchmarks. Stop it with
    `stop_spawned`."""

    aigq = str(Path(sys.executable).with_name("aigq"))
    sets = [arg for kv in overrides for arg in ("--set", kv)]
    proc = subprocess.Popen(
        [aigq, "serve", server, "--port", str(port), "--store", store, *sets],
        env={**os.environ, **(env or {}), "AIGQ_HOME": str(home)},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:  # end of output: the server is exiting (keep what it said, not empty reads)
            proc.wait(timeout=30)
            raise AigqError(f"aigq serve {server} exited {proc.returncode}:\n" + "".join(lines[-30:]))
        lines.append(line)
        if "[aigq] ready:" in line:
            # keep draining the output so the server never blocks on a full pipe; for a caller
            # explaining a failure, the last lines stay on `proc.output_tail` and the launcher's
            # own (restarts; the servers' request logs would flood the tail) on `proc.launcher_said`
            proc.output_tail = collections.deque(lines[-30:], maxlen=200)
            proc.launcher_said = collections.deque([x for x in lines if "[aigq]" in x], maxlen=100)

            def drain():
                for out in proc.stdout:
                    proc.output_tail.append(out)
                    if "[aigq]" in out:
                        proc.launcher_said.append(out)

            threading.Thread(target=drain, daemon=True).start()
            return proc
    stop_spawned(proc)
    raise AigqError(f"aigq serve {server} not ready after {timeout:.0f}s:\n" + "".join(lines[-30:]))


def stop_spawned(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group (the launcher stops its children), then SIGKILL if need be."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def start(child: Child) -> subprocess.Popen:
    """Start a child; its stderr is passed on to ours as it comes (raw chunks: KServe logs lines
    per request, and the relay must cost next to nothing), its last 8 KB kept on `proc.said` so
    that a child that dies before it is ready can be quoted."""

    proc = subprocess.Popen(child.argv, cwd=PROJECT_ROOT, env={**server_env(), **child.env}, stderr=subprocess.PIPE)
    proc.said = b""

    def forward():
        while chunk := os.read(proc.stderr.fileno(), 65536):
            proc.said = (proc.said + chunk)[-8192:]
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

    proc.forwarder = threading.Thread(target=forward, daemon=True)
    proc.forwarder.start()
    return proc


def last_error(proc: subprocess.Popen) -> str:
    """The child's last line that says "error" (else its last line): why it died."""
    proc.forwarder.join(timeout=5)  # the pipe closes when the child is gone
    lines = [line for line in proc.said.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1].strip()


def wait_ready(child: Child, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = last_error(proc)
            raise AigqError(
                f"{child.name} exited with code {proc.returncode} before it was ready"
                + (f": {said}" if said else "")
                + f" (command: {' '.join(child.argv)})"
            )
        try:
            with urllib.request.urlopen(child.ready_url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AigqError(f"{child.name} not ready at {child.ready_url} after {timeout:.0f}s")


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; the usual default elsewhere)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def warn_if_ephemeral(ports: list[int]) -> None:
    """A server port inside the ephemeral range can be taken, while its server restarts, by the
    local end of an outgoing connection (held up to a minute in TIME_WAIT): the restart then
    fails with 'address already in use'. Say so up front."""
    low, high = ephemeral_port_range()
    inside = [p for p in ports if low <= p <= high]
    if inside:
        print(
            f"[aigq] warning: port(s) {', '.join(map(str, inside))} lie in the kernel's ephemeral range "
            f"{low}-{high}; a restarted server may find its port taken by an outgoing connection. "
            f"Prefer ports below {low}.",
            file=sys.stderr,
            flush=True,
        )


def restart_delay(recent_deaths: int) -> float:
    """Back-off before restarting a child: 0.5 s after one death, doubling, at most 16 s."""
    return min(0.5 * 2 ** max(recent_deaths - 1, 0), 16.0)


def run(
    children: list[Child], timeout: float = 240.0, on_ready=None, max_restarts: int = 5, restart_window_s: float = 60.0
) -> int:
    """Start the children in order, each once the previous is ready, and supervise them: a child
    that dies is started again after a growing back-off (what kubelet or BentoML's arbiter does),
    so a crashed predictor comes back while the transformer serves degraded answers. A restart
    that fails before it is ready (its port still taken, say) is one more death, tried again.
    More than `max_restarts` deaths within `restart_window_s` stops everything with an error (a
    crash loop is not hidden)."""
    procs: list[subprocess.Popen] = []
    deaths: list[float] = []

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def interrupt(*_):  # SIGTERM stops the children like Ctrl-C does
        raise KeyboardInterrupt

    def died(child: Child, code: int | None) -> None:
        now = time.monotonic()
        deaths[:] = [t for t in deaths if now - t < restart_window_s] + [now]
        if len(deaths) > max_restarts:
            raise AigqError(
                f"{child.name} stopped (exit code {code}); {len(deaths)} deaths "
                f"in {restart_window_s:.0f}s, stopping the rest"
            )

    def restart(i: int, child: Child) -> None:
        died(child, procs[i].returncode)
        delay = restart_delay(len(deaths))
        print(
            f"[aigq] {child.name} exited (code {procs[i].returncode}); restarting it in {delay:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(delay)
        procs[i] = start(child)
        try:
            wait_ready(child, procs[i], timeout)
        except AigqError as e:
            print(f"[aigq] restart failed: {e}", file=sys.stderr, flush=True)
            if procs[i].poll() is None:  # hung before ready: stop it; the loop counts the death
                procs[i].kill()
                procs[i].wait()
            return
        print(f"[aigq] {child.name} ready again", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        for child in children:
            procs.append(start(child))
            wait_ready(child, procs[-1], timeout)
        if on_ready:
            on_ready()
        while True:
            time.sleep(0.5)
            for i, child in enumerate(children):
                if procs[i].poll() is not None:
                    restart(i, child)
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
        signal.signal(signal.SIGTERM, previous)
