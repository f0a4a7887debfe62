import pytest

from core.config import ConfigError, load_config
from pipelines.simulate import SimulateConfig


def test_defaults_then_yaml_then_overrides(tmp_path):
    f = tmp_path / "sim.yaml"
    f.write_text("seed: 7\nprofile: tiny\ntrend_shift_domains: [pets]\n")
    cfg = load_config(SimulateConfig, f, ["seed=9", "cold_start_share=0.2"])
    assert (cfg.seed, cfg.profile, cfg.cold_start_share) == (9, "tiny", 0.2)
    assert cfg.trend_shift_domains == ["pets"]
    assert load_config(SimulateConfig).seed == 42


def test_list_override_from_comma_string():
    assert load_config(SimulateConfig, None, ["trend_shift_domains=fashion,pets"]).trend_shift_domains == [
        "fashion",
        "pets",
    ]


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["sed=1"], "unknown SimulateConfig key(s) ['sed']"),
        (["seed=abc"], "config key 'seed': 'abc' is not a valid int"),
        (["seed"], "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides, needle):
    with pytest.raises(ConfigError) as e:
        load_config(SimulateConfig, None, overrides)
    assert needle in str(e.value)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(SimulateConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(SimulateConfig, bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(SimulateConfig, listy)


def test_unknown_profile_and_bad_date():
    with pytest.raises(ConfigError, match="unknown profile 'huge'; choose one of tiny, demo, large"):
        SimulateConfig(profile="huge").resolved()
    with pytest.raises(ConfigError, match="expected YYYY-MM-DD"):
        SimulateConfig(end_date="yesterday").resolved_end_date()
