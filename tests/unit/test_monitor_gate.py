"""The gate's critical mean tests on synthetic per-list windows: a drop inside sampling noise
passes, the same drop measured on many lists fails and names the column."""

import numpy as np
import pandas as pd

from monitoring.list_metrics import COLUMNS
from monitoring.reports import MonitorConfig, failed_critical, run_report, sampling_noise


def window(n: int, ctr_mean: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.uniform(0, 1, n) for c in COLUMNS})
    frame["distinct_categories"] = 3.0 + rng.normal(0, 0.5, n)
    frame["mean_ctr_score"] = ctr_mean + rng.normal(0, 0.12, n)
    frame["click_through"] = np.nan  # no feedback: the column is skipped, as in a fresh log
    frame["request_id"] = [f"r{seed}-{i}" for i in range(n)]
    return frame


def test_sampling_noise_shrinks_with_the_window_and_is_zero_without_it():
    small = sampling_noise(window(20, 0.3, 0), window(20, 0.3, 1), 2.0)
    large = sampling_noise(window(2000, 0.3, 0), window(2000, 0.3, 1), 2.0)
    assert 0 < large["mean_ctr_score"] < small["mean_ctr_score"] / 5
    assert sampling_noise(window(20, 0.3, 0), window(20, 0.3, 1), 0.0)["mean_ctr_score"] == 0.0


def test_a_relevance_drop_within_noise_passes_and_the_same_drop_on_many_lists_fails():
    cfg = MonitorConfig()
    # 0.30 -> 0.26 is a 13% drop: over relevance_drop (10%)
    few = run_report(cfg, window(20, 0.30, 0), window(20, 0.26, 1), None)
    many = run_report(cfg, window(2000, 0.30, 0), window(2000, 0.26, 1), None)
    assert failed_critical(few) == []
    failures = failed_critical(many)
    assert len(failures) == 1 and failures[0].startswith("relevance:")
    # without the noise band the small window fails too: the band is what saves it
    assert failed_critical(run_report(MonitorConfig(noise_z=0.0), window(20, 0.30, 0), window(20, 0.26, 1), None))
