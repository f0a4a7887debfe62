"""Benchmark: simulate a profile (default `large`, 100k users x 30 days), measure the world spec's
statistics on it, and build its feature tables; each phase runs in a fresh process so its peak
memory is its own.

    python benchmarks/bench_simulate.py [--profile large] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PHASES = {
    "simulate": "from pipelines import simulate; simulate.main(simulate.SimulateConfig(profile={profile!r}, "
    "end_date='2026-11-01', check_spec=False))",
    "spec_check": "from pathlib import Path; from world import stats; "
    "stats.measure(Path(os.environ['AIGQ_HOME']) / 'data', Path(os.environ['AIGQ_HOME']) / 'world')",
    "feature_tables": "from pipelines.features import rebuild_feature_tables; print(rebuild_feature_tables())",
}


def run_phase(code: str, home: Path) -> dict:
    wrapper = (
        "import os, resource, time, json\n"
        f"os.environ['AIGQ_HOME'] = {str(home)!r}\n"
        "t = time.perf_counter()\n"
        f"{code}\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="large")
    parser.add_argument("--home", help="artifact root to write (default: a temporary folder)")
    args = parser.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="aigq-bench-"))
    results = {}
    for name, code in PHASES.items():
        results[name] = run_phase(code.format(profile=args.profile), home)
    import pyarrow.parquet as pq

    rows = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted((home / "data").glob("*.parquet"))}
    print(
        f"profile {args.profile}: {rows['users']} users, {rows['sessions']} sessions, {rows['events']} events, "
        f"{rows['hintq_impressions']} impression rows"
    )
    for name, r in results.items():
        print(f"  {name:15s} {r['seconds']:7.1f} s   peak RSS {r['peak_rss_mb']:7.0f} MB")
    print(f"  events/s (simulate): {rows['events'] / results['simulate']['seconds']:,.0f}")
    print(f"  artifacts: {home}")


if __name__ == "__main__":
    main()
