"""The real Feast repo on the embedded default: apply, materialize, online reads, pushes,
point-in-time training frames, and `feast` run by hand inside feature_repo/."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import feature_store
from core.feature_store import HINTQ_SERVICE
from pipelines import features, ingest, training_frames
from pipelines.feature_tables import build_feature_tables

from tests.conftest import TINY_END_DATE
from tests.handmade import LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS, ts, write_logs


@pytest.fixture(scope="module")
def store(tiny_world, tmp_path_factory):
    home = tmp_path_factory.mktemp("sqlite_home")
    shutil.copytree(tiny_world, home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        features.apply("sqlite")
        features.materialize("sqlite")
        yield feature_store.open_store("sqlite"), home


def _latest_snapshot(home: Path, user: str) -> pd.Series:
    ui = pd.read_parquet(home / "features" / "user_interests.parquet")
    return ui[ui["user_id"] == user].sort_values("event_timestamp").iloc[-1]


def test_online_read_returns_the_latest_snapshot(store):
    fs, home = store
    ui = pd.read_parquet(home / "features" / "user_interests.parquet")
    user = ui["user_id"].value_counts().index[0]
    row = feature_store.online_features(fs, HINTQ_SERVICE, [{"user_id": user, "request_hour": 21}])
    expected = _latest_snapshot(home, user)
    assert row["top_categories_30d"][0] == list(expected["top_categories_30d"])
    assert row["recent_queries"][0] == list(expected["recent_queries"])
    assert row["n_events_30d"][0] == expected["n_events_30d"]
    profile = pd.read_parquet(home / "data" / "users.parquet").set_index("user_id").loc[user]
    assert row["age_band"][0] == profile["age_band"] and row["city_tier"][0] == profile["city_tier"]
    assert row["hour_of_day"][0] == 21 and row["is_cold_start"][0] == 0
    weights = np.array(expected["top_category_weights_30d"], dtype=float)
    assert row["interest_entropy"][0] == pytest.approx(
        -(weights / weights.sum() * np.log(weights / weights.sum())).sum()
    )


def test_unknown_user_gets_nulls_and_a_cold_start_flag(store):
    fs, _ = store
    row = feature_store.online_features(fs, HINTQ_SERVICE, [{"user_id": "never-seen", "request_hour": 3}])
    assert row["top_categories_30d"] == [None] and row["age_band"] == [None]
    assert row["is_cold_start"] == [1] and row["interest_entropy"] == [0.0]


def test_every_feature_service_is_registered(store):
    fs, _ = store
    names = {s.name for s in fs.list_feature_services()}
    assert {"direct_generation_v1", "ctr_ranking_v1", "hintq_online_v1", "think_candidates_v1"} <= names


def test_pushed_session_events_are_served(store):
    fs, home = store
    n = features.push_sessions("sqlite")
    assert n > 0
    rows = pd.read_parquet(home / "features" / "session_features.parquet")
    last = rows.sort_values("event_timestamp").iloc[-1]
    got = feature_store.online_features(fs, HINTQ_SERVICE, [{"user_id": last["user_id"], "request_hour": 1}])
    assert got["session_queries"][0] == list(last["session_queries"])
    assert got["session_categories"][0] == list(last["session_categories"])


def test_training_frames_have_one_row_per_label(store):
    fs, home = store
    ctr = training_frames.ctr_training_frame(fs)
    imp = pd.read_parquet(home / "data" / "hintq_impressions.parquet")
    assert len(ctr) == len(imp)
    assert ctr["clicked"].sum() == imp["clicked"].sum()
    assert {"q_ctr_30d", "top_categories_30d", "is_cold_start", "position"} <= set(ctr.columns)
    sft = training_frames.sft_context_frame(fs)
    assert len(sft) == len(pd.read_parquet(home / "data" / "sessions.parquet"))
    # a sampled context equals the newest snapshot strictly before the session start
    ui = pd.read_parquet(home / "features" / "user_interests.parquet")
    have = sft.dropna(subset=["n_events_30d"]).iloc[len(sft) // 3]
    snaps = ui[(ui["user_id"] == have["user_id"]) & (ui["event_timestamp"] <= have["event_timestamp"])]
    assert have["n_events_30d"] == snaps.sort_values("event_timestamp").iloc[-1]["n_events_30d"]


def test_no_feature_from_after_the_label_time_leaks(aigq_home, tmp_path):
    """Hand-built: u1 searched a dress on day 1 and tents on day 3. A label on day 2 must not
    see the tents; a label in the middle of the tent session sees only the session so far."""
    write_logs(tmp_path / "logs", LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS)
    ingest.main(ingest.IngestConfig(source_dir=str(tmp_path / "logs")))
    build_feature_tables(aigq_home / "data", aigq_home / "features")
    features.apply("sqlite")
    fs = feature_store.open_store("sqlite")
    labels = pd.DataFrame(
        {
            "session_id": [10, 11, 12, 13],
            "user_id": ["u1"] * 4,
            "session_start": [
                ts("2026-03-02 12:00"),
                ts("2026-03-03 09:59:59"),
                ts("2026-03-03 10:00:30"),
                ts("2026-03-04 00:00:01"),
            ],
        }
    )
    frame = training_frames.sft_context_frame(fs, labels).set_index("session_id")
    for sid in (10, 11):  # before the tent session: only the dress is known
        assert list(frame.loc[sid, "top_categories_30d"]) == ["c1"]
        assert list(frame.loc[sid, "recent_queries"]) == ["red dress"]
    # mid-session: the day-3 snapshot does not exist yet; the session so far is one search
    assert list(frame.loc[12, "top_categories_30d"]) == ["c1"]
    assert list(frame.loc[12, "session_queries"]) == ["tent"]
    # after day 3 ended, its snapshot is visible
    assert list(frame.loc[13, "top_categories_30d"]) == ["c2", "c1"]


def test_feast_cli_by_hand_inside_feature_repo(tiny_world, tmp_path):
    """`feast apply` and `feast materialize-incremental` as a user would type them."""
    home = tmp_path / "home"
    shutil.copytree(tiny_world, home)
    env = {**os.environ, "AIGQ_HOME": str(home)}
    (home / "feast").mkdir()
    feast = Path(sys.executable).parent / "feast"
    repo = feature_store.FEATURE_REPO
    subprocess.run([str(feast), "apply"], cwd=repo, env=env, check=True, capture_output=True)
    # Pinned instants, not the wall clock: the first `materialize-incremental` of a registry starts
    # at (now - ttl) by Feast's clock, so it would load nothing of a world that ended weeks ago. A
    # full `materialize` up to the day before the world's end, then `materialize-incremental` up to
    # midday of the end date (as a user typing `date -u` that day would) loads the last snapshot.
    end = pd.Timestamp(TINY_END_DATE)
    day = pd.Timedelta(days=1)
    for args in (
        ["materialize", (end - 10 * day).isoformat(), (end - day).isoformat()],
        ["materialize-incremental", (end + day / 2).isoformat()],
    ):
        subprocess.run([str(feast), *args], cwd=repo, env=env, check=True, capture_output=True)
    code = (
        "from feast import FeatureStore; fs = FeatureStore(repo_path='.'); "
        "print(fs.get_online_features(features=['user_interests:n_events_30d'], "
        f"entity_rows=[{{'user_id': '{_any_recent_user(home)}'}}]).to_dict()['n_events_30d'][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, check=True, capture_output=True, text=True)
    assert int(out.stdout.strip().splitlines()[-1]) > 0


def _any_recent_user(home: Path) -> str:
    ui = pd.read_parquet(home / "features" / "user_interests.parquet")
    return ui.sort_values("event_timestamp").iloc[-1]["user_id"]
