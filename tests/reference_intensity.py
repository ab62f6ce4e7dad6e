"""A slow, obviously-correct plain-Python step of the intensity market, for checking the kernel.

It re-implements the step rules of ``mmgym/scenarios/intensity.py`` line by line in scalar Python, with
its own xoroshiro128+ and ziggurat normal and exponential written with Python integers, and a dict per env as
state. Nothing here is shared with the kernel except the config and the ziggurat tables (data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mmgym.config import EnvConfig
from mmgym.sim.rng import ZIG_FE, ZIG_FN, ZIG_KE, ZIG_KN, ZIG_WE, ZIG_WN

MASK = (1 << 64) - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


@dataclass
class RefRng:
    """xoroshiro128+ with Python ints; same algorithm as mmgym.sim.rng."""

    s0: int
    s1: int

    def next_u64(self) -> int:
        s0, s1 = self.s0, self.s1
        result = (s0 + s1) & MASK
        s1 ^= s0
        self.s0 = _rotl(s0, 24) ^ s1 ^ ((s1 << 16) & MASK)
        self.s1 = _rotl(s1, 37)
        return result

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * 2.0**-53

    def normal(self) -> float:
        """Ziggurat RNOR of Marsaglia & Tsang (2000), index and value from different bits."""
        r = 3.442619855899
        while True:
            bits = self.next_u64()
            hz = (bits >> 32) - 2**31
            iz = (bits >> 8) & 127
            if abs(hz) < ZIG_KN[iz]:
                return hz * ZIG_WN[iz]
            if iz == 0:
                while True:
                    x = -math.log(1.0 - self.uniform()) / r
                    y = -math.log(1.0 - self.uniform())
                    if y + y >= x * x:
                        break
                return r + x if hz > 0 else -r - x
            x = hz * ZIG_WN[iz]
            if ZIG_FN[iz] + self.uniform() * (ZIG_FN[iz - 1] - ZIG_FN[iz]) < math.exp(-0.5 * x * x):
                return x

    def exponential(self) -> float:
        """Ziggurat REXP of Marsaglia & Tsang (2000)."""
        while True:
            bits = self.next_u64()
            jz = bits >> 32
            iz = (bits >> 8) & 255
            if jz < ZIG_KE[iz]:
                return jz * ZIG_WE[iz]
            if iz == 0:
                return 7.697117470131487 - math.log(1.0 - self.uniform())
            x = jz * ZIG_WE[iz]
            if ZIG_FE[iz] + self.uniform() * (ZIG_FE[iz - 1] - ZIG_FE[iz]) < math.exp(-x):
                return x


@dataclass
class RefState:
    mid: float
    cash: float
    q: int
    step: int
    vol_var: float
    mid_ret: float
    fills: tuple[int, int]
    wealth0: float
    rng: RefRng
    ep_return: float = 0.0
    extra: dict = field(default_factory=dict)


def ref_reset(cfg: EnvConfig, rng: RefRng) -> RefState:
    m = cfg.market
    return RefState(mid=m.s0, cash=0.0, q=m.q0, step=0, vol_var=m.sigma**2 * m.dt, mid_ret=0.0,
                    fills=(0, 0), wealth0=m.q0 * m.s0, rng=rng)


def ref_obs(cfg: EnvConfig, st: RefState) -> list[float]:
    m = cfg.market
    n = m.n_steps
    if m.sigma > 0:
        vol = min(10.0, math.sqrt(st.vol_var / m.dt) / m.sigma)
        ret = max(-10.0, min(10.0, st.mid_ret / (m.sigma * math.sqrt(m.dt))))
    else:
        vol = ret = 0.0
    return [st.q / m.max_inventory, (n - st.step) / n, vol, float(st.fills[0]), float(st.fills[1]), ret]


def ref_step(cfg: EnvConfig, st: RefState, action: list[float], raw: bool = False,
             mid_move=None, dynamics: dict | None = None) -> dict:
    """One step; mutates ``st``; returns reward, terms, quotes and whether the episode ended.

    ``mid_move(s, z)``, when given, replaces the Brownian move ``sigma sqrt(dt) z`` of the mid
    from ``s`` with the standard variate ``z`` (or the +-1 of binomial noise); the jump on fill
    (``market.adverse_jump``) is added after it either way. ``dynamics``, when given, holds the
    ``sigma``, ``A``, ``k`` (both sides) and ``xi`` the fills and the mid move use this step (a
    regime's); the quote rule keeps the config's.
    """
    m, r, a, im = cfg.market, cfg.reward, cfg.action, cfg.impact
    a_bid, a_ask, k_bid, k_ask = m.side_params()
    sigma_dyn, xi = m.sigma, m.adverse_jump
    fa_bid, fa_ask, fk_bid, fk_ask = a_bid, a_ask, k_bid, k_ask
    if dynamics is not None:
        sigma_dyn, xi = dynamics["sigma"], dynamics["xi"]
        fa_bid = fa_ask = dynamics["A"]
        fk_bid = fk_ask = dynamics["k"]
    clip = (lambda x: x) if raw else (lambda x: max(-1.0, min(1.0, x)))
    s, q = st.mid, st.q
    w_before = st.cash + q * s
    # 0. hedge
    v, impact, taker = 0, 0.0, 0.0
    if a.hedge:
        x = action[-1] if raw else clip(action[-1]) * a.hedge_max_lots
        v = int(round(x))  # half to even, like np.rint
        v = max(-m.max_inventory - q, min(m.max_inventory - q, v))
        if v:
            impact = abs(v) * (im.half_spread + im.eta * abs(v))
            taker = r.taker_fee * abs(v)
            st.cash -= v * s + impact + taker
            q += v
            s += im.nu * v
    # 1. quotes
    tau = (m.n_steps - st.step) * m.dt
    if raw:
        d_bid, d_ask = action[0], action[1]
    elif a.mode == "as_hybrid":
        lg0, lg1 = math.log(a.gamma_min), math.log(a.gamma_max)
        gamma = math.exp(lg0 + (clip(action[0]) + 1) / 2 * (lg1 - lg0))
        skew = clip(action[1]) * a.skew_max
        r_px = s - q * gamma * m.sigma**2 * tau + skew  # AS 2008 reservation price + skew
        half = 0.5 * gamma * m.sigma**2 * tau
        d_bid = s - (r_px - half - math.log(1 + gamma / k_bid) / gamma)
        d_ask = (r_px + half + math.log(1 + gamma / k_ask) / gamma) - s
        if a.spread:  # the extra half-spread column, on both sides
            c = a.spread_min + (clip(action[2]) + 1) / 2 * (a.spread_max - a.spread_min)
            d_bid += c
            d_ask += c
    else:
        lo, hi = a.offset_min, a.offset_max
        d_bid = lo + (clip(action[0]) + 1) / 2 * (hi - lo)
        d_ask = lo + (clip(action[1]) + 1) / 2 * (hi - lo)
    bid, ask = s - d_bid, s + d_ask
    if m.tick_size > 0:
        bid = math.floor(bid / m.tick_size + 1e-9) * m.tick_size
        ask = math.ceil(ask / m.tick_size - 1e-9) * m.tick_size
        d_bid, d_ask = s - bid, ask - s
    # 2./3. fills
    # a side fills with probability p(d) = min(1, A e^{-kd} dt) (linear) or 1 - exp(-A e^{-kd} dt):
    # with E ~ Exp(1), P(E > -ln p) = p and P(E < x) = 1 - e^{-x}
    e_b, e_a = st.rng.exponential(), st.rng.exponential()

    def fills(e, A, k, d):
        lam_dt = A * math.exp(-k * d) * m.dt
        if m.fill_rule == "poisson":
            return e < lam_dt
        return lam_dt >= 1.0 or e > -math.log(lam_dt)

    fb = bool(q + 1 <= m.max_inventory and fills(e_b, fa_bid, fk_bid, d_bid))
    fa = bool(q - 1 >= -m.max_inventory and fills(e_a, fa_ask, fk_ask, d_ask))
    # 4. cash, inventory, mid
    if fb:
        st.cash -= bid
        q += 1
    if fa:
        st.cash += ask
        q -= 1
    maker = r.maker_fee * (int(fb) + int(fa))
    st.cash -= maker
    z = (1 if st.rng.uniform() < 0.5 else -1) if m.mid_noise == "binomial" else st.rng.normal()
    ds = sigma_dyn * math.sqrt(m.dt) * z if mid_move is None else mid_move(s, z)
    # adverse selection (GLFT 2013 sec. 5): our bid filled -> the mid drops by xi, our ask -> rises
    if fb:
        ds -= xi
    if fa:
        ds += xi
    s_new = s + ds
    # 5. reward
    dw = st.cash + q * s_new - w_before
    last = st.step + 1 >= m.n_steps
    terms = {
        "pnl": dw + impact + maker + taker,
        "impact": -impact,
        "fees": -(maker + taker),
        # the step's penalty time: dt, or Var_t(dS)/sigma^2 given by the caller (risk_penalty: variance)
        "inventory_penalty": -r.inventory_penalty * q * q * (dynamics or {}).get("pen_dt", m.dt),
        "terminal_penalty": -r.terminal_penalty * q * q if last else 0.0,
        "dampening": -max(0.0, r.dampening * q * ds) if r.dampening > 0 else 0.0,
        "utility": 0.0,
    }
    if r.objective == "cara":
        terms["utility"] = -dw
        if last:
            total = st.cash + q * s_new - st.wealth0
            terms["utility"] += (1 - math.exp(min(700.0, -r.cara_gamma * total))) / r.cara_gamma
    reward = sum(terms.values())
    decay = 1 - 0.5 ** (1 / cfg.observation.vol_halflife)
    st.mid, st.q, st.step, st.mid_ret = s_new, q, st.step + 1, ds
    st.vol_var += decay * (ds * ds - st.vol_var)
    st.fills = (int(fb), int(fa))
    st.ep_return += reward
    out = {"reward": reward, "terms": terms, "done": last, "bid": bid, "ask": ask, "hedge": v,
           "wealth": st.cash + q * s_new, "final_obs": ref_obs(cfg, st)}
    if last:
        new = ref_reset(cfg, st.rng)
        st.__dict__.update({k: getattr(new, k) for k in ("mid", "cash", "q", "step", "vol_var",
                                                           "mid_ret", "fills", "wealth0")})
        st.ep_return = 0.0
    out["obs"] = ref_obs(cfg, st)
    return out
