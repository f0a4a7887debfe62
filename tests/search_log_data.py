"""A small hand-written search log in the minimal real-log format (user_id, ts, query; no
impressions, no profile, no item attributes), with non-English queries: the input of the
real-log tests. Users follow a few shopping themes over ten days, so next searches are
learnable, and a third of them appear only in the last days (new users)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

THEMES = {
    "camping": ["tent", "sleeping bag", "camping stove", "headlamp", "hiking boots", "trekking poles"],
    "baby": ["diapers", "baby wipes", "stroller", "baby bottle", "teething toy", "crib sheet"],
    "pets": ["dog food", "cat litter", "pet shampoo", "dog leash", "cat tree", "chew toy"],
    "kitchen": ["chef knife", "cutting board", "frying pan", "coffee grinder", "rice cooker", "kettle"],
    "chinese": ["连衣裙", "运动鞋", "保温杯", "手机壳", "蓝牙耳机", "面膜"],
    "german": ["kaffeemaschine", "wanderschuhe", "regenjacke", "fahrradhelm", "thermoskanne", "rucksack"],
}


def write_search_log(path: Path, users: int = 90, days: int = 10, seed: int = 7, end: str = "2026-11-18") -> Path:
    rng = random.Random(seed)
    last = datetime.fromisoformat(end).replace(tzinfo=UTC)
    rows = []
    for u in range(users):
        themes = rng.sample(sorted(THEMES), 2)
        first_day = days - 3 if u % 3 == 0 else 0  # a third are new in the last three days
        for day in range(first_day, days):
            for _ in range(rng.choice([0, 1, 1, 2])):
                start = last - timedelta(days=days - 1 - day) + timedelta(hours=rng.randrange(8, 22))
                theme = THEMES[rng.choice(themes)]
                for i, query in enumerate(rng.sample(theme, rng.randrange(1, 4))):
                    text = query.title() if rng.random() < 0.2 else query  # case the normaliser folds
                    rows.append((f"shopper{u:03d}", (start + timedelta(minutes=3 * i)).isoformat(), text))
    rows.sort(key=lambda r: r[1])
    lines = ["user_id,ts,query"] + [f"{u},{t},{q}" for u, t, q in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
