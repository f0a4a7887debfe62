"""A tiny world with its Feast frames, a CTR model, a tiny base LM and an IL-SFT model, built once
per test session for the model tests (tiny sizes, a few steps each)."""

import shutil

import pytest

from pipelines import features, train_base, train_ctr, train_sft, training_frames


@pytest.fixture(scope="session")
def direct_home(tiny_world, tmp_path_factory):
    home = tmp_path_factory.mktemp("direct_home")
    shutil.copytree(tiny_world, home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        features.apply("sqlite")
        fs = features.open_store("sqlite")
        frames = home / "frames"
        frames.mkdir()
        training_frames.sft_context_frame(fs).to_parquet(frames / "sft_contexts.parquet")
        ctr_frame = training_frames.ctr_training_frame(fs)
        ctr_cfg = train_ctr.TrainCTRConfig(test_days=3, epochs=8, batch_size=256)
        ctr = train_ctr.main(ctr_cfg, ctr_frame)
        base = train_base.main(train_base.TrainBaseConfig(steps=60, vocab_size=800, hidden_size=64, batch_size=16,
                                                          block_size=64, warmup_steps=5))
        sft_cfg = train_sft.TrainSFTConfig(max_steps=30, batch_size=8, max_samples=400)
        sft = train_sft.main(sft_cfg)
        dirs = {"sft_dir": train_sft.model_dir(sft_cfg), "ctr_dir": train_ctr.model_dir(ctr_cfg)}
    return {"home": home, "base": base, "sft": sft, "ctr": ctr, "ctr_frame": ctr_frame, "ctr_cfg": ctr_cfg, **dirs}
