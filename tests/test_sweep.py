"""Sweeps on Ray Tune (mmgym.agents.sweep, `mmgym sweep`): the sweep file's validation, the seed statistics, and the
2-trial smoke sweep end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from mmgym.agents.sweep import load_sweep, main, score_of, summarize

from mmgym.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "sweep_smoke.yaml"


def _sweep_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(SMOKE.read_text())
    data["base"] = str(ROOT / "configs" / data["base"])
    data["storage"] = str(tmp_path / "sweeps")
    data.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, expect", [
    ({"space": {"agent.kwargs.learning_rate": {"loguniform": [0.0, 1e-3]}}}, "low must be > 0"),
    ({"space": {"agent.kwargs.learning_rate": {"gaussian": [1, 2]}}}, "one of loguniform"),
    ({"space": {"agent.kwargs.learning_rat": {"choice": [1e-3]}}}, "learning_rat"),
    ({"space": {"market.sigmaa": {"uniform": [1.0, 2.0]}}}, "sigmaa"),
    ({"space": {"train.seed": {"choice": [1, 2]}}}, "the seeds are the `seeds` axis"),
    ({"seeds": [0, 0]}, "distinct non-negative seeds"),
    ({"chunks": 0}, "chunks"),
    ({"storage_path": "x"}, "storage_path"),
    ({"set": ["agent.features=[inventory, spread]"]}, "not an observation column of this env"),
])
def test_bad_sweep_files_get_one_line(tmp_path, capsys, changes, expect):
    path = _sweep_file(tmp_path, **changes)
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(")):
        load_sweep(path)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmgym sweep: error: ") and expect.split()[0] in err[0]


def test_summary_is_the_t_interval_over_seeds():
    from scipy import stats

    scores = {0.001: [98.0, 99.5, 97.0], 0.0003: [99.0, 99.2, 99.4]}
    rows = [{"params": {"agent.kwargs.learning_rate": lr, "train.seed": s}, "score": v, "objective": 0.0,
             "iterations": 4, "path": ""}
            for lr, vs in scores.items() for s, v in enumerate(vs)]
    rows.append({"params": {"agent.kwargs.learning_rate": 0.01, "train.seed": 0}, "score": 50.0,
                 "objective": 0.0, "iterations": 1, "path": ""})  # stopped early by ASHA
    table = summarize(rows, chunks=4)
    assert [g["params"]["agent.kwargs.learning_rate"] for g in table] == [0.0003, 0.001, 0.01]
    for g in table[:2]:
        x = scores[g["params"]["agent.kwargs.learning_rate"]]
        lo, hi = stats.t.interval(0.95, len(x) - 1, loc=sum(x) / len(x), scale=stats.sem(x))
        assert g["mean"] == pytest.approx(sum(x) / len(x))
        assert g["ci95"] == pytest.approx((hi - lo) / 2)
    assert table[2]["n"] == 0 and table[2]["stopped"] == 1 and math.isnan(table[2]["mean"])


def test_score_is_percent_of_optimum_when_exact_else_difference():
    final = {"agent": {"objective_mean": 60.0}, "as": {"objective_mean": 50.0},
             "optimal": {"objective_mean": 80.0}}
    assert score_of(final, exact=True, reference="as") == 75.0
    assert score_of(final, exact=False, reference="as") == 10.0


@pytest.mark.slow
def test_smoke_sweep_end_to_end(tmp_path, capsys):
    pytest.importorskip("ray.tune")
    path = _sweep_file(tmp_path)
    assert main([str(path)]) == 0
    out = tmp_path / "sweeps" / "sweep_smoke"
    import csv

    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and [r["rank"] for r in rows] == ["1", "2"]  # two learning rates, one seed
    assert float(rows[0]["score_mean"]) >= float(rows[1]["score_mean"])
    best = load_config(out / "best.yaml")
    top = json.loads(rows[0]["params"])
    assert best.agent.kwargs["learning_rate"] == pytest.approx(top["agent.kwargs.learning_rate"])
    runs = sorted(out.glob("*/run"))
    assert len(runs) == 2
    for run in runs:  # each trial trained to the end, in two resumed parts, with its TensorBoard logs
        assert (run / "model.zip").is_file() and list((run / "tb").rglob("events.out.tfevents.*"))
        summary = json.loads((run / "summary.json").read_text())
        assert summary["num_timesteps"] >= 1280
    # the same name again is refused: a sweep never overwrites another
    assert main([str(path)]) == 2
    assert "already holds a sweep" in capsys.readouterr().err
