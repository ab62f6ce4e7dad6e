"""``reward.risk_penalty: variance`` (issue 9, scenario 5): the running penalty charges the step's
actual price variance, phi q^2 Var_t(dS)/sigma^2. When nothing varies it is today's phi q^2 dt, bit
for bit, in the kernels and the DP; it is refused where the variance is not configured. (The
per-step values against a scalar reference and the DP against brute force are in
``tests/test_regimes.py`` and ``tests/test_events.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket
from mmgym.scenarios import get
from mmgym.sim.ledger import penalty_time

CASES = {
    "intensity": {},
    "regimes": {"id": "mmgym/RegimeMarketMaking-v0",
                "regimes": {"sigma": [2.0, 2.0], "A": [140.0, 60.0], "k": [1.5, 0.9],
                            "rates": [[0, 20.0], [20.0, 0]]}},
    "events": {"id": "mmgym/EventMarketMaking-v0",
               "events": {"times": [0.05], "window": 0.02, "adverse_jump": 0.2, "jump_std": 0.0}},
    "ou": {"id": "mmgym/OUMarketMaking-v0", "ou": {"kappa": 0.0}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_variance_equals_time_when_nothing_varies(case):
    """Regimes with one sigma, events with a zero jump, OU at kappa = 0: rewards and the inventory
    penalty term are identical under both settings (same draws, same actions)."""
    kw = dict(CASES[case], market={"horizon": 0.1}, reward={"inventory_penalty": 1.5})
    markets = []
    for mode in ("time", "variance"):
        cfg = load_env_config({**kw, "reward": {**kw["reward"], "risk_penalty": mode}})
        mk = BatchMarket(cfg, 4)
        mk.seed_rows([5, 6, 7, 8])
        mk.reset()
        markets.append(mk)
    rng = np.random.default_rng(0)
    penalised = 0
    for _ in range(30):
        act = rng.uniform(-1, 1, (4, markets[0].action_dim))
        b0, b1 = markets[0].step(act), markets[1].step(act)
        np.testing.assert_array_equal(b0.reward, b1.reward)
        np.testing.assert_array_equal(b0.terms, b1.terms)
        penalised += int(np.count_nonzero(b0.terms[:, 3]))
    assert penalised > 0  # the penalty was charged, so the comparison says something


def test_penalty_time_rule():
    """The one rule: dt in time mode whatever the variance; dt var_ratio + jump_var otherwise."""
    assert penalty_time.py_func(False, 0.01, 4.0, 0.3) == 0.01
    assert penalty_time.py_func(True, 0.01, 1.0, 0.0) == 0.01
    assert penalty_time.py_func(True, 0.01, 4.0, 0.3) == pytest.approx(0.34)


def test_regime_variance_scales_the_dp_penalty():
    """A regime with twice the volatility pays four times the penalty: with A, k equal across two
    regimes that never switch, the variance-mode DP's values in the calm regime equal a time-mode
    DP with phi and the high-vol regime equal one with 4 phi (exactly the same recursion)."""
    from mmgym.baselines import solve_optimal

    base = dict(market=dict(max_inventory=4, horizon=0.3, dt=0.01, sigma=2.0),
                reward=dict(inventory_penalty=1.0, terminal_penalty=0.1))
    reg = load_env_config({"id": "mmgym/RegimeMarketMaking-v0", **base,
                           "reward": {**base["reward"], "risk_penalty": "variance"},
                           "regimes": {"sigma": [2.0, 4.0], "A": [140.0, 140.0], "k": [1.5, 1.5],
                                       "rates": [[0, 0.0], [0.0, 0]]}})
    sol = solve_optimal(reg)
    calm = solve_optimal(load_env_config(base))
    wild = solve_optimal(load_env_config({**base, "market": {**base["market"], "sigma": 4.0},
                                          "reward": {**base["reward"], "inventory_penalty": 4.0}}))
    np.testing.assert_allclose(sol.value[:, 0], calm.value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sol.value[:, 1], wild.value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg, message", [
    ({"market": {"sigma": 0.0}, "reward": {"risk_penalty": "variance"}}, "market.sigma"),
    ({"id": "mmgym/LOBMarketMaking-v0", "reward": {"risk_penalty": "variance"}}, "risk_penalty"),
    ({"reward": {"risk_penalty": "var"}}, "risk_penalty"),
])
def test_refusals_are_one_line(cfg, message):
    with pytest.raises(ConfigError) as err:
        cfg_obj = load_env_config(cfg)
        get(cfg_obj.id).check(cfg_obj)
    assert message in str(err.value) and "\n" not in str(err.value)
