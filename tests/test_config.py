"""The config schema: defaults, overrides and one-line errors naming file, key path and value."""

from __future__ import annotations

import pytest

from mmgym.config import ConfigError, apply_overrides, load_config, load_env_config, parse_override


def _write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_as2008_setup():
    m = load_env_config().market
    assert (m.s0, m.sigma, m.A, m.k, m.dt, m.horizon, m.fill_rule, m.max_inventory) == (
        100.0, 2.0, 140.0, 1.5, 0.005, 1.0, "linear", 25)
    assert m.n_steps == 200
    r = load_env_config().reward
    assert r.inventory_penalty == 0.0 and r.terminal_penalty == 0.0


def test_unknown_key_names_file_path_and_valid_keys(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    sigmaa: 2.0\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg and "env.market.sigmaa" in msg and "sigma" in msg and "\n" not in msg


def test_wrong_type_names_value(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    max_inventory: lots\n")
    with pytest.raises(ConfigError, match=r"env\.market\.max_inventory.*'lots'"):
        load_config(path)


def test_out_of_range_names_value(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    dt: -0.1\n")
    with pytest.raises(ConfigError, match=r"env\.market\.dt.*-0\.1"):
        load_config(path)


def test_cross_field_check(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    dt: 0.3\n")
    with pytest.raises(ConfigError, match="horizon/dt"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    path = _write(tmp_path, "env: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


def test_overrides_with_and_without_env_prefix():
    cfg = load_config(None, ["market.sigma=3", "env.reward.inventory_penalty=0.2", "baselines.gamma=0.5",
                             "agent.kwargs.learning_rate=3e-4"])
    assert cfg.env.market.sigma == 3.0
    assert cfg.env.reward.inventory_penalty == 0.2
    assert cfg.baselines.gamma == 0.5
    assert cfg.agent.kwargs["learning_rate"] == 3e-4 and isinstance(cfg.agent.kwargs["learning_rate"], float)


def test_bad_override_path_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown key 'sigmaa' under env.market; valid keys: .*sigma"):
        apply_overrides({}, ["market.sigmaa=1"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        parse_override("market.sigma")


def test_yaml_reads_exponent_floats(tmp_path):
    path = _write(tmp_path, "agent:\n  kwargs:\n    learning_rate: 3e-4\n    policy_kwargs:\n      net_arch: [64, 64]\n")
    cfg = load_config(path)
    assert cfg.agent.kwargs["learning_rate"] == 3e-4
    assert cfg.agent.kwargs["policy_kwargs"] == {"net_arch": [64, 64]}


def test_gym_make_unknown_key_lists_the_sections_keys():
    import gymnasium as gym

    import mmgym  # noqa: F401

    with pytest.raises(ConfigError, match=r"market\.sigmaa: unknown key \(valid keys: .*sigma"):
        gym.make("mmgym/MarketMaking-v0", market={"sigmaa": 2.0})


def test_cross_field_error_blames_the_override():
    with pytest.raises(ConfigError, match=r"^--set market\.dt=0\.3: env\.market: horizon/dt"):
        load_config(None, ["market.dt=0.3"])


def test_duplicate_yaml_keys_are_an_error(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    sigma: 1.0\nenv:\n  id: mmgym/MarketMaking-v0\n")
    with pytest.raises(ConfigError, match=r"line 4.*duplicate key 'env' \(first on line 1\)"):
        load_config(path)


def test_cli_finds_config_after_list_options():
    """``--set``/``--agents`` take lists; a CONFIG written after them is still the CONFIG."""
    from mmgym.cli import OneLineParser, add_overrides_argument, overrides_of

    p = OneLineParser(prog="x")
    p.add_argument("config")
    p.add_argument("--agents", nargs="+")
    add_overrides_argument(p)
    args = p.parse_args(["--set", "market.sigma=3", "b=c.yaml", "--agents", "as", "configs/cjp.yaml"])
    assert args.config == "configs/cjp.yaml" and args.agents == ["as"]
    assert overrides_of(args) == ["market.sigma=3", "b=c.yaml"]


def test_adverse_jump_negative_names_key_and_value(tmp_path):
    path = _write(tmp_path, "env:\n  market:\n    adverse_jump: -0.2\n")
    with pytest.raises(ConfigError, match=r"env\.market\.adverse_jump.*-0\.2"):
        load_config(path)
    assert load_env_config().market.adverse_jump == 0.0  # off by default
