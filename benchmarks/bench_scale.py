"""Benchmark: the batch side on the embedded engine and on local Ray, side by side in one run, on
one world (default: the `large` profile, 100,000 users x 30 days). Each step runs as its own
`aigq` process; a sampler follows that process and everything it starts (Ray's GCS, raylet and
workers included) and reports wall time, the peak memory of the biggest single process, the peak
of the whole tree at one moment, and the peak of the biggest Ray worker.

    python benchmarks/bench_scale.py [--home DIR] [--profile large] [--nearline-users 4000]
        [--steps features,materialize,nearline]

Steps (each per engine):
  features     `aigq features build`: per-user tables in one partition of the whole world (the
               pre-partitioning path), in partitions of 20,000 users (local), and on Ray
  materialize  `aigq features apply` + `materialize` (Feast's DuckDB engine: Feast 0.67's Ray
               engine fails on list features, see the README's scale-out table)
  nearline     `aigq nearline --set max_users=N` from no watermark, local and on Ray (the Direct
               model is copied from --model-home when the world has none: `make demo`'s home)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

AIGQ = str(Path(sys.executable).with_name("aigq"))


class TreeSampler:
    """Peak memory of a process and all its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak_tree_mb = self.peak_single_mb = self.peak_ray_worker_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0.0
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    name = " ".join(p.cmdline()[:2])
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
                total += rss
                self.peak_single_mb = max(self.peak_single_mb, rss)
                if "ray::" in name or "default_worker.py" in name:
                    self.peak_ray_worker_mb = max(self.peak_ray_worker_mb, rss)
            self.peak_tree_mb = max(self.peak_tree_mb, total)
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_step(argv: list[str], home: Path, env: dict | None = None) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [AIGQ, "--home", str(home), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    sampler = TreeSampler(proc.pid)
    output, _ = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{output[-3000:]}")
    return {
        "seconds": time.perf_counter() - started,
        "peak_process_mb": sampler.peak_single_mb,
        "peak_tree_mb": sampler.peak_tree_mb,
        "peak_ray_worker_mb": sampler.peak_ray_worker_mb,
        "output": output,
    }


def ensure_world(home: Path, profile: str) -> None:
    if (home / "data" / "events.parquet").exists():
        return
    print(f"simulating the {profile} world under {home} ...", flush=True)
    run_step(["simulate", "--profile", profile, "--set", "check_spec=false", "--set", "end_date=2026-11-18"], home)


def ensure_model(home: Path, model_home: Path | None) -> None:
    if any((home / "models" / m).exists() for m in ("direct_grpo", "direct_sft")):
        return
    if model_home is None:
        raise SystemExit(f"{home}: no Direct model; pass --model-home with one (e.g. a `make demo` home)")
    for name in ("direct_grpo", "direct_sft", "base"):
        if (model_home / "models" / name).exists():
            shutil.copytree(model_home / "models" / name, home / "models" / name, dirs_exist_ok=True)


def row(name: str, r: dict, extra: str = "") -> None:
    worker = f"{r['peak_ray_worker_mb']:7.0f}" if r["peak_ray_worker_mb"] else "      -"
    print(
        f"  {name:34s} {r['seconds']:7.1f} s  process {r['peak_process_mb']:7.0f} MB  "
        f"tree {r['peak_tree_mb']:7.0f} MB  Ray worker {worker} MB  {extra}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default="", help="world to use (simulated there if missing)")
    parser.add_argument("--profile", default="large")
    parser.add_argument("--model-home", default="", help="a home with a Direct model to copy for nearline")
    parser.add_argument("--nearline-users", type=int, default=4000)
    parser.add_argument("--steps", default="features,materialize,nearline")
    args = parser.parse_args()
    home = Path(args.home or f"/tmp/aigq-scale-{args.profile}").resolve()
    steps = args.steps.split(",")
    ensure_world(home, args.profile)
    import pyarrow.parquet as pq

    users = pq.ParquetFile(home / "data" / "users.parquet").metadata.num_rows
    events = pq.ParquetFile(home / "data" / "events.parquet").metadata.num_rows
    print(f"world {home}: {users:,} users, {events:,} events; {os.cpu_count()} CPUs, local Ray capped at 2")

    if "features" in steps:
        print("feature tables (aigq features build):")
        whole = run_step(["features", "build", "--set", f"partition_users={10**9}"], home)
        row("local, one partition (whole world)", whole)
        parted = run_step(["features", "build", "--set", "partition_users=20000"], home)
        row("local, 20,000 users per partition", parted)
        on_ray = run_step(["--engine", "ray", "features", "build", "--set", "partition_users=20000"], home)
        row("ray, 20,000 users per partition", on_ray, f"x{on_ray['seconds'] / parted['seconds']:.2f} of local")

    if "materialize" in steps:
        print("Feast apply + materialize (DuckDB engine, SQLite online store):")
        applied = run_step(["features", "apply"], home)
        row("apply", applied)
        materialized = run_step(["features", "materialize"], home)
        row("materialize", materialized)

    if "nearline" in steps:
        ensure_model(home, Path(args.model_home) if args.model_home else None)
        n = args.nearline_users
        print(f"nearline Direct lists (aigq nearline, {n:,} users from no watermark):")
        for name, argv in (("local, one process", []), ("ray, 2 CPUs", ["--engine", "ray"])):
            state = home / "nearline" / "state.db"
            state.unlink(missing_ok=True)
            r = run_step([*argv, "nearline", "--set", f"max_users={n}"], home)
            row(name, r, f"{n / r['seconds']:.1f} lists/s (start-up included)")
        (home / "nearline" / "state.db").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
