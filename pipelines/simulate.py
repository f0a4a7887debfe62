"""`aigq simulate`: a seeded e-commerce world writes behaviour logs as parquet.

Day by day, every active user starts sessions; each session has an intent over one or two of
the user's expressed interest categories, opens with a HintQ impression from the legacy policy
(co-click on the user's last query, then time-decayed popularity), whose clicks follow the
world's click model and become searches; organic searches, item clicks, carts and purchases
follow. The legacy policy only knows previous days' logs. Each day is one parquet row group,
so memory stays bounded by a day's events. Same seed, same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from core import schemas
from core.config import ConfigError, aigq_home, option
from world import stats as world_stats
from world.legacy import LegacyState
from world.sessions import simulate_day
from world.shop import World, make_world
from world.spec import load_spec

PROFILES = {
    "tiny": dict(n_users=300, n_days=10),
    "demo": dict(n_users=2_000, n_days=30),
    "large": dict(n_users=100_000, n_days=30),
    "xlarge": dict(n_users=1_000_000, n_days=30),  # the batch side's scale test (benchmarks/bench_scale.py)
}


@dataclass
class SimulateConfig:
    profile: str = option("demo", f"size preset: {' | '.join(PROFILES)}")
    seed: int = option(42, "random seed; the same seed gives the same bytes")
    n_users: int = option(0, "override the profile's number of users (0: the profile's)")
    n_days: int = option(0, "override the profile's number of logged days (0: the profile's)")
    end_date: str = option(
        "",
        "UTC date (YYYY-MM-DD) at which the logged window ends (default: today, "
        "so the logs are recent; pin it for byte-identical reruns on other days)",
    )
    cold_start_share: float = option(0.12, "share of users who sign up in the last 5 days")
    list_size: int = option(8, "K, the number of queries in a HintQ list")
    burn_in_days: int = option(3, "days simulated before the window to warm the legacy policy (not logged)")
    trend_shift_day: int = option(-1, "day from which trend_shift_domains surge (negative: no shift)")
    trend_shift_domains: list[str] = option(["fashion", "beauty"], "domains that surge at trend_shift_day")
    trend_shift_boost: float = option(3.0, "demand multiplier of the surging domains")
    off: list[str] = option(
        [],
        "world structures to switch off, for the ablation (attribute_tastes, "
        "novelty_search, personas, session_need, exploration; see world_v2.yaml)",
    )
    check_spec: bool = option(
        True,
        "measure the world_v2.yaml target statistics on the new logs "
        "(world/spec_check.json; a minute for the large profile)",
    )
    output_dir: str = option("", "where to write the logs (default $AIGQ_HOME/data)")

    def resolved_end_date(self) -> str:
        if not self.end_date:
            return datetime.now(UTC).date().isoformat()
        try:
            return date.fromisoformat(self.end_date).isoformat()
        except ValueError:
            raise ConfigError(f"end_date {self.end_date!r}: expected YYYY-MM-DD") from None

    def resolved(self) -> tuple[int, int]:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        p = PROFILES[self.profile]
        return self.n_users or p["n_users"], self.n_days or p["n_days"]


def main(cfg: SimulateConfig) -> Path:
    n_users, n_days = cfg.resolved()
    out = Path(cfg.output_dir) if cfg.output_dir else aigq_home() / "data"
    out.mkdir(parents=True, exist_ok=True)
    end_date = cfg.resolved_end_date()
    world = make_world(
        cfg.seed,
        n_users,
        n_days,
        end_date,
        cfg.cold_start_share,
        cfg.burn_in_days,
        cfg.trend_shift_day if cfg.trend_shift_day >= 0 else None,
        tuple(cfg.trend_shift_domains),
        cfg.trend_shift_boost,
        off=cfg.off,
    )
    write_catalog_and_users(world, out)
    rng = np.random.default_rng(cfg.seed + 1)
    state = LegacyState.empty(n_users, world.catalog.n_queries)
    writers = {
        name: pq.ParquetWriter(out / f"{name}.parquet", schemas.SCHEMAS[name])
        for name in ("sessions", "events", "hintq_impressions")
    }
    ids = {"session": 0, "event": 0}
    try:
        for day in tqdm(range(-cfg.burn_in_days, n_days), desc="simulate days", unit="day"):
            tables = simulate_day(world, day, rng, state, cfg.list_size, ids)
            if day >= 0:
                for name, table in tables.items():
                    writers[name].write_table(table)
    finally:
        for w in writers.values():
            w.close()
    world_dir = aigq_home() / "world" if not cfg.output_dir else out.parent / "world"
    world.save(world_dir)
    manifest = {
        "source": "simulate",
        "config": asdict(cfg),
        "end_date": end_date,
        "world": world.describe(),
        "n_users": n_users,
        "n_days": n_days,
        "sessions": ids["session"],
        "events": ids["event"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if cfg.check_spec:
        rows = world_stats.check(world_stats.measure(out, world_dir), load_spec(cfg.off))
        (world_dir / "spec_check.json").write_text(json.dumps(rows, indent=1))
    return out


def write_catalog_and_users(world: World, out: Path) -> None:
    c = world.catalog
    profile = world.users.profile
    tables = {
        "users": profile.assign(signup_ts=profile["signup_ts"].astype("datetime64[us]").dt.tz_localize("UTC")),
        "categories": c.categories,
        "queries": c.queries,
        "items": c.items,
    }
    for name, df in tables.items():
        table = pa.Table.from_pandas(df, schema=schemas.SCHEMAS[name], preserve_index=False)
        pq.write_table(table.replace_schema_metadata(None), out / f"{name}.parquet")


# ---- arrow tables -----------------------------------------------------------------------
