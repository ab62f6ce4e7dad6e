"""``agent.control_variate``: the ``revaluation_noise`` aux column is ``q (dS - E_t dS)``, the
zero-mean part of the step's revaluation, in every intensity-family scenario; its episode sum has
mean zero under a policy (Monte Carlo within 4 SE), so learning from ``reward - noise`` keeps every
policy's expected return; the training wrapper subtracts exactly that column; and it is refused,
with one line, where the mid is not decomposed or the reward is not linear in dS."""

from __future__ import annotations

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_config, load_env_config
from mmgym.envs.market import BatchMarket

XI = 0.2
KAPPA, OU_MEAN = 3.0, 101.0

# each case: the env config and the step's predictable move E_t[dS] from (market before, fills)
CASES = {
    "intensity": {"market": {"adverse_jump": XI}},
    "regimes": {"id": "mmgym/RegimeMarketMaking-v0", "market": {"adverse_jump": XI},
                "regimes": {"sigma": [2.0, 4.0], "A": [140.0, 60.0], "k": [1.5, 0.9], "adverse_jump": [XI, XI],
                            "rates": [[0, 20.0], [20.0, 0]]}},
    # xi inside the windows = xi outside: E_t[dS] = xi (F_ask - F_bid) at every step; the event
    # jumps (std 3) are noise
    "events": {"id": "mmgym/EventMarketMaking-v0", "market": {"adverse_jump": XI},
               "events": {"times": [0.1, 0.2, 0.3], "window": 0.02, "adverse_jump": XI, "jump_std": 3.0}},
    "alpha": {"id": "mmgym/AlphaMarketMaking-v0",
              "alpha": {"lambda_buy": 140.0, "lambda_sell": 140.0, "epsilon": 5.0, "zeta": 20.0,
                        "notches": 4}},
    "ou": {"id": "mmgym/OUMarketMaking-v0", "market": {"adverse_jump": XI},
           "ou": {"kappa": KAPPA, "mean": OU_MEAN}},
}


def _market(case: str, n: int, seed0: int = 0) -> BatchMarket:
    cfg = load_env_config(CASES[case])
    mk = BatchMarket(cfg, n)
    mk.seed_rows(list(range(seed0, seed0 + n)))
    mk.reset()
    return mk


def _expected_move(case: str, mk: BatchMarket, mid0: np.ndarray, notch0, fb, fa) -> np.ndarray:
    """E_t[dS] from each scenario's documented step rule (its module docstring)."""
    cfg = mk.config
    ev_b, ev_a = (fb > 0).astype(float), (fa > 0).astype(float)
    if case == "alpha":
        return notch0 * cfg.alpha.epsilon * cfg.market.dt
    jump = XI * (ev_a - ev_b)
    if case == "ou":
        return (OU_MEAN - mid0) * (1.0 - np.exp(-KAPPA * cfg.market.dt)) + jump
    return jump


@pytest.mark.parametrize("case", list(CASES))
def test_noise_column_is_q_times_the_unpredictable_move(case):
    """Step by step, ``revaluation_noise = q_after (dS - E_t dS)`` with dS read from the state."""
    n = 64
    mk = _market(case, n)
    col = {name: j for j, name in enumerate(mk.aux_names)}
    rng = np.random.default_rng(1)
    steps = int(round(mk.config.market.horizon / mk.config.market.dt)) - 1  # no reset in between
    checked = moved = 0
    for _ in range(steps):
        mid0 = mk.state.mid[:, 0].copy()
        notch0 = mk.state.notch.copy().reshape(-1) if case == "alpha" else None
        b = mk.step(rng.uniform(-1, 1, (n, mk.action_dim)))
        assert not b.done.any()
        ds = mk.state.mid[:, 0] - mid0
        q = mk.state.inventory[:, 0].astype(float)
        want = q * (ds - _expected_move(case, mk, mid0, notch0, b.aux[:, col["fill_bid"]],
                                        b.aux[:, col["fill_ask"]]))
        np.testing.assert_allclose(b.aux[:, col["revaluation_noise"]], want, rtol=1e-9, atol=1e-9)
        checked += n
        moved += int(np.count_nonzero(b.aux[:, col["fill_bid"]] + b.aux[:, col["fill_ask"]]))
    assert checked > 0 and moved > 0  # fills happened, so the predictable jump was exercised


@pytest.mark.parametrize("case", ["events", "alpha"])
def test_noise_has_mean_zero_and_removes_variance(case):
    """Over whole episodes of a fixed stochastic policy: the summed noise is within 4 SE of 0 (the
    expected return is unchanged), and the return minus it has a smaller spread."""
    n = 2000
    mk = _market(case, n, seed0=10_000)
    col = list(mk.aux_names).index("revaluation_noise")
    rng = np.random.default_rng(2)
    ret, noise = np.zeros(n), np.zeros(n)
    done = np.zeros(n, dtype=bool)
    while not done.all():
        b = mk.step(rng.uniform(-0.5, 0.5, (n, mk.action_dim)))
        live = ~done
        ret[live] += b.reward[live]
        noise[live] += b.aux[live, col]
        done |= b.done
    se = noise.std(ddof=1) / np.sqrt(n)
    assert abs(noise.mean()) < 4 * se
    assert (ret - noise).std() < ret.std()


def test_wrapper_subtracts_the_column():
    """The algorithm's reward is the env's minus ``revaluation_noise``, row for row."""
    from mmgym.agents.train import ControlVariateVecEnv
    from mmgym.agents.vec_env import MMVecEnv

    cfg = load_env_config(CASES["events"])
    inner = MMVecEnv(cfg, num_envs=8)
    venv = ControlVariateVecEnv(inner, inner)
    venv.reset()
    col = list(inner.market.aux_names).index("revaluation_noise")
    rng = np.random.default_rng(3)
    nonzero = 0
    for _ in range(40):
        venv.step_async(rng.uniform(-1, 1, (8, inner.market.action_dim)))
        _, rew, _, _ = venv.step_wait()
        want = (inner.market.buffers.reward - inner.market.buffers.aux[:, col]).astype(np.float32)
        np.testing.assert_allclose(rew, want, rtol=1e-6, atol=1e-5)
        nonzero += int(np.count_nonzero(inner.market.buffers.aux[:, col]))
    assert nonzero > 0


@pytest.mark.parametrize("env, why", [
    ({"id": "mmgym/LOBMarketMaking-v0"}, "does not split"),
    ({"reward": {"objective": "cara"}}, "CARA"),
    ({"reward": {"dampening": 0.5}}, "dampening"),
])
def test_refused_where_not_a_control_variate(env, why):
    from mmgym.agents.train import check_control_variate

    cfg = load_config({"env": env, "agent": {"control_variate": True}})
    with pytest.raises(ConfigError) as err:
        check_control_variate(cfg, "x.yaml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("x.yaml: agent.control_variate:") and why in msg


def test_not_in_the_books_info():
    """The book's mid is not decomposed: its aux column is NaN and left out of ``info``."""
    import gymnasium as gym

    env = gym.make("mmgym/LOBMarketMaking-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert "revaluation_noise" not in info
    env2 = gym.make("mmgym/EventMarketMaking-v0")
    env2.reset(seed=0)
    _, _, _, _, info2 = env2.step(env2.action_space.sample())
    assert "revaluation_noise" in info2


def test_portfolio_noise_is_the_inventory_weighted_mid_moves():
    """Portfolio (no market orders): every mid move is noise, so the column is sum_a q'_a dS_a."""
    cfg = load_env_config("configs/portfolio2.yaml")
    n = 16
    mk = BatchMarket(cfg, n)
    mk.seed_rows(list(range(n)))
    mk.reset()
    col = list(mk.aux_names).index("revaluation_noise")
    rng = np.random.default_rng(4)
    for _ in range(50):
        mid0 = mk.state.mid.copy()
        b = mk.step(rng.uniform(-1, 1, (n, mk.action_dim)))
        want = (mk.state.inventory * (mk.state.mid - mid0)).sum(axis=1)
        np.testing.assert_allclose(b.aux[:, col], want, rtol=1e-9, atol=1e-9)
