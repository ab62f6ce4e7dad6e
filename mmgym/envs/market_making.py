"""``mmgym/MarketMaking-v0``: market making in the intensity market."""

from __future__ import annotations

from .base import BatchMarketEnv, BatchMarketVectorEnv
from .batch import IntensityMarket


def _make_intensity(config, num_envs):
    return IntensityMarket(config, num_envs)


class MarketMakingEnv(BatchMarketEnv):
    r"""Market making in the intensity market of Avellaneda & Stoikov (2008) and Cartea, Jaimungal
    & Penalva (2015, ch. 10).

    ## Description

    The agent quotes a bid and an ask around a mid price that follows an arithmetic Brownian
    motion. Each side fills at most one lot per step with a probability that decays exponentially
    in the quote's depth, ``p = min(1, A e^{-k delta} dt)`` (the AS 2008 simulation rule,
    ``market.fill_rule: linear``) or ``1 - exp(-A e^{-k delta} dt)`` (``poisson``). The agent is
    paid the change in marked-to-market wealth, minus a running inventory penalty and a terminal
    penalty. One step, of length ``dt``, in order:

    0. (hedge dimension only) a market order of v lots executes at mid +- (h + eta|v|) and moves
       the mid by nu v (Almgren & Chriss 2000, linear temporary and permanent impact);
    1. quotes bid = mid - delta_b, ask = mid + delta_a from the state at the start of the step,
       rounded away from the mid to ``market.tick_size`` if it is positive;
    2. each side fills independently, one lot at most;
    3. a side whose fill would take |q| above ``market.max_inventory`` does not quote;
    4. cash and inventory change at the quoted prices, then mid += sigma sqrt(dt) Z
       (Z ~ N(0,1), or +-1 w.p. 1/2 with ``market.mid_noise: binomial``);
    5. reward (below), with q after the step's fills.

    ## Action Space

    ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``), rescaled inside the env:

    - ``action.mode: as_hybrid`` (default, the glass box): ``a[0]`` picks the risk aversion
      gamma = exp(ln gamma_min + (a[0]+1)/2 (ln gamma_max - ln gamma_min)); ``a[1]`` a skew
      ``a[1] * skew_max``. Quotes follow AS 2008 eqs. (29)-(30): reservation price
      r = mid - q gamma sigma^2 (T-t) + skew, total spread gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k).
      The chosen gamma and skew are in ``info["gamma"]``, ``info["skew"]``.
    - ``action.mode: offsets``: ``delta = offset_min + (a+1)/2 (offset_max - offset_min)`` per side
      (negative depths cross the mid).
    - hedge (last dimension): a market order of round(a * hedge_max_lots) lots, positive buys,
      clipped to the inventory bound.

    ## Observation Space

    ``Box(float32, (6,))``; later scenarios append features after these and keep this layout.

    | Num | Observation                 | Normalisation                          | Range      |
    |-----|-----------------------------|----------------------------------------|------------|
    | 0   | inventory q                 | q / max_inventory                      | [-1, 1]    |
    | 1   | time remaining              | (T - t) / T                            | [0, 1]     |
    | 2   | realised volatility         | EWMA std of mid changes / (sigma sqrt(dt)), half-life ``observation.vol_halflife``, clipped | [0, 10] |
    | 3   | last step's bid fill        | 0 or 1                                 | {0, 1}     |
    | 4   | last step's ask fill        | 0 or 1                                 | {0, 1}     |
    | 5   | last mid change             | dS / (sigma sqrt(dt)), clipped         | [-10, 10]  |

    ## Rewards

    The reward is ``d(cash + q mid) - phi q^2 dt - [last step] alpha q_T^2 - dampening``; every
    term is in ``info`` and the terms sum to the reward:

    - ``pnl``: wealth change before market-order costs and fees (spread capture + revaluation).
    - ``impact``: ``-|v| (h + eta |v|)``, market orders against the pre-trade mid
      (``impact.half_spread``, ``impact.eta``).
    - ``fees``: ``-(maker_fee * fills + taker_fee * |v|)`` (``reward.maker_fee``, ``reward.taker_fee``).
    - ``inventory_penalty``: ``-phi q^2 dt`` (``reward.inventory_penalty``; CJP 2015 eq. 10.2).
    - ``terminal_penalty``: ``-alpha q_T^2`` on the last step (``reward.terminal_penalty``).
    - ``dampening``: ``-max(0, eta q dS)`` (``reward.dampening``; Spooner et al. 2018).
    - ``utility``: with ``reward.objective: cara``, the wealth increments are replaced by the
      terminal utility (1 - exp(-g W_T)) / g of the episode's wealth change (``reward.cara_gamma``;
      the exponent is capped at 700 so that the reward stays finite).

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, t = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps (the horizon is part of the problem: the
    terminal penalty applies and time remaining is observed). Never truncated.

    ## Arguments

    ``gym.make("mmgym/MarketMaking-v0", config=None, render_mode=None, **overrides)``: ``config`` is
    a YAML path, a mapping or an :class:`~mmgym.config.EnvConfig`; ``overrides`` are section mappings
    (``market={"sigma": 3}``) or flat keys of a section (``sigma=3``, ``inventory_penalty=0.2``).

    ## Version History

    - v0: initial version.
    """

    market_factory = staticmethod(_make_intensity)


class MarketMakingVectorEnv(BatchMarketVectorEnv):
    """``gym.make_vec("mmgym/MarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    N markets of :class:`MarketMakingEnv` stepped in one numba call, with SAME_STEP autoreset.
    Env i reset with seed s reproduces a single env reset with seed s + i.
    """

    market_factory = staticmethod(_make_intensity)
