"""A few IL-GRPO steps on the tiny SFT model, with the real CTR model as one reward."""

import json

import numpy as np
import pytest

from pipelines import train_grpo
from pipelines.rewards import make_rewards


@pytest.fixture(scope="module")
def grpo(direct_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "direct_grpo"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(direct_home["home"]))
        cfg = train_grpo.TrainGRPOConfig(
            trl={"max_steps": 3, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 24},
            max_prompts=64,
            eval_prompts=16,
            output_dir=str(out),
        )
        metrics = train_grpo.main(cfg)
    return metrics, out


def test_grpo_steps_change_the_weights(grpo):
    metrics, out = grpo
    assert metrics["share_of_tensors_changed"] > 0.9
    assert (out / "config.json").exists() and (out / "README.md").exists()


def test_each_reward_component_is_logged(grpo):
    metrics, out = grpo
    history = json.loads((out / "reward_history.json").read_text())
    assert history
    for name in metrics["weights"]:
        assert any(f"rewards/{name}/mean" in h for h in history), name
    held = metrics["heldout_reward"]
    assert set(held) == {"sft", "grpo"} and np.isfinite(held["grpo"]["total"])


def test_ctr_reward_is_one_batched_forward_pass(direct_home, monkeypatch):
    monkeypatch.setenv("AIGQ_HOME", str(direct_home["home"]))
    rc = train_grpo.reward_context(direct_home["home"])
    calls = []
    real = rc.ctr_scorer.score_users
    monkeypatch.setattr(rc.ctr_scorer, "score_users", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx = json.dumps({"top_categories_30d": ["c000"], "top_category_weights_30d": [1.0]})
    comps = [" dress | maxi dress | tent<|endoftext|>", " sleeping bag<|endoftext|>", " zzz<|endoftext|>"]
    out = make_rewards(rc)["ctr"](["p"] * 3, comps, context_json=[ctx] * 3)
    assert len(calls) == 1
    assert out[0] > out[1] > 0 and out[2] == 0.0  # more usable queries, more expected clicks


def test_popularity_comes_from_statistics_before_the_holdout(direct_home):
    import pandas as pd

    home = direct_home["home"]
    cutoff = train_grpo.training_cutoff(home)
    pop = train_grpo.query_popularity(home, cutoff)
    stats = pd.read_parquet(home / "features" / "query_stats.parquet")
    before = stats[stats["event_timestamp"] <= cutoff]
    assert pop and max(pop.values()) == pytest.approx(1.0) and min(pop.values()) >= 0.0
    assert set(pop) == set(before["query"])  # queries first searched in the held-out days are unknown here
    latest = before.sort_values("event_timestamp").drop_duplicates("query", keep="last").set_index("query")
    most = latest["q_n_search_30d"].idxmax()
    assert pop[most] == 1.0


def test_reward_statistics_are_read_as_of_the_cutoff(direct_home):
    from pipelines.feature_tables import query_stats_at

    home = direct_home["home"]
    path = home / "features" / "query_stats.parquet"
    cutoff = train_grpo.training_cutoff(home)
    as_of, newest = query_stats_at(path, cutoff), query_stats_at(path)
    assert as_of != newest  # the held-out days changed the statistics: the test can tell them apart
    rc = train_grpo.reward_context(home, with_query_stats=True, with_popularity=True, stats_cutoff=cutoff)
    assert rc.query_features == as_of
    assert rc.query_popularity == train_grpo.query_popularity(home, cutoff)
    assert train_grpo.reward_context(home, with_ctr=False).query_popularity is None  # off unless asked


def test_bad_group_size_is_named(direct_home, monkeypatch):
    from core.errors import AigqError

    monkeypatch.setenv("AIGQ_HOME", str(direct_home["home"]))
    with pytest.raises(AigqError, match="must be a multiple of trl.num_generations"):
        train_grpo.main(train_grpo.TrainGRPOConfig(trl={"per_device_train_batch_size": 10, "num_generations": 4}))


def test_reviewer_flags_become_an_il_grpo_negative(direct_home, tmp_path, monkeypatch):
    """The loop's last step: a query flagged through the review store is penalised by the next
    IL-GRPO run (the `flagged` reward is active and logged) and nowhere else."""
    import shutil

    from serving.review import ReviewStore

    home = tmp_path / "home"
    shutil.copytree(direct_home["home"], home)
    monkeypatch.setenv("AIGQ_HOME", str(home))
    assert train_grpo.reward_context(home, with_ctr=False).flagged is None  # no flags, no penalty
    store = ReviewStore()
    flagged = pd_top_query(home)
    store.flag("r-test", 0, flagged, None, "direct", "offensive", "ann")
    store.close()
    rc = train_grpo.reward_context(home, with_ctr=False)
    reward = make_rewards(rc)["flagged"]
    assert reward(["p"] * 2, [f" {flagged} | tent", " tent"])[0] < 0
    cfg = train_grpo.TrainGRPOConfig(
        trl={"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 24},
        max_prompts=32,
        eval_prompts=8,
        w_ctr=0.0,
        output_dir=str(tmp_path / "grpo"),
    )
    metrics = train_grpo.main(cfg)
    assert metrics["weights"]["flagged"] == cfg.w_flagged
    history = json.loads((tmp_path / "grpo" / "reward_history.json").read_text())
    assert any("rewards/flagged/mean" in h for h in history)
    assert "flagged" in metrics["heldout_reward"]["grpo"]


def pd_top_query(home) -> str:
    import pandas as pd

    events = pd.read_parquet(home / "data" / "events.parquet", columns=["event_type", "query"])
    return events.loc[events["event_type"] == "search", "query"].value_counts().index[0]
