"""mmgym.data: the Binance reader, the event format and the book pass, against slow references.

Runs on the excerpts shipped in tests/data/binance (cut from hftbacktest's example captures, MIT
licence beside them) and on hand-made lines for each kind of bad data.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmgym.data import EMPTY_ASK, EMPTY_BID, DataError, convert, load, save
from mmgym.data import binance as B
from mmgym.data.recording import book_pass

DATA = Path(__file__).parent / "data" / "binance"
USDM = DATA / "usdm_btcusdt_20240808_excerpt.gz"
SPOT = DATA / "spot_btcusdt_20240808_excerpt.gz"


def reference_counts(path):
    """Independent count of what a capture holds (plain json, no shared code). depth_levels: the
    level updates the book applies by Binance's procedure: every diff's, plus those of diffs received
    before a snapshot but newer than it (applied again after it), minus later diffs it supersedes."""
    depth_levels = trades = tickers = snaps = 0
    snap_id = None
    before = []
    with gzip.open(path, "rt") as f:
        for line in f:
            msg = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in msg:
                snaps += 1
                snap_id = msg["lastUpdateId"]
                depth_levels += sum(n for u, n in before if u > snap_id)
                continue
            d = msg["data"]
            if d.get("e") == "depthUpdate":
                if snap_id is not None and d["u"] <= snap_id:
                    continue
                depth_levels += len(d["b"]) + len(d["a"])
                if snap_id is None:
                    before.append((d["u"], len(d["b"]) + len(d["a"])))
            elif d.get("e") == "trade":
                trades += d.get("X", "MARKET") == "MARKET"
            elif msg["stream"].endswith("bookTicker"):
                tickers += 1
    return depth_levels, trades, tickers, snaps


def reference_touch(kind, side, px, qty, every=1):
    """Slow book: dicts per side, the touch after every ``every``-th event and the last (CLEAR
    empties both). Returns (event indices, best bids, best asks)."""
    book = ({}, {})
    at, bb, ba = [], [], []
    n = len(kind)
    for j, (k, s, p, q) in enumerate(zip(kind.tolist(), side.tolist(), px.tolist(), qty.tolist())):
        if k == B.CLEAR:
            book = ({}, {})
        elif k != B.TRADE:
            if q > 0:
                book[s][p] = q
            else:
                book[s].pop(p, None)
        if j % every == 0 or j == n - 1:
            at.append(j)
            bb.append(max(book[0]) if book[0] else EMPTY_BID)
            ba.append(min(book[1]) if book[1] else EMPTY_ASK)
    return np.array(at), np.array(bb), np.array(ba)


@pytest.fixture(scope="module")
def usdm():
    return convert(str(USDM))


def test_futures_excerpt_counts_and_touch(usdm):
    r = usdm
    rep = r.report
    depth_levels, trades, tickers, snaps = reference_counts(USDM)
    assert snaps == rep["snapshots"] == 1 and tickers == rep["ticker_messages"]
    assert int((r.kind == B.TRADE).sum()) == trades == rep["trade_messages"]
    # every level update is a DEPTH event or counted outside the price window
    assert int((r.kind == B.DEPTH).sum()) + rep["outside_roi_depth"] == depth_levels
    assert rep["reapplied_diffs"] >= 1 and int((r.kind == B.CLEAR).sum()) == 1
    assert rep.get("seq_gaps", 0) == 0 and rep.get("bad_lines", 0) == 0
    assert rep.get("unknown_messages", 0) == 0
    # the numba pass's touch equals a dict book's (after every 7th event: the dict's max is slow);
    # never crossed
    at, bb, ba = reference_touch(r.kind, r.side, r.px, r.qty, every=7)
    assert np.array_equal(bb, r.best_bid[at]) and np.array_equal(ba, r.best_ask[at])
    two = r.two_sided()
    assert two[-1] and np.all(r.best_bid[two] < r.best_ask[two])
    assert np.all(np.diff(r.t_ns) >= 0)
    assert r.tick_size == 0.1 and r.lot_size == 0.001 and r.meta["market"] == "usdm"
    # the +-50 ms ticker agreement, checked by brute force on every 25th ticker
    hits, n = 0, 0
    for m in range(0, r.tk_t_ns.size, 25):
        t = r.tk_t_ns[m]
        near = np.flatnonzero(np.abs(r.t_ns - t) <= 50_000_000)
        before = np.flatnonzero(r.t_ns < t - 50_000_000)
        idx = np.concatenate([before[-1:], near])
        if idx.size == 0 or not two[idx[0]]:
            continue
        n += 1
        hits += bool(np.any((r.best_bid[idx] == r.tk_bid[m]) & (r.best_ask[idx] == r.tk_ask[m])))
    assert abs(hits / n - rep["ticker_touch_agree_50ms"]) < 0.05 and rep["ticker_touch_agree_50ms"] > 0.8


def test_spot_messages_without_T_or_pu():
    """Spot diffs and trades lack T/pu (hftbacktest's futures converter: KeyError 'T'): read fine."""
    r = convert(str(SPOT))
    depth_levels, trades, tickers, snaps = reference_counts(SPOT)
    assert r.meta["market"] == "spot" and r.report["futures_format"] == 0
    assert int((r.kind == B.TRADE).sum()) == trades > 100
    assert r.report.get("seq_gaps", 0) == 0 and r.report.get("bad_lines", 0) == 0
    at, bb, ba = reference_touch(r.kind, r.side, r.px, r.qty)
    assert np.array_equal(bb, r.best_bid[at]) and np.array_equal(ba, r.best_ask[at])
    # trade sides: m = buyer is maker -> seller aggressor
    with gzip.open(SPOT, "rt") as f:
        first = next(json.loads(x.split(" ", 1)[1])["data"] for x in f if "@trade" in x)
    t0 = np.flatnonzero(r.kind == B.TRADE)[0]
    assert r.side[t0] == (B.SELL if first["m"] else B.BUY)


def test_save_load_round_trip(usdm, tmp_path):
    out = tmp_path / "x.npz"
    save(usdm, str(out))
    r = load(str(out))
    for k in ("t_ns", "kind", "side", "px", "qty", "best_bid", "best_ask", "tk_bid"):
        assert np.array_equal(getattr(r, k), getattr(usdm, k)), k
    assert r.meta == json.loads(json.dumps(usdm.meta))


# ------------------------------------------------------------------------- bad data ---
def _depth(t, U, u, pu, bids, asks):
    d = {"e": "depthUpdate", "E": 1, "T": 1, "s": "X", "U": U, "u": u, "pu": pu, "b": bids, "a": asks}
    return f"{t} " + json.dumps({"stream": "x@depth@0ms", "data": d})


def _trade(t, p, q, m):
    d = {"e": "trade", "E": 1, "T": 1, "s": "X", "t": 1, "p": p, "q": q, "X": "MARKET", "m": m}
    return f"{t} " + json.dumps({"stream": "x@trade", "data": d})


GOOD = [_depth(100, 1, 2, 0, [["10.0", "1"], ["9.9", "2"]], [["10.1", "3"]]),
        _trade(110, "10.1", "1", False),
        _depth(120, 3, 4, 2, [], [["10.1", "2"]])]


def _write(tmp_path, lines):
    p = tmp_path / "cap.gz"
    with gzip.open(p, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return str(p)


def test_clean_hand_made_capture(tmp_path):
    r = convert(_write(tmp_path, GOOD))
    rep = r.report
    assert len(r) == 5 and rep.get("bad_lines", 0) == 0 and rep.get("seq_gaps", 0) == 0
    assert (r.best_bid[-1], r.best_ask[-1], r.qty[-1]) == (100, 101, 2)
    assert r.side[3] == B.BUY  # m false: the buyer took


@pytest.mark.parametrize("bad, counter", [
    ('130 {"stream":"x@depth@0ms","data":{"e":"depthUpdate","E":1,"U":5,"u":', "bad_lines"),  # truncated
    ("garbage", "bad_lines"),  # no timestamp
    ('130 {"stream":"x@trade","data":{"e":"trade","p":"1"}}', "bad_lines"),  # a field missing
    ('130 {"stream":"x@aggTrade","data":{"e":"aggTrade","p":"10.1"}}', "unknown_messages"),
    ('130 {"stream":"x@markPrice","data":{"e":"markPriceUpdate"}}', "unknown_messages"),
    (_depth(90, 5, 6, 4, [["9.8", "1"]], []), "ts_backwards"),  # earlier than the line before
    (_depth(130, 9, 10, 7, [["9.8", "1"]], []), "seq_gaps"),  # pu != previous u
    (_depth(130, 5, 6, 4, [["10.3", "1"]], []), "cross_fix_events"),  # a bid through the ask
])
def test_each_kind_of_bad_data_is_counted_and_handled(tmp_path, bad, counter):
    r = convert(_write(tmp_path, GOOD + [bad]))
    rep = r.report
    assert rep[counter] == 1
    if counter in ("bad_lines", "unknown_messages"):
        assert len(r) == 5 and r.meta["examples"][counter] == [4]  # the line is named
    if counter == "unknown_messages":
        assert sum(v for k, v in rep.items() if k.startswith("unknown:")) == 1
    if counter == "ts_backwards":
        assert rep["ts_backwards_max_ns"] == 30 and r.t_ns[-1] == 120 and np.all(np.diff(r.t_ns) >= 0)
    if counter == "cross_fix_events":
        # the stale ask at 10.1 (2 lots) is removed by an explicit event before the new bid
        fix = np.flatnonzero(r.kind == B.CROSS_FIX)
        assert fix.size == 1 and r.px[fix[0]] == 101 and rep["cross_fix_lots"] == 2
        assert r.best_bid[-1] == 103 and r.best_ask[-1] == EMPTY_ASK
        assert np.array_equal(r.best_bid, reference_touch(r.kind, r.side, r.px, r.qty)[1])


def test_book_pass_on_random_streams_matches_reference():
    """Random set/remove streams (crosses included) through the pass; its cleaned output, replayed
    by the dict book, gives the same touch and is never crossed."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = 300
        kind = np.where(rng.random(n) < 0.1, B.TRADE, B.DEPTH).astype(np.int8)
        side = rng.integers(0, 2, n).astype(np.int8)
        px = (100 + rng.integers(-8, 9, n) + np.where(side == 1, 2, -2)).astype(np.int64)
        qty = np.where(rng.random(n) < 0.3, 0, rng.integers(1, 5, n)).astype(np.int64)
        t = np.arange(n, dtype=np.int64)
        cols, in2out, stats = book_pass(kind, side, px, qty, t, t)
        _, bb, ba = reference_touch(cols["kind"], cols["side"], cols["px"], cols["qty"])
        assert np.array_equal(bb, cols["best_bid"]) and np.array_equal(ba, cols["best_ask"])
        two = (bb != EMPTY_BID) & (ba != EMPTY_ASK)
        assert np.all(bb[two] < ba[two])
        assert (cols["kind"] == B.CROSS_FIX).sum() == stats["cross_fix_events"]
        assert np.array_equal(cols["px"][in2out], px)


def test_truncated_gzip_is_counted(tmp_path):
    p = _write(tmp_path, GOOD * 50)
    data = Path(p).read_bytes()
    Path(p).write_bytes(data[: len(data) - 20])
    r = convert(p)
    assert r.report["bad_lines"] >= 1 and len(r) > 0


def test_cli_convert_and_bad_file(tmp_path, capsys):
    from mmgym.data.__main__ import main

    out = tmp_path / "o.npz"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run([sys.executable, "-m", "mmgym.data", "convert", str(SPOT), str(out)],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and out.exists() and "trade" in ok.stdout
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "junk.gz").write_bytes(b"hello\n")
    cases = [["info", "nope.gz"], ["info", str(tmp_path / "bad.npz")], ["info", str(tmp_path / "junk.gz")],
             ["convert", str(SPOT), str(tmp_path / "no" / "dir.npz")]]
    for args in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and args[-1].split("/")[-1] in err[0], err
    with pytest.raises(DataError):
        load(str(tmp_path / "missing.npz"))
