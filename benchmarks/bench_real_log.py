"""Direct on a search-only log: a simulated world's searches stripped to `user_id, ts, query` (what
a shop's own search log holds: no impressions, no profile, no items, no sessions), cut to the last
days so that most users are new, through the minimal real-log path (`aigq ingest` -> features ->
CTR from next searches -> base LM -> IL-SFT -> evaluate). Prints next-query HitRate@8 and MRR@8
of Direct beside the non-generative policies, every slice.

    python benchmarks/bench_real_log.py --world <a demo home> [--days 10] [--home <new home>]

The world's home is only read: its `data/events.parquet`; the ground truth never leaves it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

AIGQ = [sys.executable, "-m", "cli.main"]
POLICIES = "[popularity,popularity_incat,coclick,itemcf,mf,direct_sft]"


def strip_log(world: Path, days: float, out: Path) -> dict:
    events = pd.read_parquet(world / "data" / "events.parquet", columns=["user_id", "event_ts", "event_type", "query"])
    searches = events[events["event_type"] == "search"].rename(columns={"event_ts": "ts"})
    searches = searches[searches["ts"] >= searches["ts"].max() - pd.Timedelta(days=days)]
    searches[["user_id", "ts", "query"]].to_csv(out, index=False)
    return {"searches": len(searches), "users": searches["user_id"].nunique()}


def aigq(home: Path, *args: str) -> None:
    print("$ aigq", " ".join(args), flush=True)
    subprocess.run([*AIGQ, "--home", str(home), *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True, help="a home with a simulated world (`aigq demo`)")
    ap.add_argument("--days", type=float, default=10.0, help="keep the last DAYS of searches")
    ap.add_argument("--home", type=Path, default=None, help="the new home (default: a temporary folder)")
    ap.add_argument("--sft-steps", type=int, default=1000)
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="real-log-"))
    home.mkdir(parents=True, exist_ok=True)
    log = home / "search_log.csv"
    print(f"search log: {strip_log(args.world, args.days, log)} -> {log}")
    aigq(home, "ingest", str(log))
    for step in (["features", "build"], ["features", "apply"], ["features", "materialize"], ["features", "frames"]):
        aigq(home, *step)
    aigq(home, "train", "base", "--set", "steps=600")
    aigq(home, "train", "sft", "--set", f"trl.max_steps={args.sft_steps}")
    aigq(home, "evaluate", "--set", f"policies={POLICIES}", "--set", "plots=false")
    report = json.loads((home / "reports" / "eval.json").read_text())["policies"]
    for name in ("all", "cold", "regular"):
        print(f"\nslice {name} ({report['popularity'][name]['n_lists']} lists)")
        print("| policy | HR@8 | MRR@8 | distinct categories |\n|---|---|---|---|")
        for policy, slices in report.items():
            row = slices[name]
            print(f"| {policy} | {row['hit_rate@8']:.3f} | {row['mrr@8']:.3f} | {row['distinct_categories']:.2f} |")
    print(f"\nhome: {home}")


if __name__ == "__main__":
    main()
