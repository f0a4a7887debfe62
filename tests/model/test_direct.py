"""Base LM, IL-SFT and batched generation on the tiny world (tiny models, few steps)."""

import json

import numpy as np
import pandas as pd
import pytest

from models import base_lm
from models.generator import DirectGenerator, GenerationConfig
from pipelines import train_sft
from pipelines.datasets import prompts_for


@pytest.fixture(scope="module")
def trained(direct_home):
    return direct_home


def test_base_pretraining_lowers_the_loss(trained):
    m = trained["base"]
    assert m["last_loss"] < 0.9 * m["first_loss"]
    card = json.loads((trained["home"] / "models" / "base" / "card.json").read_text())
    assert card["from_scratch"] is True and card["git revision"]


def test_tokenizer_round_trips_queries(trained):
    _, tok = base_lm.load(trained["home"] / "models" / "base")
    assert tok.padding_side == "left"
    for q in ("navy linen shirt", '48" sliding barn door', "women's sunscreen"):
        assert tok.decode(tok(q, add_special_tokens=False)["input_ids"]) == q
    assert tok.convert_tokens_to_ids(base_lm.LIST) != tok.unk_token_id


def test_sft_lowers_the_loss_and_changes_every_weight(trained):
    m = trained["sft"]
    assert m["last_loss"] < m["first_loss"]
    assert m["share_of_tensors_changed"] == 1.0 and m["adapter"] == "full"
    card = json.loads((trained["sft_dir"] / "card.json").read_text())
    assert {"base", "data window", "config", "metrics", "git revision"} <= set(card)


@pytest.mark.parametrize("penalty", [1.0, 1.2])
def test_batched_generation_equals_one_at_a_time(trained, penalty):
    """Left padding, the KV cache and our decoding loop must not change what greedy decoding
    writes: it equals transformers' generate (the no-cache path), repetition penalty included."""
    home = trained["home"]
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(6).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    gen = DirectGenerator(
        trained["sft_dir"], GenerationConfig(do_sample=False, repetition_penalty=penalty, max_new_tokens=24)
    )
    batched = gen.generate_texts(prompts, batch_size=6)
    alone = [gen.generate_texts([p], batch_size=1)[0] for p in prompts]
    no_cache = gen.generate_texts(prompts, use_cache=False, batch_size=6)
    strip = lambda t: t.split(base_lm.EOS)[0]  # noqa: E731
    assert [strip(t) for t in batched] == [strip(t) for t in alone]
    assert [strip(t) for t in no_cache] == [strip(t) for t in batched]


def test_generated_lists_are_exactly_k_distinct_with_sources(trained):
    home = trained["home"]
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(16).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    gen = DirectGenerator(trained["sft_dir"], GenerationConfig(k=8), blocklist=["dress"])
    fallback = [f"fallback {i}" for i in range(20)]
    for out in gen.generate(prompts, [fallback] * len(prompts)):
        assert len(out.queries) == 8 == len(set(out.queries)) == len(out.sources)
        assert not any("dress" in q for q in out.queries)
        assert out.sources.count("model") == out.n_parsed


def test_save_load_round_trip_is_identical(trained, tmp_path):
    import torch

    model, tok = base_lm.load(trained["sft_dir"])
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = base_lm.load(tmp_path)
    for (n, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), n


def test_lora_adapter_on_a_pretrained_base_is_merged(trained, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("AIGQ_HOME", str(trained["home"]))
    cfg = train_sft.TrainSFTConfig(
        adapter="lora",
        lora_r=4,
        lora_alpha=8,
        trl={"max_steps": 8, "per_device_train_batch_size": 4, "learning_rate": 5e-3},
        max_samples=64,
        output_dir=str(tmp_path / "lora"),
    )
    m = train_sft.main(cfg)
    assert m["adapter"] == "lora (merged)"
    merged, _ = base_lm.load(tmp_path / "lora")
    assert not any("lora" in n for n in merged.state_dict())
    base, _ = base_lm.load(trained["home"] / "models" / "base")
    diffs = [not torch.equal(a, b) for a, b in zip(base.state_dict().values(), merged.state_dict().values())]
    assert any(diffs)
    assert np.isfinite(m["last_loss"])


def test_missing_base_is_a_clear_error(tmp_path, monkeypatch):
    from core.errors import AigqError

    monkeypatch.setenv("AIGQ_HOME", str(tmp_path))
    with pytest.raises(AigqError, match="no base model; run `aigq train base`"):
        train_sft.main(train_sft.TrainSFTConfig())


def test_nucleus_sampling_keeps_to_the_nucleus():
    import torch

    from models.generator import sample_nucleus

    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]])).repeat(4000, 1)
    drawn = sample_nucleus(logits, top_p=0.8)
    assert set(drawn.tolist()) == {0, 1}  # 0.6 + 0.3 reach 0.8: the tail is never drawn
    share = (drawn == 0).float().mean().item()
    assert abs(share - 0.6 / 0.9) < 0.03  # renormalised within the nucleus
    assert set(sample_nucleus(logits[:500], top_p=1.0).tolist()) == {0, 1, 2, 3}
    assert set(sample_nucleus(logits[:50], top_p=0.5).tolist()) == {0}


def test_constrained_lists_are_k_distinct_vocabulary_queries_and_batch_like_one_at_a_time(trained):
    """With the vocabulary as its grammar the model writes every list in full: k distinct queries
    it is allowed to serve (never a blocked one), no fallback; the grammar's per-row state keeps
    batched greedy decoding equal to one prompt at a time."""
    home = trained["home"]
    vocabulary = list(pd.read_parquet(home / "data" / "queries.parquet")["query"])
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(12).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    gen = DirectGenerator(trained["sft_dir"], GenerationConfig(k=6), blocklist=["dress"], vocabulary=vocabulary)
    assert gen.grammar is not None
    for out in gen.generate(prompts, [["fallback"] * 6] * len(prompts)):
        assert out.sources == ["model"] * 6 and len(set(out.queries)) == 6, out.raw
        assert set(out.queries) <= set(vocabulary) and not any("dress" in q for q in out.queries)
    greedy = DirectGenerator(trained["sft_dir"], GenerationConfig(k=6, do_sample=False), vocabulary=vocabulary)
    strip = lambda t: t.split(base_lm.EOS)[0]  # noqa: E731
    batched = [strip(t) for t in greedy.generate_texts(prompts, batch_size=12)]
    assert batched == [strip(greedy.generate_texts([p], batch_size=1)[0]) for p in prompts]


def test_a_quota_scoped_list_keeps_to_the_users_categories_within_their_caps(trained):
    """scope=quota: every query of a user with named interests is in one of those categories, a
    category takes at most its share of the list while the caps add up to the list, and batched
    greedy decoding still equals one prompt at a time."""
    from models.generator import interest_scope

    home = trained["home"]
    queries = pd.read_parquet(home / "data" / "queries.parquet")
    category_of = dict(zip(queries["query"], queries["category_id"]))
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(16).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    config = GenerationConfig(k=6, scope="quota", do_sample=False)
    gen = DirectGenerator(trained["sft_dir"], config, vocabulary=list(queries["query"]), category_of=category_of)
    out = gen.generate(prompts, scopes=gen.scopes_for(ctx))
    checked = 0
    for c, g in zip(ctx, out):
        quota = interest_scope(c, 6, capped=True)
        available = {cat: sum(v == cat for v in category_of.values()) for cat in quota}
        if not quota or sum(min(n, available[cat]) for cat, n in quota.items()) < 6:
            continue  # no named interest, or caps that cannot fill the list: the rest is uncapped
        cats = [category_of[q] for q in g.queries]
        assert set(cats) <= set(quota) and len(set(g.queries)) == 6, (quota, g.queries)
        assert all(cats.count(cat) <= n for cat, n in quota.items()), (quota, cats)
        checked += 1
    assert checked >= 4
    quotas = gen.scopes_for(ctx)
    strip = lambda t: t.split(base_lm.EOS)[0]  # noqa: E731
    batched = [strip(t) for t in gen.generate_texts(prompts, batch_size=16, scopes=quotas)]
    alone = [strip(gen.generate_texts([p], batch_size=1, scopes=[q])[0]) for p, q in zip(prompts, quotas)]
    assert batched == alone


def test_a_sampled_list_depends_on_its_prompt_not_on_its_batch(trained):
    """Each prompt samples from its own generator (seeded by the prompt): the same user gets the
    same list alone or batched with others (or with itself), as a server's request and the
    nearline job's batch must agree; numbered samples of one prompt still differ."""
    home = trained["home"]
    vocabulary = list(pd.read_parquet(home / "data" / "queries.parquet")["query"])
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(8).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    gen = DirectGenerator(trained["sft_dir"], GenerationConfig(k=6, temperature=1.0), vocabulary=vocabulary)
    strip = lambda t: t.split(base_lm.EOS)[0]  # noqa: E731
    batched = [strip(t) for t in gen.generate_texts(prompts, batch_size=8)]
    assert batched == [strip(gen.generate_texts([p], batch_size=1)[0]) for p in prompts]
    assert len(set(gen.generate_texts([prompts[0]] * 3))) == 1  # one user, one list
    samples = gen.generate_texts([prompts[0]] * 4, sample_ids=range(4))
    assert len(set(samples)) > 1  # several samples of one prompt are not copies of one draw
