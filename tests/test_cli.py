"""The command lines' rough edges, each found by trying them as a new user would: one line and
exit code 2 for bad input, checked before anything runs; nothing left behind by an interrupt."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmgym.agents import cli_evaluate as evaluate
from mmgym.agents import cli_train as train

from mmgym.config import ConfigError, load_config


def _one_error_line(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    return err[0]


def test_evaluate_refuses_an_out_path_that_is_a_file_before_running(capsys, tmp_path):
    target = tmp_path / "README.md"
    target.write_text("keep me")
    assert evaluate.main(["configs/cjp.yaml", "--agents", "as", "--out", str(target)]) == 2
    assert "exists and is not a directory" in _one_error_line(capsys, "evaluate.py")
    assert target.read_text() == "keep me"


def test_evaluate_refuses_an_unwritable_out_path(capsys):
    assert evaluate.main(["configs/cjp.yaml", "--agents", "as", "--out", "/proc/nope"]) == 2
    assert "cannot write there" in _one_error_line(capsys, "evaluate.py")


def test_non_finite_values_are_refused_with_their_key_path(capsys):
    assert evaluate.main(["configs/cjp.yaml", "--agents", "as", "--set", "market.sigma=.inf"]) == 2
    assert "env.market.sigma" in _one_error_line(capsys, "evaluate.py")
    with pytest.raises(ConfigError, match="finite"):
        load_config("configs/cjp.yaml", ["reward.inventory_penalty=nan"])


def test_a_directory_as_config_says_so(capsys):
    assert evaluate.main(["configs", "--agents", "as"]) == 2
    assert "is a directory" in _one_error_line(capsys, "evaluate.py")


def test_help_lists_the_baselines():
    from mmgym.baselines import BASELINES

    text = evaluate.build_parser().format_help()
    assert all(name in text for name in BASELINES)


def test_table_header_keeps_bracketed_text(capsys):
    m = {"objective_diff_ci95": (0.0, 0.0), "objective_diff_mean": 0.0, "objective_mean": 1.0,
         "objective_se": 0.1, "objective_exact": 1.0, "pnl_mean": 1.0, "pnl_std": 1.0, "sharpe": 1.0,
         "certainty_equivalent": 1.0, "spread_mean": 1.0, "final_inventory_mean": 0.0,
         "final_inventory_std": 1.0, "abs_inventory_mean": 1.0, "fills_mean": 1.0, "impact_cost_mean": 0.0}
    evaluate.print_table({"as": m}, "as", "gamma [0.1]")
    out = capsys.readouterr().out
    assert "E[obj]" in out and "gamma [0.1]" in out


def test_train_refuses_an_empty_file_and_names_defaulted_sections(capsys, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert train.main([str(empty)]) == 2
    assert "is empty" in _one_error_line(capsys, "train.py")
    only_env = tmp_path / "env_only.yaml"
    only_env.write_text("env:\n  market:\n    sigma: 2.0\n")
    train._note_defaults(str(only_env), [])
    assert "no agent / train section" in capsys.readouterr().err
    train._note_defaults(str(only_env), ["agent.algo=sac", "train.seed=1"])
    assert capsys.readouterr().err == ""


def test_linear_schedule_never_goes_negative():
    from mmgym.agents.algos import _schedule

    f = _schedule("lin_3e-4", "agent.kwargs.learning_rate")
    assert f(1.0) == pytest.approx(3e-4) and f(0.5) == pytest.approx(1.5e-4)
    assert f(-0.0001) == 0.0  # SB3 overshoots to whole rollouts


def test_ctrl_c_before_training_leaves_no_run_directory(tmp_path, monkeypatch):
    import mmgym.agents.train as at

    run = tmp_path / "run"

    def interrupted_setup(*args, **kwargs):  # Ctrl-C while the env compiles, before learn()
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(at, "_train", interrupted_setup)
    cfg = load_config("configs/smoke.yaml", [f"train.run_dir={run}"])
    with pytest.raises(KeyboardInterrupt):
        at.train(cfg)
    assert not run.exists()
    # a directory that existed before is never removed by an interrupt
    run.mkdir()
    (run / "keep.txt").write_text("x")
    with pytest.raises((KeyboardInterrupt, ConfigError)):
        at.train(cfg, overwrite=True)
    assert (run / "keep.txt").exists()


def test_shipped_configs_by_name_from_any_directory(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    for name in ("cjp", "cjp.yaml"):
        assert load_config(name) == load_config(root / "configs" / "cjp.yaml")
    with pytest.raises(ConfigError, match=r"nor a shipped config: .*\bcjp\b"):
        load_config("no_such_config")
    (tmp_path / "cjp.yaml").write_text("env:\n  market:\n    sigma: 3.0\n")
    assert load_config("cjp.yaml").env.market.sigma == 3.0  # a file here wins over the shipped one


@pytest.mark.parametrize("args,needle", [
    (["--seeds", "0", "1", "0"], "--seeds: seed 0 given twice (got 0 1 0)"),
    (["--seeds", "2", "-1"], "--seeds: seeds are >= 0 (got -1)"),
    (["--seeds", "0", "1", "--set", "train.seed=3"], "--seeds and --set train.seed=3 exclude each other"),
    (["--seeds", "0", "--set", "train={seed: 3}"], "--seeds and --set train={seed: 3} exclude each other"),
])
def test_train_refuses_bad_seeds_before_anything_runs(capsys, tmp_path, args, needle):
    run = tmp_path / "run"
    assert train.main(["configs/smoke.yaml", "--run-dir", str(run), *args]) == 2
    assert needle in _one_error_line(capsys, "train.py")
    assert not run.exists()
