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


def _tox_columns(rec4):
    """Observation columns 11-13 of a toxicity record (mmgym.scenarios.lob.snapshot's caps)."""
    from mmgym.scenarios.lob import MO_LEVELS_CAP, MO_SIZE_CAP

    s, m, r, lv = rec4
    return np.array([min(1.0, max(-1.0, s / m)) if m > 0 else 0.0, min(MO_SIZE_CAP, r),
                     min(1.0, lv / MO_LEVELS_CAP)], np.float32)


@pytest.mark.parametrize("spot, delay, latency, halflife", [(False, 0, 0.0, 10.0), (False, 2, 0.3, 4.0),
                                                           (True, 0, 0.0, 10.0), (True, 1, 0.0, 25.0)])
def test_toxicity_columns_match_the_slow_reference(spot, delay, latency, halflife):
    """Observation columns 11-13 (mo_flow, mo_size, mo_levels) at every step of every window equal
    a slow replay of the recorded trades (tests/replay_reference.market_orders: grouped into market
    orders, depth from a dict book) folded into the book's toxicity record, ``delay`` steps old;
    on the spot excerpt with a 64-level window, so sweeps reach levels outside it."""
    from .replay_reference import market_orders, toxicity_record

    kw = {"obs_delay_steps": delay, "entry_latency": latency, "toxicity_halflife": halflife,
          "start_mode": "sequential", "quote_lots": 2}
    cfg = _spot_config(n_levels=64, recentre_margin=8, **kw) if spot else _config(**kw)
    W = int(BatchMarket(cfg, 1).state.tape.win_ev.size)
    m = BatchMarket(cfg, W, raw_depths=True)
    m.seed_rows(list(range(W)))
    obs = m.reset()
    st = m.state
    rec = recording(cfg.replay.path)
    first = st.cursor.copy()
    seen = {"orders": 0, "multi_level": 0, "cut": 0}
    for i in range(W):
        np.testing.assert_array_equal(obs[i, 11:14], 0.0)  # an empty record at the window's start
    records = [[toxicity_record([], halflife)] for _ in range(W)]
    for k in range(cfg.market.n_steps - 1):
        out = m.step(np.tile([[0.1 * (k % 3), 0.1]], (W, 1)))
        for i in range(W):
            orders = market_orders(rec, int(first[i]), int(st.cursor[i]))
            records[i].append(toxicity_record(orders, halflife))
            want = _tox_columns(records[i][max(0, k + 1 - delay)])
            np.testing.assert_allclose(out.obs[i, 11:14], want, rtol=1e-6, atol=1e-7, err_msg=f"{k} {i}")
            s, a = st.flow[i, 1], st.flow[i, 2]  # TOX_SIGNED, TOX_ABS: |signed EWMA| <= abs EWMA
            assert abs(s) <= a * (1 + 1e-12)
            c = int(st.cursor[i])
            if orders and rec.kind[c - 1] == 5 and rec.kind[c] == 5 and rec.exch_ns[c] == rec.exch_ns[c - 1]:
                seen["cut"] += 1  # a step boundary inside a run of same-time trades
        if k == cfg.market.n_steps - 2:
            for i in range(W):
                orders = market_orders(rec, int(first[i]), int(st.cursor[i]))
                seen["orders"] += len(orders)
                seen["multi_level"] += sum(o["first"] != o["last"] for o in orders)
    assert seen["orders"] > 100 and seen["multi_level"] > 5  # the comparison saw walks


def test_toxicity_invariants_through_random_steps():
    """|TOX_SIGNED| <= TOX_ABS, relative size >= 0 and levels >= 1 once a market order traded,
    on random windows with random quotes and latency jitter (the quotes never change the record)."""
    cfg = _config(entry_latency=0.1, entry_latency_jitter=0.2)
    m = BatchMarket(cfg, 4, raw_depths=True)
    m.seed_rows([11, 12, 13, 14])
    m.reset()
    rng = np.random.default_rng(5)
    for _ in range(3 * cfg.market.n_steps):
        m.step(rng.uniform(0.0, 0.5, (4, 2)))
        fs = m.state.flow
        assert np.all(np.abs(fs[:, 1]) <= fs[:, 2] * (1 + 1e-12))
        assert np.all(fs[:, 3] >= 0.0) and np.all((fs[:, 4] == 0.0) | (fs[:, 4] >= 1.0))


def test_toxicity_of_market_orders_cut_by_step_boundaries(tmp_path):
    """A hand-made capture whose market orders' trades (same exchange time ``T``, same side) are
    received over 90 ms, so step boundaries fall inside them; some hit an empty level (depth 0:
    the last relative size stays) or walk out of the 32-level window (the level index). Columns
    11-13 equal the slow reference at every step."""
    import gzip
    import json

    from .replay_reference import market_orders, toxicity_record

    lines, u = [], 1
    rng = np.random.default_rng(3)
    for k in range(400):  # 40 s, one diff every 100 ms, tick 0.1 around 100.0, 60 levels a side
        t = 10**18 + k * 100_000_000
        bids = [[f"{100 - 0.1 * (d + 1):.1f}", str(int(rng.integers(1, 9)))] for d in range(60)]
        asks = [[f"{100 + 0.1 * d:.1f}", str(int(rng.integers(1, 9)))] for d in range(60)]
        d = {"e": "depthUpdate", "E": 1, "T": 1, "U": u, "u": u, "pu": u - 1, "b": bids, "a": asks}
        lines.append(f"{t} " + json.dumps({"stream": "x@depth@0ms", "data": d}))
        u += 1
        if k % 7 == 3:  # a market order: 1-4 trades walking away from the touch (or an empty tick)
            buy = bool(rng.integers(2))
            n = int(rng.integers(1, 5))
            start = 0 if k % 5 else 55 if k % 2 else -1  # far out (out of the window) or at an empty tick
            for j in range(n):
                px = 100 + 0.1 * (start + 2 * j) if buy else 100 - 0.1 * (start + 2 * j + 1)
                tr = {"e": "trade", "E": 1, "T": k, "p": f"{px:.1f}", "q": str(int(rng.integers(1, 6))),
                      "X": "MARKET", "m": not buy}
                lines.append(f"{t + 1 + j * 30_000_000} " + json.dumps({"stream": "x@trade", "data": tr}))
    path = tmp_path / "mo.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(sorted(lines, key=lambda s: int(s.split(" ", 1)[0]))) + "\n")
    cfg = _config(path=str(path), n_levels=32, recentre_margin=8, start_mode="sequential", stride=3.0,
                  start=0.05)  # step boundaries 50 ms into each 100 ms: inside the runs of trades
    data = cfg.model_dump()
    data["market"].update(tick_size=0.1, horizon=20.0, dt=0.1)
    cfg = type(cfg).model_validate(data)
    m = BatchMarket(cfg, 3, raw_depths=True)
    m.seed_rows([0, 1, 2])
    m.reset()
    st = m.state
    rec = recording(str(path))
    first = st.cursor.copy()
    cut = depth0 = far = 0
    for k in range(cfg.market.n_steps - 1):
        out = m.step(np.full((3, 2), 0.1))
        for i in range(3):
            orders = market_orders(rec, int(first[i]), int(st.cursor[i]))
            want = _tox_columns(toxicity_record(orders, cfg.replay.toxicity_halflife))
            np.testing.assert_allclose(out.obs[i, 11:14], want, rtol=1e-6, atol=1e-7, err_msg=f"{k} {i}")
            c = int(st.cursor[i])
            cut += bool(rec.kind[c - 1] == 5 and rec.kind[c] == 5 and rec.exch_ns[c] == rec.exch_ns[c - 1])
            depth0 += bool(orders) and orders[-1]["depth"] == 0
            far += bool(orders) and orders[-1]["depth"] > 0 and abs(orders[-1]["first"] - st.book.best[i, 0]) > 16
    assert cut > 5 and depth0 > 5 and far > 5
