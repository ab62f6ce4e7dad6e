"""mmgym/ReplayMarketMaking-v0 against a slow reference replay (tests/replay_reference.py), its
window/level index against the recorded book, its episode windows, and its config errors.

(Gymnasium's and SB3's check_env, same-seed determinism and vector = N singles run on it with every
registered id: tests/test_envs.py, tests/test_compat.py, tests/test_scenarios.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmgym.config import ConfigError
from mmgym.envs.market import BatchMarket
from mmgym.scenarios import get
from mmgym.scenarios.replay import recording

from .replay_reference import RefReplay

ID = "mmgym/ReplayMarketMaking-v0"
DATA = Path(__file__).parent / "data" / "binance"
SPOT = str(DATA / "spot_btcusdt_20240808_excerpt.gz")


def _config(**replay):
    sc = get(ID)
    data = sc.default_config().model_dump()
    data["replay"].update(replay)
    return sc.config_class.model_validate(data)


def _spot_config(**replay):
    cfg = _config(path=SPOT, **replay)
    data = cfg.model_dump()
    data["market"].update(tick_size=0.01, horizon=20.0)
    return type(cfg).model_validate(data)


@pytest.mark.parametrize("seed, depths", [(0, (0.1, 0.1)), (1, (0.2, 0.1)), (3, (0.15, 0.15))])
def test_matches_the_slow_reference(seed, depths):
    """Fills, inventory and cash of every step equal the reference's (pessimistic, no latency)."""
    cfg = _config(quote_lots=2, fill_log=64)
    m = BatchMarket(cfg, 1, raw_depths=True)
    m.seed_rows([seed])
    m.reset()
    st = m.state
    rec = recording(cfg.replay.path)
    ref = RefReplay(rec, int(st.cursor[0]), int(st.now[0]), 2, cfg.market.max_inventory)
    tick = cfg.market.tick_size
    total = 0
    for k in range(cfg.market.n_steps - 1):
        t0 = int(st.now[0])
        out = m.step(np.array([depths]))
        fb, fa = ref.step(*depths, tick, int(round(cfg.market.dt * 1e9)))
        aux = dict(zip(m.aux_names, out.aux[0]))
        assert (aux["fill_bid"], aux["fill_ask"]) == (fb, fa), k
        log = st.fills[0, : st.fill_n[0]]  # the fill log: this step's fills, times inside the step
        assert [log[log[:, 1] == s, 3].sum() for s in (0, 1)] == [fb, fa]
        assert np.all((log[:, 0] >= t0) & (log[:, 0] < st.now[0])) and np.all(log[:, 4] <= 2)
        st.fill_n[0] = 0
        assert st.book.inventory[0] == ref.q and st.book.cash_ticks[0] == ref.cash, k
        assert st.cursor[0] == ref.c
        total += fb + fa
    assert total > 0  # the comparison saw fills


def test_window_is_the_recorded_book_through_recentres():
    """A 64-level window on the spot excerpt (0.01 tick): it re-centres as the mid moves, restoring
    levels from the index; at every step it equals the recorded book, whatever our orders do."""
    cfg = _spot_config(n_levels=64, recentre_margin=8, start_mode="sequential")
    m = BatchMarket(cfg, 2, raw_depths=True)
    m.seed_rows([0, 1])
    m.reset()
    st = m.state
    rec = recording(cfg.replay.path)
    refs = [RefReplay(rec, int(st.cursor[i]), int(st.now[i]), 1, 10) for i in range(2)]
    lowers = set()
    for k in range(cfg.market.n_steps - 1):
        m.step(np.array([[0.02, 0.02], [0.05, 0.01]]))
        for i in range(2):
            refs[i].step(*([0.02, 0.02], [0.05, 0.01])[i], 0.01, 10**9)
            assert refs[i].window_equals(st.book.bg[i], int(st.book.lower_tick[i])), (k, i)
            assert tuple(st.book.best[i]) == tuple(refs[i].last_best)
            lowers.add(int(st.book.lower_tick[i]))
    assert len(lowers) > 2  # the window moved


def test_episode_windows_and_common_random_numbers():
    sc = get(ID)
    cfg = _config()
    m = BatchMarket(cfg, 3)
    tape = m.state.tape
    W = tape.win_ev.size
    assert W == 4  # 47 s excerpt, book two-sided from ~1 s, 30-s windows 5 s apart
    m.seed_rows([7, 7, 8])
    m.reset()
    assert m.state.cursor[0] == m.state.cursor[1]  # same seed, same window
    assert set(m.state.now.tolist()) <= set(tape.win_t.tolist())
    seq = BatchMarket(_config(start_mode="sequential"), 2)
    seq.seed_rows([0, 1])
    seen = []
    for _ in range(2):
        seq.reset()
        seen += seq.state.now.tolist()
    assert sorted(seen) == sorted(tape.win_t.tolist())
    # the recording's events per step do not depend on what we do, nor on the latency
    ev = []
    for lat, jit, depth in ((0.0, 0.0, 0.1), (0.4, 0.0, 0.0), (0.0, 0.0, 0.5), (0.2, 0.3, 0.1)):
        mk = BatchMarket(_config(entry_latency=lat, entry_latency_jitter=jit, start_mode="sequential"), 1,
                         raw_depths=True)
        mk.seed_rows([0])
        mk.reset()
        ev.append([mk.step(np.array([[depth, depth]])).aux[0, list(mk.aux_names).index("events")]
                   for _ in range(10)])
    assert ev[0] == ev[1] == ev[2] == ev[3] and sum(ev[0]) > 1000
    assert sc.default_baselines == ("as", "symmetric", "glft")


def test_power_queue_model_fills_at_least_as_often():
    """hftbacktest's power model puts part of every cancel ahead of us: over the same windows our
    quotes fill at least as often as under the pessimistic model."""
    fills = {}
    for model in ("pessimistic", "power"):
        m = BatchMarket(_config(queue_model=model, start_mode="sequential"), 4, raw_depths=True)
        m.seed_rows([0, 1, 2, 3])
        m.reset()
        n = 0
        for _ in range(29):
            aux = m.step(np.tile([0.1, 0.1], (4, 1))).aux
            n += aux[:, list(m.aux_names).index("fill_bid")].sum() + aux[:, list(m.aux_names).index("fill_ask")].sum()
        fills[model] = n
    assert fills["power"] >= fills["pessimistic"] > 0


@pytest.mark.parametrize("patch, key", [
    ({"market": {"tick_size": 0.01}}, "market.tick_size"),
    ({"replay": {"path": "nope.gz"}}, "replay.path"),
    ({"replay": {"start": 40.0}}, "replay.start"),
    ({"replay": {"entry_latency": 1.0}}, "replay.entry_latency"),
    ({"replay": {"end": 20.0}}, "replay.end"),
])
def test_bad_config_is_one_line_naming_the_key(patch, key):
    import gymnasium as gym

    import mmgym

    with pytest.raises(ConfigError) as err:
        gym.make(ID, **patch)
    msg = str(err.value)
    assert key in msg and "\n" not in msg


def test_evaluate_cli_on_replay_with_an_agent_trained_on_the_book(tmp_path):
    """evaluate.py on the replay with as, glft and a PPO model trained (briefly) on the simulated
    book: the book's observation and action spaces are the replay's, so it runs unchanged."""
    import json

    import gymnasium as gym
    from mmgym.agents.cli_evaluate import main
    from stable_baselines3 import PPO

    lob = gym.make("mmgym/LOBMarketMaking-v0", horizon=20.0)
    assert lob.observation_space == gym.make(ID).observation_space
    assert lob.action_space == gym.make(ID).action_space
    model = PPO("MlpPolicy", lob, n_steps=40, batch_size=40, n_epochs=1, device="cpu", seed=0).learn(40)
    model.save(tmp_path / "book.zip")
    root = Path(__file__).resolve().parents[1]
    rc = main([str(root / "configs" / "replay.yaml"), "--agents", "as", "glft", f"ppo={tmp_path / 'book.zip'}",
               "--episodes", "4", "--seed", "0", "--no-plots", "--out", str(tmp_path / "r")])
    assert rc in (0, None)
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert "ppo" in json.dumps(res)


def test_vector_env_equals_single_envs():
    """Env i of gym.make_vec reset with seed s equals gym.make reset with seed s + i across an
    autoreset (the next window is drawn from the env's own stream). (PPO on the id:
    tests/test_compat.py::test_sb3_ppo_from_an_env_id.)"""
    import gymnasium as gym

    import mmgym

    n = 3
    venv = gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", horizon=10.0)
    singles = [gym.make(ID, horizon=10.0) for _ in range(n)]
    vobs, _ = venv.reset(seed=4)
    sobs = [e.reset(seed=4 + i)[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(vobs, np.array(sobs))
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(25):
        acts = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        vobs, vr, vterm, _, vinfo = venv.step(acts)
        for i, e in enumerate(singles):
            o, r, term, _, info = e.step(acts[i])
            assert r == vr[i] and term == vterm[i] and info["pnl"] == vinfo["pnl"][i]
            if term:
                finished += 1
                o, _ = e.reset()
            np.testing.assert_array_equal(o, vobs[i])
    assert finished == 2 * n


def test_converted_file_replays_like_the_raw_capture(tmp_path):
    """replay.path takes the raw .gz or its `python -m mmgym.data convert` file: same episodes."""
    from mmgym.data import convert, save
    from mmgym.scenarios.replay import EXCERPT

    npz = tmp_path / "excerpt.npz"
    save(convert(EXCERPT), str(npz))
    outs = []
    for path in (EXCERPT, str(npz)):
        m = BatchMarket(_config(path=path), 2, raw_depths=True)
        m.seed_rows([3, 4])
        obs = [m.reset().copy()]
        for _ in range(12):
            out = m.step(np.array([[0.1, 0.2], [0.3, 0.1]]))
            obs += [out.obs.copy(), out.reward[:, None].copy()]
        outs.append(np.concatenate(obs, axis=1))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_observation_stays_in_its_space_when_the_recorded_spread_gaps(tmp_path):
    """A hand-made capture whose asks vanish for 2 s (spread 100 ticks > the 32-level window):
    the spread feature is capped at the window, the observation stays inside its Box."""
    import gzip
    import json

    lines, u = [], 1
    for k in range(400):  # 40 s, one diff every 100 ms, tick 0.1 around 100.0
        t = 10**18 + k * 100_000_000
        gap = 200 <= k < 220
        bids = [[f"{100 - 0.1 * (d + 1):.1f}", "5"] for d in range(5)]
        asks = ([[f"{100 + 0.1 * d:.1f}", "0"] for d in range(5)] + [["110.0", "3"]] if gap
                else [[f"{100 + 0.1 * d:.1f}", "5"] for d in range(5)])
        d = {"e": "depthUpdate", "E": 1, "T": 1, "U": u, "u": u, "pu": u - 1, "b": bids, "a": asks}
        lines.append(f"{t} " + json.dumps({"stream": "x@depth@0ms", "data": d}))
        u += 1
        if k % 3 == 0:
            tr = {"e": "trade", "E": 1, "T": k, "p": "100.0" if not gap else "110.0", "q": "2", "X": "MARKET", "m": False}
            lines.append(f"{t + 1} " + json.dumps({"stream": "x@trade", "data": tr}))
    path = tmp_path / "gap.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    import gymnasium as gym

    env = gym.make(ID, replay={"path": str(path), "n_levels": 32, "recentre_margin": 8, "start_mode": "sequential"},
                   market={"tick_size": 0.1, "horizon": 35.0})
    obs, _ = env.reset(seed=0)
    spreads = []
    for _ in range(34):
        obs, *_ = env.step(np.zeros(2, np.float32))
        assert env.observation_space.contains(obs), obs
        spreads.append(obs[6])
    assert max(spreads) == 32.0 and min(spreads) == 1.0
