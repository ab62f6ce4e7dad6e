"""``mmgym/PortfolioMarketMaking-v0``: K correlated intensity markets quoted at once (issue 11).

Each asset ``a`` is an intensity market (:mod:`mmgym.scenarios.intensity`, the linear fill rule of
Avellaneda & Stoikov 2008 sec. 3) with its own ``A_a``, ``k_a`` and inventory bound ``Q_a``; the mids
move jointly, ``dS = L z sqrt(dt)``, ``z ~ N(0, I_K)``, ``L L^T = Sigma`` (Cholesky when Sigma is
positive definite, else the symmetric square root of its eigendecomposition), with Sigma given
directly (``portfolio.covariance``) or by a factor model (``portfolio.loadings`` B, K x F;
``portfolio.factor_covariance`` or ``portfolio.factor_vols``; ``portfolio.idio_vols``):
``Sigma = B Sigma_f B^T + diag(sigma_eps^2)`` (returns = B f + eps). This is the model of Bergault,
Evangelista, Guéant & Vieira (2021, "Closed-form approximations in multi-asset market making",
Applied Mathematical Finance 28(2), sec. 2): arithmetic Brownian mids with covariance Sigma,
exponential intensities per asset and side.

One step of length ``dt``, for each env:

0. **Limits** (``limits:``, none by default; :class:`LimitsConfig`): the limits in force this step
   are computed from the state before it, ``L_a s_a`` per asset and ``L_f min_{a: b_a != 0} s_a``
   for the exposure ``e = b_1^T q`` to the first factor, with ``s_a = min(1, sigma_ref_a /
   sigma_hat_a)`` under ``vol_scaling`` (``sigma_hat_a`` the EWMA realised volatility of the
   observation) and 1 otherwise. **Market orders**: the agent's (``action.hedge``,
   :func:`_agent_orders`), then ``on_breach: flatten``'s back inside the limits (:func:`_flatten`),
   one order per asset, traded at linear temporary costs (Almgren & Chriss 2000, reward term
   ``impact``), then every mid moves by the permanent cross-impact ``G v`` (:func:`_execute`).
   With ``portfolio.factor_instrument`` (an ETF / index future on the first factor, price ``w^T S``)
   the agent's order ``v_e`` in it trades first, at ``w^T S +- (h_e + eta_e |v_e|)``, and adds
   ``g_e v_e`` to the mids' permanent move; its position ``q_e`` counts as the exposure ``q_e w``
   (:class:`PortfolioMarketMakingEnv`, "Factor instrument").
1. **Quotes** per asset from the action (raw depths; ``action.mode: offsets``; or ``as_hybrid``, a
   risk aversion and a skew per asset quoted by AS 2008 eqs. (29)-(30) with ``Sigma_aa`` and ``k_a``;
   or ``portfolio_hybrid``, a risk multiplier per factor and a skew per asset quoted by begv's rule,
   :func:`_hybrid_terms`).
2. **Fills**, asset by asset (a = 0..K-1): each side fills one lot with ``p = min(1, A_a e^{-k_a
   delta} dt)``, independently of every other side and asset (two exponential variates per asset,
   bid then ask, :func:`mmgym.sim.processes.exponential_fills`); a side whose fill would take
   ``|q_a|`` above ``Q_a`` does not quote; with ``on_breach: suppress`` neither does a side whose
   fill would take ``|q_a|`` or ``|e|`` (counted fill by fill, in asset order) above its limit in
   force and further from 0 (the variates are drawn all the same). Cash and inventory change at the quoted prices (maker fee
   per lot).
3. **Mids**: K standard normals (ziggurat, after all fill variates), ``dS = L_dt z`` with
   ``L_dt = sqrt(dt) L``.
4. **Alerts** (after the fills and the mids): each limit in force is *breached* when ``|value| >
   limit`` and *near-breached* (``warn``) when ``warn_at limit <= |value| <= limit`` (values: q'_a,
   e' = b_1^T q'); flags per limit, counts per step and per episode (aux, statistics).
5. **Reward** (one number per env) by the ledger (:func:`mmgym.sim.ledger.record`)::

       r = sum_a [d cash_a + x'_a dS_a] - phi x'^T P x' dt - [last step] alpha x'^T P x'

   with ``x' = q' + q_e w`` the total exposure (``x' = q'`` without a factor instrument)

   (with ``on_breach: flatten`` the wealth change includes the market orders: their cost against
   the pre-trade mid, ``|v|(half_spread + eta |v|)`` per asset, is the term ``impact``, and the
   permanent impact ``nu v`` revalues the position like any mid move)
   (on the last step with market orders, ``- 1/2 q'^T G q'`` more: the final mark below)
   with ``q'`` the post-fill inventories, ``P = Sigma`` (``portfolio.penalty: portfolio``, the factor-
   aware penalty of issue 11, BEGV 2021 eq. (2) with ``gamma/2 = phi``) or ``P = diag(Sigma)``
   (``penalty: per_asset``, the naive sum ``sum_a phi q_a^2 sigma_a^2 dt``); ``phi`` =
   ``reward.inventory_penalty`` and ``alpha`` = ``reward.terminal_penalty``. The ledger is handed
   the "risk-equivalent inventory" ``q_eff = sqrt(q'^T P q')``, so its single-asset rule ``-phi q^2
   dt - alpha q^2`` is this penalty exactly; at K = 1 it is the intensity market's ``phi sigma^2
   q^2 dt``, i.e. this env's ``phi`` is the intensity market's divided by ``sigma^2``.

**The final mark** (only with market orders and a non-zero G; without them nothing changes). The
episode's last reward values the position at its *liquidation value under the env's own impact
model*: the mids minus the permanent-impact cost of liquidating ``q'``, ``1/2 q'^T G q'`` (reward
term ``impact``, added on the last step; with the factor instrument the position is ``y = (q', q_e)``
and the cost ``1/2 y^T G_J y`` with ``G_J = [[G, g_e], [w^T G, w^T g_e]]``, the impact of the K + 1
instruments' trades on their prices; ``= 1/2 x'^T G x'`` for the default ``g_e = G w`` and a
symmetric G). Almgren & Chriss (2000, "Optimal execution of portfolio
transactions", J. Risk 3(2), sec. 2) charge a linear permanent impact ``g`` the cost ``1/2 g X^2`` on
every liquidation path of X shares; with cross-impact, the straight-line path of the vector ``q'``
costs ``1/2 q'^T G q'`` (the quadratic form of G's symmetric part). Without it, the mark at the mids
paid a policy for moving them itself: with ``q`` long, a last-step buy of ``v`` revalues the
position by ``(q + v)^T G v`` and costs ``sum_a |v_a| (h + eta |v_a|)``; on configs/portfolio8.yaml
(h = 0.1, eta = 0.05, ``1^T G 1 = 0.373``) q = 5 and v = 1 in every asset earn 2.238 for a cost of
1.2. With the mark, the same buy nets ``1/2 q^T (G - G^T) v + 1/2 v^T G v - cost`` (-1.014 there):
for a symmetric G with ``lambda_max(G) <= 2 eta`` never positive (``tests/test_portfolio_factor.py``
runs the scripted exploit). A non-symmetric G admits round-trip arbitrage whatever the mark
(Schneider & Lillo 2019, "Cross-impact and no-dynamic-arbitrage", Quantitative Finance 19(1):
linear cross-impact must be symmetric); the env accepts it as configured.

The kernel is one ``@entry`` function over the batch: rows in an outer loop, assets in inner loops
over flat ``(N * K,)`` views of the per-asset arrays (:func:`mmgym.sim.ledger.flat_assets`); Python
runs once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field, model_validator

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import ActionConfig, EnvConfig, Section
from ..sim.columns import Columns
from ..sim.jit import entry, kernel
from ..sim.ledger import AUX, AUX_NOISE, OBS, STATS, Outcome, RewardConsts, finish, record
from ..sim.processes import almgren_chriss_hedge, exponential_fills
from ..sim.quotes import MODE_AS_HYBRID, MODE_DEPTHS, MODE_NAMES, MODE_OFFSETS, as_depths, first_bad_row
from ..sim.rng import zig_normal
from .base import Scenario
from .regimes import next_regime

ENV_ID = "mmgym/PortfolioMarketMaking-v0"
K_MAX = 64
#: this scenario's action modes: the shared ones (:mod:`mmgym.sim.quotes`) and its own glass box
MODE_PORTFOLIO_HYBRID = len(MODE_NAMES)
_MODES = (*MODE_NAMES, "portfolio_hybrid")

#: aux columns after the ledger's, per asset (``<name>_<a>``)
PER_ASSET_AUX = (
    ("depth_bid", "mid - bid of asset a at quote time (NaN when not quoting)"),
    ("depth_ask", "ask - mid of asset a at quote time (NaN when not quoting)"),
    ("fill_bid", "lots of asset a bought passively this step"),
    ("fill_ask", "lots of asset a sold passively this step"),
    ("quote_mid", "asset a's mid the quotes were computed from"),
    ("gamma", "as_hybrid: asset a's chosen risk aversion (NaN otherwise)"),
    ("skew", "as_hybrid and portfolio_hybrid: asset a's chosen skew (NaN otherwise)"),
    ("inventory", "asset a's inventory after the step (lots)"),
    ("limit", "asset a's position limit in force this step, L_a min(1, sigma_ref_a / sigma_hat_a) (inf without limits.position; not in info without limits)"),
    ("breach", "1 if |inventory of asset a| > its limit after the step"),
    ("warn", "1 if warn_at x limit <= |inventory of asset a| <= limit after the step (a near-breach)"),
    ("hedge", "limits.on_breach flatten: market order in asset a at the start of the step (signed lots)"),
)
N_PER_ASSET_AUX = len(PER_ASSET_AUX)
AUX_BASE = AUX.extend([
    ("portfolio_variance", "q'^T Sigma q' after the step's fills (price^2 per time unit)"),
    ("factor_exposure", "b_1^T q' after the step: net exposure to the first factor (limits.factor's quantity)"),
    ("limit_factor", "the factor limit in force this step, L_f min(1, min_a s_a) (inf without limits.factor; not in info without limits)"),
    ("breach_factor", "1 if |factor_exposure| > limit_factor after the step"),
    ("warn_factor", "1 if warn_at x limit_factor <= |factor_exposure| <= limit_factor after the step"),
    ("alerts_breach", "limits breached after the step (assets + factor)"),
    ("alerts_warn", "limits near-breached (warn_at) after the step (assets + factor)"),
    ("hedge_factor", "portfolio.factor_instrument: market order in the factor instrument at the start of the step (signed units)"),
    ("factor_mid", "portfolio.factor_instrument: its price w^T S before the step's market orders"),
    ("factor_position", "portfolio.factor_instrument: its position q_e after the step (units)"),
])
AUX_VARIANCE = AUX_BASE["portfolio_variance"]
AUX_FACTOR = AUX_BASE["factor_exposure"]
AUX_LIMIT_FACTOR = AUX_BASE["limit_factor"]
AUX_BREACH_FACTOR = AUX_BASE["breach_factor"]
AUX_WARN_FACTOR = AUX_BASE["warn_factor"]
AUX_ALERTS_BREACH = AUX_BASE["alerts_breach"]
AUX_ALERTS_WARN = AUX_BASE["alerts_warn"]
AUX_HEDGE_FACTOR = AUX_BASE["hedge_factor"]
AUX_FACTOR_MID = AUX_BASE["factor_mid"]
AUX_FACTOR_POS = AUX_BASE["factor_position"]
AUX_ASSET0 = len(AUX_BASE)
#: offsets inside an asset's aux block
_PA_NAMES = [n for n, _ in PER_ASSET_AUX]
PA_INVENTORY = _PA_NAMES.index("inventory")
PA_LIMIT = _PA_NAMES.index("limit")
PA_BREACH = _PA_NAMES.index("breach")
PA_WARN = _PA_NAMES.index("warn")
PA_HEDGE = _PA_NAMES.index("hedge")

#: episode statistics after the ledger's
STAT_COLUMNS = STATS.extend([
    ("alerts_breach", "limit breaches over the episode (sum over steps of the limits breached after the step)"),
    ("alerts_warn", "near-breaches over the episode (sum over steps of the limits at >= warn_at x limit, not breached)"),
    ("max_abs_factor_exposure", "largest |b_1^T q'| after a step"),
])
ST_ALERTS_BREACH = STAT_COLUMNS["alerts_breach"]
ST_ALERTS_WARN = STAT_COLUMNS["alerts_warn"]
ST_MAX_FACTOR = STAT_COLUMNS["max_abs_factor_exposure"]


def aux_columns(k: int, multipliers: tuple[str, ...] | list[str] = ()) -> Columns:
    """The aux columns of K assets: the ledger's (totals over assets: ``fill_bid``, ``fill_ask``),
    ``portfolio_variance``, then :data:`PER_ASSET_AUX` for asset 0, 1, ..., then with
    ``action.mode: portfolio_hybrid`` one ``risk_mult_<name>`` per multiplier (:func:`risk_components`)."""
    return AUX_BASE.extend([(f"{n}_{a}", d.replace("asset a", f"asset {a}"))
                            for a in range(k) for n, d in PER_ASSET_AUX]
                           + [(f"risk_mult_{n}", f"portfolio_hybrid: the chosen multiplier of the begv penalty's part {n}")
                              for n in multipliers])


#: per-asset observation features after asset 0's block (asset 0's are the ledger's six, in order)
PER_ASSET_OBS = ("inventory", "volatility", "fill_bid", "fill_ask", "mid_return")
N_PER_ASSET_OBS = len(PER_ASSET_OBS)


def obs_columns(k: int, factor: bool = False, regimes: int = -1) -> Columns:
    """The observation columns of K assets (table in :class:`PortfolioMarketMakingEnv`): the
    ledger's six features of asset 0 (so K = 1 is the intensity market's observation), then
    :data:`PER_ASSET_OBS` of assets 1..K-1, then with a factor instrument its position, then with
    correlation regimes the rolling correlation and (``regimes`` = R > 0: observed) the one-hot."""
    cols = [(f"{n}_{a}", f"asset {a}: {OBS.descriptions[n]}") for a in range(1, k) for n in PER_ASSET_OBS]
    if factor:
        cols.append(("factor_position", "the factor instrument's position q_e / max_position"))
    if regimes >= 0:
        cols.append(("corr_01", "EWMA correlation of assets 0 and 1's mid changes"))
        cols += [(f"regime_{r}", f"1 if the correlation regime is {r}, else 0") for r in range(regimes)]
    return OBS.extend(cols)


def _obs_args(config) -> tuple[int, bool, int]:
    """(K, factor instrument, regimes: -1 none, 0 hidden, R observed) of :func:`obs_columns`."""
    pf = config.portfolio
    cr = pf.correlation_regimes
    return (int(pf.assets), pf.factor_instrument is not None,
            -1 if cr is None else (cr.n_regimes if cr.observed else 0))


# ------------------------------------------------------------------------------ config ---
FloatList = float | list[float]


class FactorInstrumentConfig(Section):
    """A factor instrument (issue 11): an ETF or index future on the first factor, a basket of the
    asset mids, traded by market orders only (``action.hedge`` gains one column). Its price is
    ``w^T S``; a trade of ``v_e`` units executes at ``w^T S +- (half_spread + eta |v_e|)`` (Almgren &
    Chriss 2000 linear temporary cost, reward term ``impact``) and then moves the asset mids by
    ``g_e v_e`` (permanent cross-impact). Its position ``q_e`` counts as ``q_e w`` in the assets
    everywhere risk is measured (:class:`PortfolioMarketMakingEnv`, "Factor instrument")."""

    weights: list[float] | None = None
    """Basket weights w (K,): the instrument's price is w^T S. None: b_1 / sum(b_1), b_1 the first column of portfolio.loadings (or Sigma's top eigenvector, as limits.factor's b_1), normalised to sum 1 so that one unit has the notional of one lot of the average asset."""
    half_spread: float | None = Field(None, ge=0.0)
    """Temporary cost per unit traded (price units); None: impact.half_spread."""
    eta: float | None = Field(None, ge=0.0)
    """Temporary cost per unit squared; None: impact.eta."""
    cross_impact: list[float] | None = None
    """Permanent impact g_e (K,) of one unit on the asset mids. None: G w, the permanent impact of trading the basket w itself in the assets (G = portfolio.cross_impact or impact.nu I)."""
    max_position: int = Field(20, ge=1)
    """Bound on |q_e| (units); orders are clipped to it as the assets' orders to Q_a."""


class CorrelationRegimesConfig(Section):
    """Correlation regimes of ``mmgym/PortfolioMarketMaking-v0`` (issue 11): the covariance of the
    mid moves switches between per-regime matrices (e.g. calm and stressed) by the Markov chain of
    :mod:`mmgym.scenarios.regimes` (its generator, ``P = expm(Q dt)`` and transition rule, reused);
    the observation gains a rolling correlation estimate (:class:`PortfolioMarketMakingEnv`,
    "Correlation regimes")."""

    covariances: list[list[list[float]]] | None = None
    """Per-regime Sigma_r (R matrices K x K, symmetric PSD), used as given; exclusive with factor_vols."""
    factor_vols: list[list[float]] | None = None
    """Per-regime factor volatilities (R lists of F): Sigma_r = B diag(factor_vols_r^2) B^T + diag(idio_vols^2) with portfolio.loadings B (uncorrelated factors)."""
    rates: list[list[float]] = Field(default_factory=lambda: [[0.0, 0.5], [2.0, 0.0]])
    """R x R transition rates per time unit: rates[r][r'] (r' != r, >= 0) the rate of leaving r for r'; the diagonal is ignored."""
    initial: int = Field(0, ge=0)
    """Regime at the start of every episode."""
    observed: bool = False
    """True: the regime's one-hot is in the observation too (after the correlation feature)."""

    @model_validator(mode="after")
    def _check(self) -> CorrelationRegimesConfig:
        from .regimes import R_MAX, check_chain

        if (self.covariances is None) == (self.factor_vols is None):
            raise ValueError("give either covariances or factor_vols (one entry per regime)")
        n = len(self.covariances if self.covariances is not None else self.factor_vols)
        if not 1 <= n <= R_MAX:
            raise ValueError(f"{n} regimes given; 1 to {R_MAX} are supported")
        check_chain(self.rates, self.initial, n)
        return self

    @property
    def n_regimes(self) -> int:
        """R."""
        return len(self.covariances if self.covariances is not None else self.factor_vols)


class PortfolioConfig(Section):
    """The K assets of ``mmgym/PortfolioMarketMaking-v0`` (module docstring). Per-asset keys take
    one number (every asset) or a list of K."""

    assets: int = Field(2, ge=1, le=K_MAX)
    """K, the number of assets."""
    A: FloatList = 140.0
    """Fill intensity at zero depth A_a (> 0), both sides: p = min(1, A_a e^{-k_a delta} dt)."""
    k: FloatList = 1.5
    """Decay of the fill intensity with depth k_a (> 0), per price unit, both sides."""
    max_inventory: int | list[int] = 10
    """Inventory bound Q_a (>= 1): a side whose fill would take |q_a| above it does not quote."""
    s0: FloatList = 100.0
    """Initial mids (price units)."""
    covariance: list[list[float]] | None = None
    """Sigma (K x K, symmetric, positive semi-definite; price^2 per time unit) given directly; exclusive with ``loadings``. None and no loadings: 4 on the diagonal, 3.2 off it (sigma 2, correlation 0.8)."""
    loadings: list[list[float]] | None = None
    """Factor loadings B (K x F): Sigma = B Sigma_f B^T + diag(idio_vols^2)."""
    factor_covariance: list[list[float]] | None = None
    """Sigma_f (F x F, symmetric, positive semi-definite); exclusive with ``factor_vols``."""
    factor_vols: list[float] | None = None
    """Factor volatilities (uncorrelated factors): Sigma_f = diag(factor_vols^2); default all 1."""
    idio_vols: FloatList = 0.0
    """Idiosyncratic volatilities sigma_eps (>= 0)."""
    cross_impact: list[list[float]] | None = None
    """Permanent cross-impact G (K x K, price per lot): a market order v (lots per asset; action.hedge or limits.on_breach flatten) moves every mid by G v after it executes; None: impact.nu on the diagonal. Exclusive with impact.nu."""
    penalty: Literal["portfolio", "per_asset"] = "portfolio"
    """Running and terminal penalty matrix P: 'portfolio' P = Sigma (phi q^T Sigma q dt), 'per_asset' P = diag(Sigma) (the naive sum of phi q_a^2 sigma_a^2 dt)."""
    factor_instrument: FactorInstrumentConfig | None = None
    """A factor instrument (ETF / index future on the first factor; needs action.hedge). None: off."""
    correlation_regimes: CorrelationRegimesConfig | None = None
    """Markov correlation regimes (per-regime covariance; K >= 2). None: one covariance."""

    @model_validator(mode="after")
    def _check(self) -> PortfolioConfig:
        k = self.assets
        for key, low, strict in (("A", 0.0, True), ("k", 0.0, True), ("max_inventory", 1, False),
                                 ("s0", -math.inf, False), ("idio_vols", 0.0, False)):
            val = getattr(self, key)
            vals = val if isinstance(val, list) else [val]
            if isinstance(val, list) and len(val) != k:
                raise ValueError(f"{key} has {len(val)} entries, expected assets = {k}")
            for a, x in enumerate(vals):
                if x < low or (strict and x == low):
                    where = f"{key}[{a}]" if isinstance(val, list) else key
                    raise ValueError(f"{where} = {x:g} must be {'>' if strict else '>='} {low:g}")
        if self.covariance is not None and self.loadings is not None:
            raise ValueError("give either covariance or loadings (a factor model), not both")
        if self.factor_covariance is not None and self.factor_vols is not None:
            raise ValueError("give either factor_covariance or factor_vols, not both")
        if self.cross_impact is not None:
            _check_matrix("cross_impact", self.cross_impact, k, k, psd=False)
        if self.covariance is not None:
            _check_matrix("covariance", self.covariance, k, k, psd=True)
        if self.loadings is not None:
            _check_matrix("loadings", self.loadings, k, None, psd=False)
            f = len(self.loadings[0])
            if self.factor_covariance is not None:
                _check_matrix("factor_covariance", self.factor_covariance, f, f, psd=True)
            if self.factor_vols is not None:
                if len(self.factor_vols) != f:
                    raise ValueError(f"factor_vols has {len(self.factor_vols)} entries, expected F = {f} (loadings' columns)")
                for j, x in enumerate(self.factor_vols):
                    if x < 0.0:
                        raise ValueError(f"factor_vols[{j}] = {x:g} must be >= 0")
        elif self.factor_covariance is not None or self.factor_vols is not None:
            raise ValueError("factor_covariance / factor_vols need loadings")
        cr = self.correlation_regimes
        if cr is not None:
            if k < 2:
                raise ValueError("correlation_regimes needs assets >= 2 (the feature is a correlation)")
            if cr.covariances is not None:
                for r, m in enumerate(cr.covariances):
                    _check_matrix(f"correlation_regimes.covariances[{r}]", m, k, k, psd=True)
            else:
                if self.loadings is None or self.factor_covariance is not None:
                    raise ValueError("correlation_regimes.factor_vols needs loadings with factor_vols "
                                     "(uncorrelated factors), not factor_covariance")
                f = len(self.loadings[0])
                for r, fv in enumerate(cr.factor_vols):
                    if len(fv) != f or min(fv) < 0.0:
                        raise ValueError(f"correlation_regimes.factor_vols[{r}] must have F = {f} entries >= 0 (got {fv})")
        fi = self.factor_instrument
        if fi is not None:
            for key in ("weights", "cross_impact"):
                val = getattr(fi, key)
                if val is not None and len(val) != k:
                    raise ValueError(f"factor_instrument.{key} has {len(val)} entries, expected assets = {k}")
        return self

    def per_asset(self, key: str) -> np.ndarray:
        """(K,) array of a per-asset key."""
        val = getattr(self, key)
        return np.asarray(val if isinstance(val, list) else [val] * self.assets,
                          dtype=np.int64 if key == "max_inventory" else np.float64)

    def regime_sigmas(self) -> np.ndarray:
        """(R, K, K): each correlation regime's Sigma_r (``correlation_regimes``); (1, K, K) holding
        :meth:`sigma_matrix` without regimes."""
        cr = self.correlation_regimes
        if cr is None:
            return self.sigma_matrix()[None]
        if cr.covariances is not None:
            return np.asarray(cr.covariances, dtype=np.float64)
        b = np.asarray(self.loadings, dtype=np.float64)
        eps = self.per_asset("idio_vols")
        return np.stack([b @ np.diag(np.asarray(fv, float) ** 2) @ b.T + np.diag(eps * eps) for fv in cr.factor_vols])

    def sigma_matrix(self) -> np.ndarray:
        """Sigma (K x K): the covariance given, or B Sigma_f B^T + diag(idio_vols^2) (+ the idio
        term also with a covariance given)."""
        k = self.assets
        if self.loadings is not None:
            b = np.asarray(self.loadings, dtype=np.float64)
            if self.factor_covariance is not None:
                sf = np.asarray(self.factor_covariance, dtype=np.float64)
            else:
                fv = np.ones(b.shape[1]) if self.factor_vols is None else np.asarray(self.factor_vols, float)
                sf = np.diag(fv * fv)
            sig = b @ sf @ b.T
        elif self.covariance is not None:
            sig = np.asarray(self.covariance, dtype=np.float64)
        else:
            sig = np.full((k, k), 3.2) + np.eye(k) * 0.8
        eps = self.per_asset("idio_vols")
        return sig + np.diag(eps * eps)


def _check_matrix(name: str, m: list[list[float]], rows: int, cols: int | None, psd: bool) -> None:
    if len(m) != rows:
        raise ValueError(f"{name} has {len(m)} rows, expected {rows}")
    width = len(m[0]) if m else 0
    for r, row in enumerate(m):
        if len(row) != (cols if cols is not None else width) or width == 0:
            raise ValueError(f"{name}[{r}] has {len(row)} entries, expected {cols if cols is not None else width}")
    if psd:
        a = np.asarray(m, dtype=np.float64)
        if not np.allclose(a, a.T, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(a).max()))):
            raise ValueError(f"{name} is not symmetric")
        lam = float(np.linalg.eigvalsh(a).min())
        if lam < -1e-10 * max(1.0, float(np.abs(a).max())):
            raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {lam:.4g})")


class LimitsConfig(Section):
    """Risk limits of ``mmgym/PortfolioMarketMaking-v0`` (issue 11): per-asset position limits, a
    limit on the net exposure to the first factor, both optionally shrunk when realised volatility
    rises; breaches and near-breaches are counted as alerts (:class:`PortfolioMarketMakingEnv`,
    "Risk limits"). No key set: no limits (the alert columns stay 0)."""

    position: FloatList | None = None
    """Position limits L_a (> 0, lots; one number or a list of K): |q_a| <= L_a."""
    factor: float | None = None
    """Factor limit L_f (> 0): |b_1^T q| <= L_f, b_1 the first column of portfolio.loadings (or, with a covariance given directly or the default one, the unit top eigenvector of Sigma, signed so that its entries sum to >= 0)."""
    vol_scaling: bool = False
    """Shrink the limits when realised volatility rises: L_eff = L min(1, sigma_ref_a / sigma_hat_a), sigma_hat_a the EWMA realised volatility the observation reports (observation.vol_halflife); the factor limit shrinks by the smallest asset factor among assets with a non-zero loading."""
    vol_ref: FloatList | None = None
    """sigma_ref_a (> 0, price per sqrt(time unit); one number or a list of K); default sqrt(Sigma_aa), the configured volatility."""
    warn_at: float = 0.9
    """Near-breach fraction (0 < warn_at <= 1): an alert 'warn' when warn_at L_eff <= |value| <= L_eff."""
    on_breach: Literal["suppress", "flatten", "alert"] = "suppress"
    """'suppress': a side whose fill would take a limited quantity beyond its limit and further from 0 does not quote (the kernel enforces it, as the inventory bound); 'flatten': at the start of each step, market orders back inside the limits in force, paying the impact section's Almgren-Chriss costs (reward term impact); quotes are not suppressed; 'alert': count alerts only."""

    @model_validator(mode="after")
    def _check(self) -> LimitsConfig:
        for key in ("position", "vol_ref"):
            val = getattr(self, key)
            if val is None:
                continue
            for a, x in enumerate(val if isinstance(val, list) else [val]):
                if not x > 0.0:
                    where = f"{key}[{a}]" if isinstance(val, list) else key
                    raise ValueError(f"{where} = {x:g} must be > 0")
        if self.factor is not None and not self.factor > 0.0:
            raise ValueError(f"factor = {self.factor:g} must be > 0")
        if not 0.0 < self.warn_at <= 1.0:
            raise ValueError(f"warn_at = {self.warn_at:g} must be in (0, 1]")
        if self.vol_ref is not None and not self.vol_scaling:
            raise ValueError("vol_ref is set but vol_scaling is false (it would be ignored)")
        if self.vol_scaling and not self.enabled:
            raise ValueError("vol_scaling needs a limit (position or factor)")
        return self

    @property
    def enabled(self) -> bool:
        """A position or factor limit is set."""
        return self.position is not None or self.factor is not None


def factor_loadings(pf: PortfolioConfig) -> tuple[np.ndarray, str]:
    """b_1 (K,) and where it came from: the first column of ``loadings``, or the unit top
    eigenvector of Sigma (covariance given directly, or the default) signed so that its entries
    sum to >= 0 (ties: the first non-zero entry positive)."""
    if pf.loadings is not None:
        return np.asarray(pf.loadings, dtype=np.float64)[:, 0].copy(), "loadings[:, 0]"
    lam, v = np.linalg.eigh(pf.sigma_matrix())
    b = v[:, int(np.argmax(lam))].copy()
    tot = float(b.sum())
    if tot < -1e-12 or (abs(tot) <= 1e-12 and b[np.flatnonzero(b)[0]] < 0):
        b = -b
    return b, "top eigenvector of Sigma"


def factor_matrix(pf: PortfolioConfig) -> tuple[np.ndarray, str]:
    """The loadings B (K x F) whose exposures ``B^T x`` the evaluation plots, and where they came
    from: ``portfolio.loadings`` (the factor model returns = B f + eps, Sigma = B Sigma_f B^T +
    diag(sigma_eps^2)), or with a covariance given directly (or the default) F = 1, the first
    principal component b_1 of :func:`factor_loadings`. Column 0 is always :func:`factor_loadings`'
    b_1, so exposure 0 is the env's ``factor_exposure`` (``limits.factor``'s quantity)."""
    if pf.loadings is not None:
        return np.asarray(pf.loadings, dtype=np.float64).copy(), "loadings"
    b, where = factor_loadings(pf)
    return b[:, None], where


def risk_components(pf: PortfolioConfig) -> tuple[np.ndarray, list[str]]:
    """The parts of Sigma the ``portfolio_hybrid`` multipliers scale, and their names.

    With loadings B (K x F) and Sigma_f: ``T_fg = B_f Sigma_f[f, g] B_g^T`` (F x F matrices K x K,
    index ``f F + g``) and the residual ``R = diag(sigma_eps^2)``; with a covariance given directly
    (or the default) one factor, the top eigenvector b_1 of Sigma with its eigenvalue lambda_1
    (``T_00 = lambda_1 b_1 b_1^T``, principal component analysis), and ``R = Sigma - T_00``. So
    ``sum T + R = Sigma``, and the multipliers ``m_0..m_{F-1}, m_idio`` give

        Sigma_m = sum_{f,g} sqrt(m_f m_g) T_fg + m_idio R = B S Sigma_f S B^T + m_idio R,

    ``S = diag(sqrt(m_f))``: the covariance of the factor model with factor f's volatility scaled by
    sqrt(m_f) (for uncorrelated factors ``B diag(m_f Sigma_f) B^T``, the issue's "penalty along each
    factor"). Returns ``(comps, names)``: comps ``(F F + 1, K, K)``, the last one R; names of the
    F + 1 multipliers (``factor_0``, ..., ``idio``)."""
    sig = pf.sigma_matrix()
    if pf.loadings is not None:
        b = np.asarray(pf.loadings, dtype=np.float64)
        f = b.shape[1]
        if pf.factor_covariance is not None:
            sf = np.asarray(pf.factor_covariance, dtype=np.float64)
        else:
            fv = np.ones(f) if pf.factor_vols is None else np.asarray(pf.factor_vols, float)
            sf = np.diag(fv * fv)
        eps = pf.per_asset("idio_vols")
        resid = np.diag(eps * eps)
    else:
        lam, v = np.linalg.eigh(sig)
        j = int(np.argmax(lam))
        b = v[:, j:j + 1]
        f = 1
        sf = np.array([[lam[j]]])
        resid = sig - lam[j] * (b @ b.T)
    comps = np.empty((f * f + 1,) + sig.shape)
    for i in range(f):
        for j in range(f):
            comps[i * f + j] = sf[i, j] * np.outer(b[:, i], b[:, j])
    comps[-1] = resid
    return np.ascontiguousarray(comps), [f"factor_{i}" for i in range(f)] + ["idio"]


class PortfolioActionConfig(ActionConfig):
    """The action section of the portfolio env: :class:`~mmgym.schema.ActionConfig` with ``mode``
    defaulting to ``offsets``, and the ``portfolio_hybrid`` glass box."""

    mode: Literal["as_hybrid", "offsets", "portfolio_hybrid"] = "offsets"
    """'offsets' (per asset and side), 'as_hybrid' (a risk aversion and a skew per asset) or 'portfolio_hybrid' (a risk multiplier per factor and for the idiosyncratic part, and a skew per asset; quotes by the begv rule)."""
    risk_multiplier_max: float = Field(10.0, gt=1.0)
    """portfolio_hybrid: a multiplier column a in [-1, 1] scales its part of the begv penalty by m = risk_multiplier_max^a (1 at a = 0)."""


class PortfolioEnvConfig(EnvConfig):
    """The env config of ``mmgym/PortfolioMarketMaking-v0``: the shared sections (``market`` gives the
    time grid only: ``dt``, ``horizon``) plus ``portfolio``; the action defaults to ``offsets``."""

    id: Literal["mmgym/PortfolioMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    action: PortfolioActionConfig = Field(default_factory=PortfolioActionConfig)
    """Action mapping (``offsets`` per asset; raw depths for the baselines)."""
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    """The K assets and their covariance."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    """Risk limits and alerts (none by default)."""

    @model_validator(mode="after")
    def _limits_per_asset(self) -> PortfolioEnvConfig:
        k = self.portfolio.assets
        for key in ("position", "vol_ref"):
            val = getattr(self.limits, key)
            if isinstance(val, list) and len(val) != k:
                raise ValueError(f"limits.{key} has {len(val)} entries, expected portfolio.assets = {k}")
        return self


def chol_factor(sigma: np.ndarray) -> np.ndarray:
    """L with L L^T = Sigma: Cholesky (lower triangular) when Sigma is positive definite, else the
    symmetric square root V diag(sqrt(max(lambda, 0))) V^T."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        lam, v = np.linalg.eigh(sigma)
        return (v * np.sqrt(np.clip(lam, 0.0, None))) @ v.T


# ------------------------------------------------------------------------------ params ---
class Params(NamedTuple):
    """What the kernels read (one record per market; arrays over the K assets).

    Attributes:
        n_steps: steps per episode. dt: step length. k_assets: K.
        phi, alpha: running and terminal penalty weights. maker_fee: per lot.
        mode: MODE_DEPTHS, MODE_OFFSETS or MODE_AS_HYBRID. offset_min, offset_half_span: the offsets'
            map. lg_min, lg_span, skew_max: as_hybrid's gamma and skew maps. spread, spread_min,
            spread_half_span: as_hybrid's extra half-spread columns (``action.spread``).
        vol_decay: EWMA weight of the newest squared mid change.
        s0: (K,) initial mids. sd: (K,) sigma_a sqrt(dt). inv_sd: (K,) its inverse (0 if sd = 0).
        a_dt, ln_a_dt, k: (K,) A_a dt, its log, k_a. q_max: (K,) int64 bounds. inv_q_max: (K,).
        chol_dt: (K, K) sqrt(dt) L. pen: (K, K) the penalty matrix P. cov: (K, K) Sigma.
        lim_on: limits configured. suppress: ``limits.on_breach: suppress``. lim_pos: (K,) L_a
            (inf: none). lim_fac: L_f (inf: none). fac_b: (K,) b_1. vol_scale: ``limits.vol_scaling``.
        ref_sd: (K,) sigma_ref_a sqrt(dt) (price per step). warn_at: the near-breach fraction.
        flatten: ``limits.on_breach: flatten``. half_spread, eta: market orders' temporary costs
            (``impact`` section, every asset). hedge: ``action.hedge`` (K market-order columns from
            ``hedge_col``, ``hedge_max`` lots at |a| = 1). trades: hedge or flatten. perm: (K, K)
            the permanent cross-impact matrix G (:func:`permanent_impact`); perm_on: G != 0.
        fi_on: ``portfolio.factor_instrument`` set (:func:`factor_instrument`; the other fi_ fields
            are zeros without it). fi_w: (K,) its weights w. fi_g: (K,) its permanent impact g_e.
            fi_h, fi_eta: its temporary costs. fi_qmax: bound on |q_e|. fi_gtw: (K,) G^T w.
            fi_wg: w^T g_e. fac_bw: b_1^T w (its exposure to the first factor per unit).
        rg_n: correlation regimes R (0: none). rg_chol, rg_pen, rg_cov: (max(R, 1), K, K) per regime
            sqrt(dt) L_r, P_r and Sigma_r (without regimes: the nominal ones). rg_cum: (R, R) the
            cumulative transition rows (:func:`mmgym.scenarios.regimes.cumulative_rows`).
            rg_initial: the regime at reset. rg_observed: its one-hot is observed. rg_obs: the
            correlation feature's observation column. rg_c0: Sigma_01 dt, the EWMA covariance at reset.
        ph_n: ``portfolio_hybrid``'s number of multipliers F + 1 (0 otherwise). ph_comp: (F F + 1,
            K, K) the parts of Sigma (:func:`risk_components`). ph_lmax: ln(risk_multiplier_max).
            ph_sq: (K,) sqrt of D_+'s diagonal (2 k_a A_a / e). ph_gamma: begv's gamma (2 phi).
            ph_inv_k: (K,) 1/k_a. ph_aux0: the first ``risk_mult_*`` aux column.
    """

    n_steps: int
    dt: float
    k_assets: int
    phi: float
    alpha: float
    maker_fee: float
    mode: int
    offset_min: float
    offset_half_span: float
    lg_min: float
    lg_span: float
    skew_max: float
    spread: bool
    spread_min: float
    spread_half_span: float
    vol_decay: float
    s0: np.ndarray
    sd: np.ndarray
    inv_sd: np.ndarray
    a_dt: np.ndarray
    ln_a_dt: np.ndarray
    k: np.ndarray
    q_max: np.ndarray
    inv_q_max: np.ndarray
    chol_dt: np.ndarray
    pen: np.ndarray
    cov: np.ndarray
    sig2: np.ndarray
    lim_on: bool
    suppress: bool
    lim_pos: np.ndarray
    lim_fac: float
    fac_b: np.ndarray
    vol_scale: bool
    ref_sd: np.ndarray
    warn_at: float
    flatten: bool
    half_spread: float
    eta: float
    hedge: bool
    hedge_col: int
    hedge_max: float
    trades: bool
    perm_on: bool
    perm: np.ndarray
    fi_on: bool
    fi_w: np.ndarray
    fi_g: np.ndarray
    fi_h: float
    fi_eta: float
    fi_qmax: int
    fi_gtw: np.ndarray
    fi_wg: float
    fac_bw: float
    rg_n: int
    rg_chol: np.ndarray
    rg_pen: np.ndarray
    rg_cov: np.ndarray
    rg_cum: np.ndarray
    rg_initial: int
    rg_observed: bool
    rg_obs: int
    rg_c0: float
    ph_n: int
    ph_comp: np.ndarray
    ph_lmax: float
    ph_sq: np.ndarray
    ph_gamma: float
    ph_inv_k: np.ndarray
    ph_aux0: int


def penalty_matrix(config: PortfolioEnvConfig) -> np.ndarray:
    """P: Sigma (``penalty: portfolio``) or diag(Sigma) (``per_asset``)."""
    sig = config.portfolio.sigma_matrix()
    return sig if config.portfolio.penalty == "portfolio" else np.diag(np.diag(sig))


def regime_penalties(config: PortfolioEnvConfig) -> np.ndarray:
    """(R, K, K): each correlation regime's penalty matrix P_r (Sigma_r, or diag(Sigma_r) with
    ``penalty: per_asset``); (1, K, K) holding :func:`penalty_matrix` without regimes."""
    sigs = config.portfolio.regime_sigmas()
    return sigs if config.portfolio.penalty == "portfolio" else np.stack([np.diag(np.diag(s)) for s in sigs])


def hybrid_penalty(comps: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``Sigma_m = sum_{f,g} sqrt(m_f m_g) T_fg + m_idio R`` (:func:`risk_components`' parts
    ``comps`` (F F + 1, K, K), multipliers ``m`` (F + 1,), the last the idiosyncratic one): the
    penalty ``portfolio_hybrid``'s quotes use at multipliers m (the kernel's ``_hybrid_terms``
    builds the same matrix in place)."""
    m = np.asarray(m, dtype=np.float64)
    nf = m.shape[0] - 1
    out = m[nf] * comps[nf * nf]
    for f in range(nf):
        for g in range(nf):
            out = out + math.sqrt(m[f] * m[g]) * comps[f * nf + g]
    return 0.5 * (out + out.T)


def pack(config: PortfolioEnvConfig, raw_depths: bool = False) -> Params:
    """The kernels' :class:`Params` of a config."""
    pf = config.portfolio
    m = config.market
    dt = float(m.dt)
    sig = pf.sigma_matrix()
    sd = np.sqrt(np.diag(sig)) * math.sqrt(dt)
    a_dt = pf.per_asset("A") * dt
    q_max = pf.per_asset("max_inventory")
    a = config.action
    return Params(int(m.n_steps), dt, int(pf.assets), float(config.reward.inventory_penalty),
                  float(config.reward.terminal_penalty), float(config.reward.maker_fee),
                  MODE_DEPTHS if raw_depths else _MODES.index(a.mode), float(a.offset_min),
                  0.5 * float(a.offset_max - a.offset_min),
                  math.log(a.gamma_min), math.log(a.gamma_max) - math.log(a.gamma_min), float(a.skew_max),
                  bool(a.spread) and not raw_depths, float(a.spread_min), 0.5 * float(a.spread_max - a.spread_min),
                  1.0 - 0.5 ** (1.0 / config.observation.vol_halflife),
                  pf.per_asset("s0"), sd, np.where(sd > 0, 1.0 / np.where(sd > 0, sd, 1.0), 0.0),
                  a_dt, np.log(a_dt), pf.per_asset("k"), q_max, 1.0 / q_max.astype(np.float64),
                  np.ascontiguousarray(chol_factor(sig) * math.sqrt(dt)),
                  np.ascontiguousarray(penalty_matrix(config)), np.ascontiguousarray(sig),
                  np.ascontiguousarray(np.diag(sig)), *pack_limits(config, raw_depths),
                  *pack_regimes(config), *pack_hybrid(config, raw_depths))


def pack_regimes(config: PortfolioEnvConfig) -> tuple:
    """The ``rg_*`` fields of :class:`Params`."""
    from .regimes import cumulative_rows, transition_matrix

    pf = config.portfolio
    cr = pf.correlation_regimes
    dt = float(config.market.dt)
    sigs = pf.regime_sigmas()
    pens = regime_penalties(config)
    chol = np.stack([chol_factor(s) * math.sqrt(dt) for s in sigs])
    k = pf.assets
    cum = np.ones((1, 1)) if cr is None else cumulative_rows(transition_matrix(cr.rates, dt))
    rg_obs = 1 + N_PER_ASSET_OBS * k + (pf.factor_instrument is not None)
    c0 = float(pf.sigma_matrix()[0, 1]) * dt if k > 1 else 0.0
    return (0 if cr is None else cr.n_regimes, np.ascontiguousarray(chol), np.ascontiguousarray(pens),
            np.ascontiguousarray(sigs), np.ascontiguousarray(cum), 0 if cr is None else int(cr.initial),
            cr is not None and cr.observed, rg_obs, c0)


def pack_hybrid(config: PortfolioEnvConfig, raw_depths: bool = False) -> tuple:
    """The ``ph_*`` fields of :class:`Params` (``ph_n = 0`` unless ``action.mode: portfolio_hybrid``
    with normalised actions)."""
    pf = config.portfolio
    k = pf.assets
    kk = pf.per_asset("k")
    d_plus = 2.0 * kk * pf.per_asset("A") / math.e
    on = _n_multipliers(config, raw_depths) > 0
    comps, names = risk_components(pf) if on else (np.zeros((1, k, k)), [])
    return (len(names), comps, math.log(config.action.risk_multiplier_max), np.sqrt(d_plus),
            2.0 * float(config.reward.inventory_penalty), 1.0 / kk, len(aux_columns(k)))


def pack_limits(config: PortfolioEnvConfig, raw_depths: bool = False) -> tuple:
    """The limit and market-order fields of :class:`Params` (``lim_on`` ... ``fac_bw``)."""
    pf, lim = config.portfolio, config.limits
    k = pf.assets
    flatten = lim.enabled and lim.on_breach == "flatten"
    hedge = bool(config.action.hedge)
    spread = bool(config.action.spread) and not raw_depths
    g = permanent_impact(config)
    fi = factor_instrument(config)
    sig = pf.sigma_matrix()
    lim_pos = np.full(k, np.inf)
    if lim.position is not None:
        lim_pos[:] = lim.position
    ref = np.sqrt(np.diag(sig)) if lim.vol_ref is None else np.broadcast_to(np.asarray(lim.vol_ref, float), (k,))
    return (lim.enabled, lim.enabled and lim.on_breach == "suppress", lim_pos,
            math.inf if lim.factor is None else float(lim.factor), factor_loadings(pf)[0],
            bool(lim.vol_scaling), np.ascontiguousarray(ref * math.sqrt(float(config.market.dt))),
            float(lim.warn_at), flatten, float(config.impact.half_spread), float(config.impact.eta),
            hedge, _hedge_col(config, raw_depths), float(config.action.hedge_max_lots), hedge or flatten,
            bool(np.any(g != 0.0)) or fi is not None, g,
            *pack_factor_instrument(config, fi, g))


def _n_multipliers(config: PortfolioEnvConfig, raw_depths: bool = False) -> int:
    """F + 1 with normalised ``portfolio_hybrid`` actions (:func:`risk_components`), else 0."""
    if config.action.mode != "portfolio_hybrid" or raw_depths:
        return 0
    return len(risk_components(config.portfolio)[1])


def _hedge_col(config: PortfolioEnvConfig, raw_depths: bool = False) -> int:
    """The first market-order column: after 2K depth columns (+ K spreads), or after
    ``portfolio_hybrid``'s F + 1 multipliers and K skews."""
    k = config.portfolio.assets
    nm = _n_multipliers(config, raw_depths)
    if nm:
        return nm + k
    return 2 * k + (k if bool(config.action.spread) and not raw_depths else 0)


def pack_factor_instrument(config: PortfolioEnvConfig, fi: FactorInstrument | None, g: np.ndarray) -> tuple:
    """The ``fi_*`` and ``fac_bw`` fields of :class:`Params` (zeros without the instrument)."""
    k = config.portfolio.assets
    if fi is None:
        z = np.zeros(k)
        return (False, z, z, 0.0, 0.0, 0, z, 0.0, 0.0)
    b1 = factor_loadings(config.portfolio)[0]
    return (True, fi.w, fi.g, fi.half_spread, fi.eta, fi.max_position, np.ascontiguousarray(g.T @ fi.w),
            float(fi.w @ fi.g), float(b1 @ fi.w))


class FactorInstrument(NamedTuple):
    """The resolved ``portfolio.factor_instrument`` (defaults filled in; :class:`FactorInstrumentConfig`).

    Attributes:
        w: (K,) basket weights (price w^T S). g: (K,) permanent impact per unit on the asset mids.
        half_spread, eta: temporary costs. max_position: bound on |q_e|.
    """

    w: np.ndarray
    g: np.ndarray
    half_spread: float
    eta: float
    max_position: int


def factor_instrument(config: PortfolioEnvConfig) -> FactorInstrument | None:
    """The config's factor instrument with its defaults resolved, or None: ``w = b_1 / sum(b_1)``
    (:func:`factor_loadings`), ``g_e = G w``, the ``impact`` section's half-spread and eta."""
    fi = config.portfolio.factor_instrument
    if fi is None:
        return None
    if fi.weights is not None:
        w = np.asarray(fi.weights, dtype=np.float64)
    else:
        b1, where = factor_loadings(config.portfolio)
        if abs(float(b1.sum())) < 1e-12:
            from ..config import ConfigError

            raise ConfigError(f"portfolio.factor_instrument.weights: the default b_1 / sum(b_1) needs sum(b_1) != 0 "
                              f"(b_1 = {where}, sum {float(b1.sum()):.3g}); give the weights")
        w = b1 / float(b1.sum())
    g = permanent_impact(config) @ w if fi.cross_impact is None else np.asarray(fi.cross_impact, dtype=np.float64)
    im = config.impact
    return FactorInstrument(np.ascontiguousarray(w), np.ascontiguousarray(g),
                            float(im.half_spread if fi.half_spread is None else fi.half_spread),
                            float(im.eta if fi.eta is None else fi.eta), int(fi.max_position))


def permanent_impact(config: PortfolioEnvConfig) -> np.ndarray:
    """G (K x K): ``portfolio.cross_impact``, else ``impact.nu I``: a market order v (K lots)
    moves the mids by ``G v`` after it executes."""
    pf = config.portfolio
    if pf.cross_impact is not None:
        return np.ascontiguousarray(pf.cross_impact, dtype=np.float64)
    return np.eye(pf.assets) * float(config.impact.nu)


class State(NamedTuple):
    """Per-row state (batch-first, K assets).

    Attributes:
        mid: (N, K) float64 mids. cash: (N,) float64. inventory: (N, K) int64 lots.
        noise: (N, K) float64 scratch: the step's standard normals.
        exposure: (N, K) float64 scratch: the total exposure ``x = q + q_e w`` (lots).
        factor_position: (N,) int64 the factor instrument's position q_e (units; 0 without it).
        ph_m: (N, F + 1) float64 ``portfolio_hybrid``: the multipliers the cached decomposition is
            for (NaN: none yet). ph_v: (N, K K) its eigenvectors (row-major). ph_lam: (N, K) the
            eigenvalues of Ahat. ph_scr: (N, 4K) scratch: per mode and per asset the begv terms.
            ph_mat: (N, K K) scratch: the matrix being diagonalised.
            Without portfolio_hybrid these have zero columns.
        regime: (N,) int64 the correlation regime (0 without regimes). corr_cov: (N,) float64 the
            EWMA of dS_0 dS_1 (the correlation feature's covariance; price^2 per step).
        The kernels see the (N, K) fields flat, ``(N * K,)`` (row i asset a at ``i * K + a``).
    """

    mid: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray
    noise: np.ndarray
    exposure: np.ndarray
    factor_position: np.ndarray
    regime: np.ndarray
    corr_cov: np.ndarray
    ph_m: np.ndarray
    ph_v: np.ndarray
    ph_lam: np.ndarray
    ph_scr: np.ndarray
    ph_mat: np.ndarray


def new_state(config: PortfolioEnvConfig, num_envs: int) -> State:
    k = config.portfolio.assets
    nm = len(risk_components(config.portfolio)[1]) if config.action.mode == "portfolio_hybrid" else 0
    return State(np.tile(config.portfolio.per_asset("s0"), (num_envs, 1)), np.zeros(num_envs),
                 np.zeros((num_envs, k), dtype=np.int64), np.zeros((num_envs, k)), np.zeros((num_envs, k)),
                 np.zeros(num_envs, dtype=np.int64), np.zeros(num_envs, dtype=np.int64), np.zeros(num_envs),
                 np.full((num_envs, nm), np.nan),
                 np.zeros((num_envs, k * k if nm else 0)), np.zeros((num_envs, k if nm else 0)),
                 np.zeros((num_envs, 4 * k if nm else 0)), np.zeros((num_envs, k * k if nm else 0)))


# ----------------------------------------------------------------------------- kernels ---
@njit(cache=True, inline="always")
def _write_obs(tr, st, p, i, step, out_obs):
    """Row ``i``'s observation (:class:`PortfolioMarketMakingEnv` table): per asset q/Q, the EWMA
    volatility and the last mid change over sigma_a sqrt(dt) (clipped), the last fill events; the
    time left once, after asset 0's inventory (the ledger's order)."""
    kk = p.k_assets
    base = i * kk
    out_obs[i, 1] = (p.n_steps - step) / p.n_steps
    for a in range(kk):
        j = base + a
        if a == 0:  # the ledger's layout: inventory, time_left, volatility, fills, mid_return
            ci = 0
            cv = 2
        else:
            ci = 6 + (a - 1) * N_PER_ASSET_OBS
            cv = ci + 1
        out_obs[i, ci] = st.inventory[j] * p.inv_q_max[a]
        out_obs[i, cv] = min(10.0, np.sqrt(tr.vol_var[j]) * p.inv_sd[a])
        out_obs[i, cv + 1] = float(min(tr.last_fills[j, 0], 1))
        out_obs[i, cv + 2] = float(min(tr.last_fills[j, 1], 1))
        out_obs[i, cv + 3] = min(10.0, max(-10.0, tr.mid_ret[j] * p.inv_sd[a]))
    if p.fi_on:  # after the K assets' blocks
        out_obs[i, 1 + N_PER_ASSET_OBS * kk] = st.factor_position[i] / p.fi_qmax
    if p.rg_n > 0:  # the rolling correlation of assets 0 and 1, then the regime's one-hot
        den = np.sqrt(tr.vol_var[base] * tr.vol_var[base + 1])
        out_obs[i, p.rg_obs] = min(1.0, max(-1.0, st.corr_cov[i] / den)) if den > 0.0 else 0.0
        if p.rg_observed:
            for r in range(p.rg_n):
                out_obs[i, p.rg_obs + 1 + r] = 1.0 if r == st.regime[i] else 0.0


@njit(cache=True, inline="always")
def _reset_row(tr, st, p, i):
    """mids = s0, cash = 0, q = 0; no random draws."""
    kk = p.k_assets
    base = i * kk
    tr.step[i] = 0
    for a in range(kk):
        st.mid[base + a] = p.s0[a]
        st.inventory[base + a] = 0
        tr.vol_var[base + a] = p.sd[a] * p.sd[a]
        tr.mid_ret[base + a] = 0.0
        tr.last_fills[base + a, 0] = 0
        tr.last_fills[base + a, 1] = 0
    st.cash[i] = 0.0
    st.factor_position[i] = 0
    st.regime[i] = p.rg_initial
    st.corr_cov[i] = p.rg_c0
    tr.wealth0[i] = 0.0


@njit(cache=True, inline="always")
def _limits_in_force(tr, st, p, i, aux):
    """Row ``i``'s limits for this step, from the state before it: per asset ``L_a s_a`` written
    to its ``limit_a`` aux column, ``s_a = min(1, sigma_ref_a / sigma_hat_a)`` with ``sigma_hat_a
    sqrt(dt) = sqrt(vol_var_a)`` (1 without ``vol_scaling``); the factor limit ``L_f min_{a: b_a !=
    0} s_a``. Returns (factor limit, factor exposure b_1^T q before the step's fills)."""
    kk = p.k_assets
    base = i * kk
    s_min = 1.0
    e = 0.0
    for a in range(kk):
        sc = 1.0
        if p.vol_scale:
            sh = np.sqrt(tr.vol_var[base + a])
            if sh > p.ref_sd[a]:
                sc = p.ref_sd[a] / sh
            if p.fac_b[a] != 0.0 and sc < s_min:
                s_min = sc
        aux[i, AUX_ASSET0 + a * N_PER_ASSET_AUX + PA_LIMIT] = p.lim_pos[a] * sc
        e += p.fac_b[a] * st.inventory[base + a]
    if p.fi_on:
        e += p.fac_bw * st.factor_position[i]
    lf = p.lim_fac * s_min
    aux[i, AUX_LIMIT_FACTOR] = lf
    return lf, e


@njit(cache=True, inline="always")
def _agent_orders(st, p, i, aux, actions, e):
    """``action.hedge``: row ``i``'s market order per asset, ``rint(a hedge_max_lots)`` lots
    (``rint(a)`` with raw depths; positive buys), clipped so that ``|q_a + v_a| <= Q_a``, written to
    the ``hedge_a`` aux column (0 without the hedge action); with a factor instrument its order
    (column ``hedge_col + K``, clipped to ``|q_e + v_e| <= max_position``) to ``hedge_factor``.
    Returns ``e`` after the orders (the instrument counts ``b_1^T w`` per unit)."""
    kk = p.k_assets
    base = i * kk
    for a in range(kk):
        v = np.int64(0)
        if p.hedge:
            x = actions[i, p.hedge_col + a]
            if p.mode != MODE_DEPTHS:
                x = min(1.0, max(-1.0, x)) * p.hedge_max
            v = np.int64(np.rint(x))
            q = st.inventory[base + a]
            if q + v > p.q_max[a]:
                v = p.q_max[a] - q
            elif q + v < -p.q_max[a]:
                v = -p.q_max[a] - q
            e += p.fac_b[a] * v
        aux[i, AUX_ASSET0 + a * N_PER_ASSET_AUX + PA_HEDGE] = v
    if p.fi_on:  # the factor instrument's order: the column after the assets', clipped to max_position
        x = actions[i, p.hedge_col + kk]
        if p.mode != MODE_DEPTHS:
            x = min(1.0, max(-1.0, x)) * p.hedge_max
        v = np.int64(np.rint(x))
        qe = st.factor_position[i]
        if qe + v > p.fi_qmax:
            v = p.fi_qmax - qe
        elif qe + v < -p.fi_qmax:
            v = -p.fi_qmax - qe
        e += p.fac_bw * v
        aux[i, AUX_HEDGE_FACTOR] = v
    return e


@njit(cache=True, inline="always")
def _flatten(st, p, i, aux, lf, e):
    """``limits.on_breach: flatten``, at the start of row ``i``'s step (before quoting), after the
    agent's own orders (``q`` below is the inventory after them): market orders back inside the
    limits in force, added to each asset's ``hedge_a`` order (:func:`_execute` trades them).

    1. Asset a with ``|q_a| > L_a`` trades to ``sign(q_a) floor(L_a)``.
    2. While ``|e| > L_f`` (``e = b_1^T q`` after 1.): one more lot towards 0 in the asset that
       lowers ``|e|`` by the most, among those whose lot lowers it (``sign(e) b_a q_a > 0`` and
       ``|b_a| < 2 |e|``; ties: the lowest index); none: stop (the breach stays and is alerted).
       No trade increases any ``|q_a|``.

    Returns ``e`` after the orders."""
    kk = p.k_assets
    base = i * kk
    for a in range(kk):
        c = AUX_ASSET0 + a * N_PER_ASSET_AUX
        q = st.inventory[base + a] + np.int64(aux[i, c + PA_HEDGE])
        lim = aux[i, c + PA_LIMIT]
        if abs(q) > lim:
            tgt = np.int64(np.floor(lim))
            v = tgt - q if q > 0 else -tgt - q
            aux[i, c + PA_HEDGE] += v
            e += p.fac_b[a] * v
    while abs(e) > lf:
        sgn = 1.0 if e > 0.0 else -1.0
        best = -1
        best_b = 0.0
        for a in range(kk):
            c = AUX_ASSET0 + a * N_PER_ASSET_AUX
            qn = st.inventory[base + a] + aux[i, c + PA_HEDGE]
            b_a = p.fac_b[a]
            ab = abs(b_a)
            if sgn * b_a * qn > 0.0 and ab < 2.0 * abs(e) and ab > best_b:
                best = a
                best_b = ab
        if best < 0:
            break
        c = AUX_ASSET0 + best * N_PER_ASSET_AUX
        qn = st.inventory[base + best] + aux[i, c + PA_HEDGE]
        step = -1 if qn > 0 else 1
        aux[i, c + PA_HEDGE] += step
        e += p.fac_b[best] * step
    return e


@njit(cache=True, inline="always")
def _execute(st, p, i, aux, cash):
    """Trade row ``i``'s ``hedge_a`` orders: each asset's order at its pre-trade mid with linear
    temporary costs (Almgren & Chriss 2000; :func:`mmgym.sim.processes.almgren_chriss_hedge`:
    executed at ``s_a +- (half_spread + eta |v_a|)``), then every mid moves by the permanent
    (cross-)impact ``dS = G v`` (``portfolio.cross_impact``, default ``impact.nu I``). With a factor
    instrument, its order ``v_e`` (``hedge_factor``) trades at its pre-trade price ``w^T s`` the same
    way (its own half-spread and eta) and the mids move by ``g_e v_e`` as well.
    Returns (cash, temporary impact cost, lots traded)."""
    kk = p.k_assets
    base = i * kk
    impact = 0.0
    lots = 0
    ve = 0.0
    if p.fi_on:
        px = 0.0
        for a in range(kk):
            px += p.fi_w[a] * st.mid[base + a]
        aux[i, AUX_FACTOR_MID] = px
        v = np.int64(aux[i, AUX_HEDGE_FACTOR])
        if v != 0:
            _, qe, cash, v, cost, _ = almgren_chriss_hedge(
                px, st.factor_position[i], cash, v, p.fi_qmax, p.fi_h, p.fi_eta, 0.0, 0.0)
            st.factor_position[i] = qe
            impact += cost
            lots += abs(v)
            ve = float(v)
    for a in range(kk):
        v = np.int64(aux[i, AUX_ASSET0 + a * N_PER_ASSET_AUX + PA_HEDGE])
        if v != 0:
            _, q, cash, v, cost, _ = almgren_chriss_hedge(  # nu = 0: G moves the mids below
                st.mid[base + a], st.inventory[base + a], cash, v, p.q_max[a], p.half_spread, p.eta, 0.0, 0.0)
            st.inventory[base + a] = q
            impact += cost
            lots += abs(v)
    if lots > 0 and p.perm_on:
        for a in range(kk):
            ds = 0.0
            for b in range(kk):
                ds += p.perm[a, b] * aux[i, AUX_ASSET0 + b * N_PER_ASSET_AUX + PA_HEDGE]
            if ve != 0.0:
                ds += p.fi_g[a] * ve
            st.mid[base + a] += ds
    return cash, impact, lots


@njit(cache=True)
def begv_mode(lam, th, gamma, alpha):
    """One eigenmode of begv's Riccati solution (:func:`mmgym.baselines.portfolio.begv_A`, where it
    is derived): ``m = (alpha lam^2 / gamma + lam th / 2) / (1 + 2 alpha lam th / gamma)`` with
    ``th = tanh(lam tau)``; scalars or arrays (elementwise)."""
    return (alpha * lam**2 / gamma + 0.5 * lam * th) / (1.0 + 2.0 * alpha * lam / gamma * th)


@kernel
def _jacobi_eigh(mat, vec, n):
    """Eigendecomposition of a symmetric n x n matrix in place, without allocating (the kernels
    run without numba's allocator): the cyclic Jacobi method (Golub & Van Loan, "Matrix
    Computations", 4th ed., sec. 8.5.2-8.5.3, Algorithm 8.5.3). ``mat`` (n n,) row-major is
    overwritten by the rotated matrix, diagonal to rounding (``mat[j n + j]`` = eigenvalue j, in no
    particular order); ``vec`` (n n,) row-major gets the eigenvectors as columns (``vec[a n + j]``).
    Sweeps until the off-diagonal mass is below 1e-30 of the total (at most 50 sweeps)."""
    for a in range(n):
        for b in range(n):
            vec[a * n + b] = 1.0 if a == b else 0.0
    for _ in range(50):
        off = 0.0
        tot = 0.0
        for a in range(n):
            for b in range(n):
                x = mat[a * n + b] * mat[a * n + b]
                tot += x
                if a != b:
                    off += x
        if off <= 1e-30 * tot:
            break
        for pp in range(n - 1):
            for qq in range(pp + 1, n):
                apq = mat[pp * n + qq]
                if apq == 0.0:
                    continue
                theta = (mat[qq * n + qq] - mat[pp * n + pp]) / (2.0 * apq)
                t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))
                if theta < 0.0:
                    t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                sn = t * c
                for k in range(n):  # A <- A J (columns p, q)
                    akp = mat[k * n + pp]
                    akq = mat[k * n + qq]
                    mat[k * n + pp] = c * akp - sn * akq
                    mat[k * n + qq] = sn * akp + c * akq
                for k in range(n):  # A <- J^T A (rows p, q)
                    apk = mat[pp * n + k]
                    aqk = mat[qq * n + k]
                    mat[pp * n + k] = c * apk - sn * aqk
                    mat[qq * n + k] = sn * apk + c * aqk
                mat[pp * n + qq] = 0.0
                mat[qq * n + pp] = 0.0
                for k in range(n):  # V <- V J
                    vkp = vec[k * n + pp]
                    vkq = vec[k * n + qq]
                    vec[k * n + pp] = c * vkp - sn * vkq
                    vec[k * n + qq] = sn * vkp + c * vkq


_jacobi_eigh.python_impl = _jacobi_eigh.py_func  # the same rule from Python (tests)


@njit(cache=True, inline="always")
def _hybrid_terms(st, p, i, actions, tau, aux):
    """``action.mode: portfolio_hybrid``, row ``i`` at time to go ``tau``: the multipliers ``m_j =
    risk_multiplier_max^{a_j}`` of columns 0..F (aux ``risk_mult_*``), begv's A(t) for the penalty
    ``Sigma_m`` (:func:`risk_components`) and the total exposure x = q + q_e w: writes ``2 (A x)_a``
    to ``ph_scr[i, 2K + a]`` and ``A_aa`` to ``ph_scr[i, 3K + a]``.

    A is :func:`mmgym.baselines.portfolio.begv_A` evaluated here: ``A = D^{-1/2} V diag(m(lam,
    tau)) V^T D^{-1/2}`` with ``V diag(mu) V^T = D^{1/2} Sigma_m D^{1/2}``, ``lam = sqrt(gamma mu)``
    (:func:`begv_mode`). The eigendecomposition is cached per row and
    recomputed only when a multiplier changes. Eigendecomposition: :func:`_jacobi_eigh` (numba's
    LAPACK ``eigh`` allocates, which the kernels may not)."""
    kk = p.k_assets
    n = p.ph_n
    nf = n - 1
    base = i * kk
    same = True
    for j in range(n):
        m = np.exp(min(1.0, max(-1.0, actions[i, j])) * p.ph_lmax)
        aux[i, p.ph_aux0 + j] = m
        if m != st.ph_m[i, j]:
            same = False
            st.ph_m[i, j] = m
    if not same:
        mat = st.ph_mat[i]
        for a in range(kk):
            for b in range(kk):
                v = st.ph_m[i, nf] * p.ph_comp[nf * nf, a, b]
                for f in range(nf):
                    for g in range(nf):
                        v += np.sqrt(st.ph_m[i, f] * st.ph_m[i, g]) * p.ph_comp[f * nf + g, a, b]
                mat[a * kk + b] = p.ph_sq[a] * v * p.ph_sq[b]
        for a in range(kk):  # symmetric to rounding: as begv_A, the symmetrised matrix
            for b in range(a + 1, kk):
                sym = 0.5 * (mat[a * kk + b] + mat[b * kk + a])
                mat[a * kk + b] = sym
                mat[b * kk + a] = sym
        _jacobi_eigh(mat, st.ph_v[i], kk)
        sg = np.sqrt(p.ph_gamma)
        for j in range(kk):
            st.ph_lam[i, j] = sg * np.sqrt(max(mat[j * kk + j], 0.0))
    fe = float(st.factor_position[i])
    for j in range(kk):
        lam = st.ph_lam[i, j]
        mm = begv_mode(lam, np.tanh(lam * tau), p.ph_gamma, p.alpha)
        y = 0.0
        for b in range(kk):
            y += st.ph_v[i, b * kk + j] * (st.inventory[base + b] + fe * p.fi_w[b]) / p.ph_sq[b]
        st.ph_scr[i, j] = mm * y
        st.ph_scr[i, kk + j] = mm
    for a in range(kk):
        ax = 0.0
        aa = 0.0
        for j in range(kk):
            v = st.ph_v[i, a * kk + j]
            ax += v * st.ph_scr[i, j]
            aa += v * v * st.ph_scr[i, kk + j]
        st.ph_scr[i, 2 * kk + a] = 2.0 * ax / p.ph_sq[a]
        st.ph_scr[i, 3 * kk + a] = aa / (p.ph_sq[a] * p.ph_sq[a])


@njit(cache=True, inline="always")
def _liquidation_cost(st, p, i):
    """The permanent-impact cost of liquidating row ``i``'s position at the final mark,
    ``1/2 q^T G q`` (Almgren & Chriss 2000 sec. 2: a linear permanent impact ``g`` costs ``1/2 g X^2``
    on any liquidation path of X lots; here the straight-line path through the cross-impact G, whose
    cost is the quadratic form of G's symmetric part). With a factor instrument the position is
    ``y = (q, q_e)`` and the impact matrix of the K + 1 instruments' prices ``[[G, g_e], [w^T G,
    w^T g_e]]``: ``1/2 [q^T G q + q_e (g_e + G^T w)^T q + q_e^2 w^T g_e]``. Module docstring, "The
    final mark"."""
    kk = p.k_assets
    base = i * kk
    tot = 0.0
    for a in range(kk):
        qa = st.inventory[base + a]
        if qa != 0:
            gq = 0.0
            for b in range(kk):
                gq += p.perm[a, b] * st.inventory[base + b]
            tot += qa * gq
    if p.fi_on:
        qe = float(st.factor_position[i])
        cross = 0.0
        for a in range(kk):
            cross += (p.fi_g[a] + p.fi_gtw[a]) * st.inventory[base + a]
        tot += qe * cross + qe * qe * p.fi_wg
    return 0.5 * tot


@njit(cache=True, inline="always")
def _adds_risk_beyond(x, x_new, limit):
    """A trade taking a limited quantity from ``x`` to ``x_new`` is refused: ``|x_new| > limit``
    and ``|x_new| > |x|`` (a trade back towards 0 is always allowed)."""
    return abs(x_new) > limit and abs(x_new) > abs(x)


@njit(cache=True, inline="always")
def _exposure(st, p, i, aux, ep_stats):
    """Without limits: row ``i``'s inventories and factor exposure after the step (aux), and the
    episode's largest |exposure|; no alerts."""
    kk = p.k_assets
    base = i * kk
    e = 0.0
    for a in range(kk):
        q = st.inventory[base + a]
        e += p.fac_b[a] * q
        aux[i, AUX_ASSET0 + a * N_PER_ASSET_AUX + PA_INVENTORY] = q
    if p.fi_on:
        e += p.fac_bw * st.factor_position[i]
        aux[i, AUX_FACTOR_POS] = st.factor_position[i]
    aux[i, AUX_FACTOR] = e
    ae = abs(e)
    ep_stats[i, ST_MAX_FACTOR] = max(ep_stats[i, ST_MAX_FACTOR], ae)


@njit(cache=True, inline="always")
def _alerts(st, p, i, aux, ep_stats, lf):
    """Row ``i``'s alerts after the step: a limit is breached when ``|value| > limit`` and
    near-breached (warn) when ``warn_at limit <= |value| <= limit``; per-asset and factor flags,
    the counts and their episode sums."""
    kk = p.k_assets
    base = i * kk
    n_b = 0
    n_w = 0
    e = 0.0
    for a in range(kk):
        c = AUX_ASSET0 + a * N_PER_ASSET_AUX
        q = st.inventory[base + a]
        e += p.fac_b[a] * q
        aq = abs(q)
        lim = aux[i, c + PA_LIMIT]
        br = aq > lim
        wn = (not br) and aq >= p.warn_at * lim
        aux[i, c + PA_INVENTORY] = q
        aux[i, c + PA_BREACH] = 1.0 if br else 0.0
        aux[i, c + PA_WARN] = 1.0 if wn else 0.0
        n_b += br
        n_w += wn
    if p.fi_on:
        e += p.fac_bw * st.factor_position[i]
        aux[i, AUX_FACTOR_POS] = st.factor_position[i]
    ae = abs(e)
    br = ae > lf
    wn = (not br) and ae >= p.warn_at * lf
    aux[i, AUX_FACTOR] = e
    aux[i, AUX_BREACH_FACTOR] = 1.0 if br else 0.0
    aux[i, AUX_WARN_FACTOR] = 1.0 if wn else 0.0
    n_b += br
    n_w += wn
    aux[i, AUX_ALERTS_BREACH] = n_b
    aux[i, AUX_ALERTS_WARN] = n_w
    if n_b > 0:
        ep_stats[i, ST_ALERTS_BREACH] += n_b
    if n_w > 0:
        ep_stats[i, ST_ALERTS_WARN] += n_w
    ep_stats[i, ST_MAX_FACTOR] = max(ep_stats[i, ST_MAX_FACTOR], ae)


@entry
def step(tr, st, p, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` (module docstring) and autoreset finished ones.

    Returns:
        -1, or the first row whose action is NaN or infinite (nothing is stepped then).
    """
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    kk = p.k_assets
    n_steps = p.n_steps
    pr = RewardConsts(p.phi, p.alpha, 0.0, False, 0.0)
    offsets = p.mode == MODE_OFFSETS
    hybrid = p.mode == MODE_AS_HYBRID
    ph = p.mode == MODE_PORTFOLIO_HYBRID
    decay = p.vol_decay
    aux = out.aux
    for i in range(lo, hi):
        base = i * kk
        r0 = tr.rng[i, 0]
        r1 = tr.rng[i, 1]
        cash = st.cash[i]
        w_before = cash
        if p.fi_on:  # wealth counts the instrument at w^T S: sum_a (q_a + q_e w_a) S_a
            fe = float(st.factor_position[i])
            for a in range(kk):
                w_before += (st.inventory[base + a] + fe * p.fi_w[a]) * st.mid[base + a]
        else:
            for a in range(kk):
                w_before += st.inventory[base + a] * st.mid[base + a]
        fb_tot = 0
        fa_tot = 0
        spread_sum = 0.0
        n_two = 0
        lf = np.inf
        e = 0.0
        if p.lim_on:
            lf, e = _limits_in_force(tr, st, p, i, aux)
        impact = 0.0
        lots = 0
        if p.trades:  # market orders: the agent's (action.hedge), then flatten's, in one per asset
            e = _agent_orders(st, p, i, aux, actions, e)
            if p.flatten:
                e = _flatten(st, p, i, aux, lf, e)
            cash, impact, lots = _execute(st, p, i, aux, cash)
        g_o = np.nan
        sk_o = np.nan
        if ph:  # begv's quote terms for the chosen multipliers (after the market orders)
            _hybrid_terms(st, p, i, actions, (n_steps - tr.step[i]) * p.dt, aux)
            g_o = st.ph_m[i, 0]
            sk_o = 0.0
        for a in range(kk):
            s = st.mid[base + a]
            q = st.inventory[base + a]
            x_b = actions[i, a] if not ph else 0.0
            x_a = actions[i, kk + a] if not ph else 0.0
            gamma = np.nan
            skew = np.nan
            if offsets:
                d_b = p.offset_min + (min(1.0, max(-1.0, x_b)) + 1.0) * p.offset_half_span
                d_a = p.offset_min + (min(1.0, max(-1.0, x_a)) + 1.0) * p.offset_half_span
            elif hybrid:  # AS 2008 eqs. (29)-(30) per asset with its own sigma_a^2, k_a (quotes.py)
                gamma = np.exp(p.lg_min + 0.5 * (min(1.0, max(-1.0, x_b)) + 1.0) * p.lg_span)
                skew = min(1.0, max(-1.0, x_a)) * p.skew_max
                l_side = np.log(1.0 + gamma / p.k[a]) / gamma
                tau = (n_steps - tr.step[i]) * p.dt
                d_b, d_a = as_depths(q, gamma, p.sig2[a], tau, skew, l_side, l_side)
                if p.spread:
                    extra = p.spread_min + (min(1.0, max(-1.0, actions[i, 2 * kk + a])) + 1.0) * p.spread_half_span
                    d_b += extra
                    d_a += extra
            elif ph:  # begv's rule (BEGV 2021; baselines/portfolio.py) plus the chosen skew
                skew = min(1.0, max(-1.0, actions[i, p.ph_n + a])) * p.skew_max
                sk_o += skew / kk
                half = p.ph_inv_k[a] + st.ph_scr[i, 3 * kk + a]
                two_ax = st.ph_scr[i, 2 * kk + a]
                d_b = half + two_ax - skew
                d_a = half - two_ax + skew
            else:
                d_b = x_b
                d_a = x_a
            fb, fa, quote_b, quote_a, r0, r1 = exponential_fills(
                q, d_b, d_a, p.q_max[a], False, p.a_dt[a], p.a_dt[a], p.ln_a_dt[a], p.ln_a_dt[a],
                p.k[a], p.k[a], r0, r1)
            if p.suppress:  # the side that would add risk beyond a limit does not quote (same draws)
                lim = aux[i, AUX_ASSET0 + a * N_PER_ASSET_AUX + PA_LIMIT]
                b_a = p.fac_b[a]
                if _adds_risk_beyond(q, q + 1, lim) or _adds_risk_beyond(e, e + b_a, lf):
                    quote_b = False
                    fb = np.int64(0)
                if _adds_risk_beyond(q, q - 1, lim) or _adds_risk_beyond(e, e - b_a, lf):
                    quote_a = False
                    fa = np.int64(0)
                e += b_a * (fb - fa)
            cash += fa * (s + d_a) - fb * (s - d_b) - p.maker_fee * (fb + fa)
            st.inventory[base + a] = q + fb - fa
            fb_tot += fb
            fa_tot += fa
            if quote_b and quote_a:
                spread_sum += d_b + d_a
                n_two += 1
            c = AUX_ASSET0 + a * N_PER_ASSET_AUX
            aux[i, c] = d_b if quote_b else np.nan
            aux[i, c + 1] = d_a if quote_a else np.nan
            aux[i, c + 2] = fb
            aux[i, c + 3] = fa
            aux[i, c + 4] = s
            aux[i, c + 5] = gamma
            aux[i, c + 6] = skew
            tr.last_fills[base + a, 0] = fb
            tr.last_fills[base + a, 1] = fa
        # the mids: K normals after every fill variate, dS = sqrt(dt) L z
        for a in range(kk):
            z, r0, r1 = zig_normal(r0, r1)
            st.noise[base + a] = z
        chol = p.chol_dt
        pen = p.pen
        cov = p.cov
        if p.rg_n > 0:  # this step's regime moves the mids; then one uniform: the next regime
            r_now = st.regime[i]
            chol = p.rg_chol[r_now]
            pen = p.rg_pen[r_now]
            cov = p.rg_cov[r_now]
            r_next, r0, r1 = next_regime(r0, r1, p.rg_cum, r_now)
            st.regime[i] = r_next
        tr.rng[i, 0] = r0
        tr.rng[i, 1] = r1
        # the total exposure x' = q' + q_e w (x' = q' without a factor instrument)
        fe = float(st.factor_position[i])
        for a in range(kk):
            st.exposure[base + a] = st.inventory[base + a] + fe * p.fi_w[a]
        w_after = cash
        risk = 0.0
        var = 0.0
        noise = 0.0  # sum_a x'_a dS_a: the mids are driftless, every move is noise
        for a in range(kk):
            ds = 0.0
            for b in range(kk):
                ds += chol[a, b] * st.noise[base + b]
            s_new = st.mid[base + a] + ds
            st.mid[base + a] = s_new
            qa = st.exposure[base + a]
            w_after += qa * s_new
            noise += qa * ds
            tr.mid_ret[base + a] = ds
            v = tr.vol_var[base + a]
            tr.vol_var[base + a] = v + decay * (ds * ds - v)
            for b in range(kk):
                qb = st.exposure[base + b]
                risk += qa * pen[a, b] * qb
                var += qa * cov[a, b] * qb
        if p.rg_n > 0:
            c01 = st.corr_cov[i]
            st.corr_cov[i] = c01 + decay * (tr.mid_ret[base] * tr.mid_ret[base + 1] - c01)
        st.cash[i] = cash
        k_step = tr.step[i] + 1
        last = k_step >= n_steps
        if last and p.perm_on:  # the final mark: the liquidation value under the permanent impact
            liq = _liquidation_cost(st, p, i)
            w_after -= liq
            impact += liq
        two = n_two > 0
        o = Outcome(w_after - w_before, impact, p.maker_fee * (fb_tot + fa_tot), np.sqrt(max(risk, 0.0)),
                    0.0, w_after - tr.wealth0[i], np.nan, np.nan, two, two, np.nan, np.nan, g_o,
                    sk_o, lots, fb_tot, fa_tot, np.nan, spread_sum / n_two if two else 0.0, p.dt,
                    np.nan)
        record(out, tr.ep_stats, i, o, pr, last, ph)
        aux[i, AUX_VARIANCE] = var
        aux[i, AUX_NOISE] = noise
        if p.lim_on:
            _alerts(st, p, i, aux, tr.ep_stats, lf)
        else:
            _exposure(st, p, i, aux, tr.ep_stats)
        tr.step[i] = k_step
        out.done[i] = last
        if last:
            _write_obs(tr, st, p, i, k_step, out.final_obs)
            finish(out, tr.ep_stats, i, k_step)
            _reset_row(tr, st, p, i)
            k_step = 0
        _write_obs(tr, st, p, i, k_step, out.obs)
    return -1


@entry
def reset(mask, tr, st, p, out):
    """Reset the rows where ``mask`` is true (statistics zeroed) and write their observations."""
    for i in range(mask.shape[0]):
        if mask[i]:
            for j in range(tr.ep_stats.shape[1]):
                tr.ep_stats[i, j] = 0.0
            _reset_row(tr, st, p, i)
            _write_obs(tr, st, p, i, 0, out.obs)


# ------------------------------------------------------------------------ declaration ---
class PortfolioScenario(Scenario):
    """K correlated intensity markets (module docstring)."""

    id = ENV_ID
    config_class = PortfolioEnvConfig
    #: ``gym.make(id)`` without a config: configs/portfolio2.yaml's penalties (phi > 0: begv needs one)
    defaults = {"reward": {"inventory_penalty": 0.05, "terminal_penalty": 2.5e-5}}
    aux = aux_columns(1)
    obs = obs_columns(K_MAX)  # the widest; a config's is its prefix (:meth:`obs_columns`)
    num_assets = 1  # the class default; a config's K: :meth:`assets`
    state_fields = ("mid", "cash", "inventory", "factor_position", "regime", "corr_cov", "step", "vol_var",
                    "mid_ret", "wealth0")
    per_asset_fields = ("mid", "inventory", "noise", "exposure")
    step_kernel = staticmethod(step)
    reset_kernel = staticmethod(reset)
    parallel_kernel = None
    sized_step_kernel = None
    stats = STAT_COLUMNS
    default_baselines = ("as", "glft", "begv", "optimal")
    dp_exact = True

    def assets(self, config):
        return int(config.portfolio.assets)

    def aux_columns(self, config):
        mult = risk_components(config.portfolio)[1] if config.action.mode == "portfolio_hybrid" else ()
        return aux_columns(self.assets(config), mult)

    def obs_columns(self, config):
        return obs_columns(*_obs_args(config))

    def action_layout(self, config, raw_depths=False):
        """The base layout; with a factor instrument the market-order slice has K + 1 columns (the
        last one the instrument's); with normalised ``portfolio_hybrid`` actions ``bid`` is the F + 1
        multipliers and ``ask`` the K skews."""
        lay = super().action_layout(config, raw_depths)
        k = self.assets(config)
        nm = _n_multipliers(config, raw_depths)
        if nm:
            h = nm + k
            lay = lay._replace(bid=slice(0, nm), ask=slice(nm, h),
                               hedge=slice(h, h + k) if lay.hedge is not None else None)
        if config.portfolio.factor_instrument is not None and lay.hedge is not None:
            lay = lay._replace(hedge=slice(lay.hedge.start, lay.hedge.stop + 1))
        return lay

    def action_space(self, config, raw_depths=False):
        box = super().action_space(config, raw_depths)
        k = self.assets(config)
        nm = _n_multipliers(config, raw_depths)
        dim = box.shape[0] + (nm - k if nm else 0) + (config.portfolio.factor_instrument is not None)
        if dim == box.shape[0]:
            return box
        return spaces.Box(box.low.flat[0], box.high.flat[0], shape=(dim,), dtype=box.dtype)

    def check(self, config):
        from ..config import ConfigError

        m, a, r = config.market, config.action, config.reward
        bad = [("action.quote_size", a.quote_size, a.quote_size != 0, "0"),
               ("market.fill_rule", m.fill_rule, m.fill_rule != "linear", "'linear'"),
               ("market.tick_size", m.tick_size, m.tick_size != 0.0, "0"),
               ("market.adverse_jump", m.adverse_jump, m.adverse_jump != 0.0, "0"),
               ("market.mid_noise", m.mid_noise, m.mid_noise != "gaussian", "'gaussian'"),
               ("market.q0", m.q0, m.q0 != 0, "0 (every episode starts flat)"),
               ("reward.objective", r.objective, r.objective != "risk_neutral", "'risk_neutral'"),
               ("reward.dampening", r.dampening, r.dampening != 0.0, "0"),
               ("reward.risk_penalty", r.risk_penalty, r.risk_penalty != "time", "'time'"),
               ("reward.taker_fee", r.taker_fee, r.taker_fee != 0.0, "0")]
        for key, value, wrong, must in bad:
            if wrong:
                raise ConfigError(f"{key}: {ENV_ID} supports only {must} (got {value!r})")
        flatten = config.limits.enabled and config.limits.on_breach == "flatten"
        if not (flatten or a.hedge):  # the impact section prices market orders only
            for key in ("half_spread", "eta", "nu"):
                if getattr(config.impact, key) != 0.0:
                    raise ConfigError(f"impact.{key}: {ENV_ID} uses it only with market orders (action.hedge "
                                      f"or limits.on_breach: flatten; got {getattr(config.impact, key)!r})")
            if config.portfolio.cross_impact is not None:
                raise ConfigError(f"portfolio.cross_impact: {ENV_ID} uses it only with market orders "
                                  "(action.hedge or limits.on_breach: flatten)")
        if a.mode == "portfolio_hybrid" and config.portfolio.penalty != "portfolio":
            raise ConfigError(f"action.mode: portfolio_hybrid scales the begv penalty Sigma; it needs "
                              f"portfolio.penalty: portfolio (got {config.portfolio.penalty!r})")
        if a.mode == "portfolio_hybrid" and not r.inventory_penalty > 0.0:
            raise ConfigError(f"action.mode: portfolio_hybrid quotes by begv, which needs reward.inventory_penalty > 0 "
                              f"(got {r.inventory_penalty!r})")
        if config.portfolio.factor_instrument is not None and not a.hedge:
            raise ConfigError("portfolio.factor_instrument: needs the market-order action (action.hedge: true; "
                              "the instrument is traded by market orders only)")
        if config.portfolio.cross_impact is not None and config.impact.nu != 0.0:
            raise ConfigError(f"impact.nu: give either impact.nu (G = nu I) or portfolio.cross_impact, not both "
                              f"(got nu = {config.impact.nu!r})")
        # the market section gives the time grid only: a per-asset key set there would be ignored
        default = type(m)()
        for key in ("s0", "sigma", "A", "k", "A_bid", "A_ask", "k_bid", "k_ask", "max_inventory"):
            if getattr(m, key) != getattr(default, key):
                where = {"sigma": "covariance (or loadings)"}.get(key, key.split("_")[0] if key[1:2] == "_" else key)
                raise ConfigError(f"market.{key}: ignored by {ENV_ID} (per-asset parameters live in "
                                  f"portfolio.{where}; got {getattr(m, key)!r})")

    audit = True
    audit_columns = ("agent", "episode", "step", "asset", "side", "price", "qty", "mid", "inventory_after",
                     "cash_after")

    def audit_step(self, config, records, start, t, aux, col, cash0, inv0):
        """Per trade, in the kernel's order: the factor instrument's market order (``asset`` =
        ``"factor"``, price ``factor_mid -+ (its half_spread + eta |v_e|)``, ``mid`` = ``factor_mid``,
        inventory after = q_e), the market orders (``action.hedge`` and ``limits.on_breach:
        flatten``, one per asset, asset 0..K-1; price ``s -+ (half_spread + eta |v|)`` against the
        pre-trade mid ``s = quote_mid_a - (G v)_a - (g_e v_e)_a``, which is the row's ``mid``), then the passive fills (asset 0..K-1, bid then ask;
        price = quote_mid_a -+ depth_a, one lot, ``mid`` the asset's mid the quotes were computed
        from); each with the asset's inventory and the (shared) cash after it, fees included."""
        k = self.assets(config)
        maker = config.reward.maker_fee
        im = config.impact
        g = permanent_impact(config)
        fi = factor_instrument(config)
        cols = [(col[f"fill_bid_{a}"], col[f"fill_ask_{a}"], col[f"quote_mid_{a}"], col[f"depth_bid_{a}"],
                 col[f"depth_ask_{a}"], col[f"hedge_{a}"]) for a in range(k)]
        any_fill = np.zeros(aux.shape[0], dtype=bool)
        for fb, fa, _, _, _, ch in cols:
            any_fill |= (aux[:, fb] > 0) | (aux[:, fa] > 0) | (aux[:, ch] != 0)
        if fi is not None:
            any_fill |= aux[:, col["hedge_factor"]] != 0
        for i in np.flatnonzero(any_fill):
            cash = float(cash0[i])
            qs = [int(inv0[i, a]) for a in range(k)]
            vs = np.array([aux[i, c[5]] for c in cols])
            ds = g @ vs  # the permanent impact of this step's orders, in every mid
            if fi is not None:
                ve = int(aux[i, col["hedge_factor"]])
                ds = ds + fi.g * ve
                if ve != 0:
                    fmid = float(aux[i, col["factor_mid"]])
                    px = fmid + math.copysign(fi.half_spread + fi.eta * abs(ve), ve)
                    cash -= ve * px
                    records.append(("", start + i, t, "factor", "market_buy" if ve > 0 else "market_sell", px,
                                    abs(ve), fmid, int(aux[i, col["factor_position"]]), cash))
            for a, (_, _, cm, _, _, ch) in enumerate(cols):
                v = int(aux[i, ch])
                if v != 0:
                    s_pre = float(aux[i, cm]) - float(ds[a])
                    px = s_pre + math.copysign(im.half_spread + im.eta * abs(v), v)
                    cash -= v * px
                    qs[a] += v
                    records.append(("", start + i, t, a, "market_buy" if v > 0 else "market_sell", px, abs(v),
                                    s_pre, qs[a], cash))
            for a, (fb, fa, cm, cdb, cda, _) in enumerate(cols):
                q = qs[a]
                mid = float(aux[i, cm])
                if aux[i, fb] > 0:
                    px = mid - float(aux[i, cdb])
                    cash -= px + maker
                    q += 1
                    records.append(("", start + i, t, a, "bid", px, 1, mid, q, cash))
                if aux[i, fa] > 0:
                    px = mid + float(aux[i, cda])
                    cash += px - maker
                    q -= 1
                    records.append(("", start + i, t, a, "ask", px, 1, mid, q, cash))

    #: the sample episode's per-asset record (evaluation): inventory after the step, the mid the
    #: quotes were computed from, the quoted depths and the passive fills, each ``<prefix>_<a>``
    asset_path_columns: Mapping[str, str] = {
        "inventory": "inventory", "mid": "quote_mid", "depth_bid": "depth_bid",
        "depth_ask": "depth_ask", "fill_bid": "fill_bid", "fill_ask": "fill_ask"}

    def exposure_reader(self, config):
        """Exposures ``e = B^T x`` after the step, ``x = q' + q_e w`` the total exposure (lots;
        ``x = q'`` without a factor instrument, class docstring "Factor instrument") and B
        :func:`factor_matrix` (the loadings, or the first principal component when Sigma is given
        directly); ``e_0`` is the aux column ``factor_exposure``."""
        b, _ = factor_matrix(config.portfolio)
        fi = factor_instrument(config)
        k = self.assets(config)
        names = ([f"factor_{f}" for f in range(b.shape[1])] if config.portfolio.loadings is not None
                 else ["PC1"])

        def read(aux, col):
            x = aux[:, [col[f"inventory_{a}"] for a in range(k)]]
            if fi is not None:
                x = x + aux[:, col["factor_position"]][:, None] * fi.w
            return x @ b

        return names, read

    def has_alerts(self, config):
        return config.limits.enabled

    def alert_step(self, config, records, start, t, aux, col):
        """One dict per flagged limit: per asset ``value`` = q_a after the step against
        ``limit_a``, the factor's ``value`` = b_1^T q against ``limit_factor``."""
        k = self.assets(config)
        flagged = np.flatnonzero((aux[:, col["alerts_breach"]] > 0) | (aux[:, col["alerts_warn"]] > 0))
        for i in flagged:
            for a in range(k + 1):
                sfx = str(a) if a < k else "factor"
                kind = ("breach" if aux[i, col[f"breach_{sfx}"]] > 0 else
                        "warn" if aux[i, col[f"warn_{sfx}"]] > 0 else None)
                if kind is None:
                    continue
                value = aux[i, col[f"inventory_{a}"]] if a < k else aux[i, col["factor_exposure"]]
                records.append({"episode": int(start + i), "step": int(t), "asset": a if a < k else "factor",
                                "limit_name": "position" if a < k else "factor", "alert": kind,
                                "value": float(value), "limit": float(aux[i, col[f"limit_{sfx}"]])})

    def unused_aux(self, config, raw_depths=False):
        unused = {"bid_px", "ask_px", "depth_bid", "depth_ask", "gamma", "skew", "hedge_lots", "quote_mid"}
        k = self.assets(config)
        if raw_depths or config.action.mode != "as_hybrid":
            unused |= {f"gamma_{a}" for a in range(k)}
        if raw_depths or config.action.mode == "offsets":
            unused |= {f"skew_{a}" for a in range(k)}
        if raw_depths and config.action.mode == "portfolio_hybrid":
            unused |= {f"risk_mult_{n}" for n in risk_components(config.portfolio)[1]}
        if not config.limits.enabled:  # no limits: no alerts (the columns stay 0, the limits inf)
            unused |= {"limit_factor", "breach_factor", "warn_factor", "alerts_breach", "alerts_warn"}
            unused |= {f"{n}_{a}" for a in range(self.assets(config)) for n in ("limit", "breach", "warn")}
        if not (config.action.hedge or (config.limits.enabled and config.limits.on_breach == "flatten")):
            unused |= {f"hedge_{a}" for a in range(self.assets(config))}
        if config.portfolio.factor_instrument is None:
            unused |= {"hedge_factor", "factor_mid", "factor_position"}
        return frozenset(unused)

    def model_note(self, config):
        return None

    def baselines(self):
        from ..baselines.portfolio import PORTFOLIO_BASELINES

        return PORTFOLIO_BASELINES

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs)

    def observation_space(self, config):
        k = self.assets(config)
        block_lo, block_hi = [-1.0, 0.0, 0.0, 0.0, -10.0], [1.0, 10.0, 1.0, 1.0, 10.0]
        _, fac, reg = _obs_args(config)
        lo_x = [-1.0] * fac + ([-1.0] + [0.0] * reg if reg >= 0 else [])
        hi_x = [1.0] * fac + ([1.0] + [1.0] * reg if reg >= 0 else [])
        low = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, -10.0] + block_lo * (k - 1) + lo_x, dtype=np.float32)
        high = np.array([1.0, 1.0, 10.0, 1.0, 1.0, 10.0] + block_hi * (k - 1) + hi_x, dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)


SCENARIO = PortfolioScenario()


# ---------------------------------------------------------------------------- the envs ---
class PortfolioMarketMakingEnv(ScenarioEnv):
    r"""Market making in K correlated intensity markets (issue 11; Bergault, Evangelista, Guéant &
    Vieira 2021, sec. 2).

    ## Description

    The agent quotes a bid and an ask in each of K assets. Asset a fills at most one lot per side
    per step with ``p = min(1, A_a e^{-k_a delta} dt)`` (Avellaneda & Stoikov 2008 sec. 3),
    independently across sides and assets; the mids move jointly, ``dS = sqrt(dt) L z`` with
    ``L L^T = Sigma`` (``portfolio.covariance``, or the factor model ``B Sigma_f B^T +
    diag(sigma_eps^2)``). Step order: quotes, fills (asset by asset), mids, reward (module
    docstring of :mod:`mmgym.scenarios.portfolio`).

    ## Action Space

    ``Box(-1, 1, (2K,))`` (``(3K,)`` with ``action.spread``):

    - ``action.mode: offsets`` (default): columns 0..K-1 the bids of assets 0..K-1, K..2K-1 the
      asks, each ``delta = offset_min + (a+1)/2 (offset_max - offset_min)``.
    - ``action.mode: as_hybrid`` (the glass box, per asset): column a picks asset a's risk aversion
      ``gamma_a`` (log scale between ``gamma_min`` and ``gamma_max``), column K + a its skew
      ``a * skew_max``; the quotes are AS 2008 eqs. (29)-(30) with ``sigma_a^2 = Sigma_aa``, ``k_a``
      and the asset's own inventory (:func:`mmgym.sim.quotes.as_depths`); with ``action.spread``
      columns 2K + a add an extra half-spread per asset. ``info["gamma_a"]``, ``info["skew_a"]``.

    - ``action.mode: portfolio_hybrid`` (the glass box, per factor; ``Box(-1, 1, (F + 1 + K,))``):
      columns 0..F-1 a risk multiplier per factor and column F one for the idiosyncratic part,
      ``m_j = risk_multiplier_max^{a_j}`` (1 at a = 0), then K skews ``a * skew_max``. The quotes
      are begv's (Bergault, Evangelista, Guéant & Vieira 2021; :mod:`mmgym.baselines.portfolio`)
      for the penalty ``Sigma_m = B S Sigma_f S B^T + m_idio R``, ``S = diag(sqrt(m_f))``
      (:func:`risk_components`: a factor's multiplier scales its variance; with a covariance given
      directly F = 1, the top principal component, and R the rest), evaluated at the total exposure
      ``x = q + q_e w``, plus the skew on the reservation price: ``delta^b_a = 1/k_a + A_aa + 2 (A
      x)_a - skew_a``, ``delta^a_a = 1/k_a + A_aa - 2 (A x)_a + skew_a``. At multipliers 1 and skews 0
      they are ``begv``'s. A(t) is solved in the kernel (an in-place Jacobi eigendecomposition per
      row, cached while the row's multipliers do not change). ``info["risk_mult_<factor_f|idio>"]``,
      ``info["skew_a"]``; the ledger's ``gamma`` / ``skew`` statistics are the first factor's
      multiplier and the mean skew.

    ``action.hedge: true`` adds K columns after those: a market order in asset a of
    ``rint(a * hedge_max_lots)`` lots (positive buys), clipped to the inventory bound, traded at the
    start of the step before quoting (Almgren & Chriss 2000 linear temporary costs from the
    ``impact`` section; permanent impact ``dS = G v`` on every mid, ``portfolio.cross_impact`` or
    ``impact.nu I``); ``info["hedge_a"]``. With ``portfolio.factor_instrument`` one more column
    (the last of the market-order block): ``rint(a * hedge_max_lots)`` units of the factor
    instrument, clipped to ``|q_e| <= max_position``; ``info["hedge_factor"]``.

    The baselines use raw depths (``BatchMarket(..., raw_depths=True)``: K bid depths, K ask depths,
    then K order lots with the hedge action; ``as``, ``glft``, ``begv`` send none, the hedging rules
    ``begv_mv_hedge``, ``begv_threshold``, ``begv_eoq`` of :mod:`mmgym.baselines.portfolio_hedge`
    do). Quote sizes are refused (one line);
    ``limits.on_breach: flatten`` adds its orders to the agent's (one order per asset and step).

    ## Observation Space

    ``Box(float32, (5K + 1,))`` (``(5K + 2,)`` with the factor instrument): asset 0's block is the intensity market's six features (K = 1 is
    that env's observation), then five per further asset (``j = 6 + 5 (a - 1)``):

    | Num          | Observation                 | Normalisation                                   | Range     |
    |--------------|-----------------------------|-------------------------------------------------|-----------|
    | 0            | inventory q_0               | q_0 / Q_0                                       | [-1, 1]   |
    | 1            | time remaining              | (T - t) / T                                     | [0, 1]    |
    | 2            | realised volatility, asset 0| EWMA std of dS_0 / (sigma_0 sqrt(dt)), clipped  | [0, 10]   |
    | 3, 4         | last bid / ask fill, asset 0| 0 or 1                                          | {0, 1}    |
    | 5            | last mid change, asset 0    | dS_0 / (sigma_0 sqrt(dt)), clipped              | [-10, 10] |
    | j            | inventory q_a               | q_a / Q_a                                       | [-1, 1]   |
    | j+1          | realised volatility, asset a| as column 2                                     | [0, 10]   |
    | j+2, j+3     | last bid / ask fill, asset a| 0 or 1                                          | {0, 1}    |
    | j+4          | last mid change, asset a    | as column 5                                     | [-10, 10] |

    | 5K+1         | factor instrument position  | q_e / max_position (only with ``portfolio.factor_instrument``) | [-1, 1] |
    | c            | rolling correlation         | EWMA corr of dS_0, dS_1 (only with ``portfolio.correlation_regimes``) | [-1, 1] |
    | c+1 .. c+R   | correlation regime one-hot  | (only with ``correlation_regimes.observed``)    | {0, 1}    |

    ``c`` is 5K+1, or 5K+2 with the factor instrument.

    sigma_a = sqrt(Sigma_aa); the EWMA's half-life is ``observation.vol_halflife`` steps.

    ## Factor instrument

    ``portfolio.factor_instrument`` (:class:`FactorInstrumentConfig`; off by default; needs
    ``action.hedge``): an ETF or index future on the first factor whose price is the basket ``w^T S``
    (``w`` = ``weights``, default ``b_1 / sum(b_1)``, b_1 as for ``limits.factor``). A trade of
    ``v_e`` units executes at the pre-trade ``w^T S +- (h_e + eta_e |v_e|)`` (reward term
    ``impact``; ``half_spread``, ``eta``, default the ``impact`` section's) and then moves the asset
    mids by ``g_e v_e`` (``cross_impact``, default ``G w``: trading the basket moves the mids as
    trading its constituents would). The position ``q_e`` is part of the state
    (``get_attr("factor_position")``): wealth is ``cash + sum_a (q_a + q_e w_a) S_a``, the running
    and terminal penalties, ``portfolio_variance`` and the risk-equivalent inventory use the total
    exposure ``x = q + q_e w``, the factor exposure (limits, alerts) is ``b_1^T x``
    (``limits.on_breach: flatten`` trades the assets only), the audit records its trades as asset
    ``"factor"``, and the final mark charges its liquidation (module docstring, "The final mark").
    ``info``: ``hedge_factor``, ``factor_mid`` (its pre-trade price), ``factor_position``.

    ## Correlation regimes

    ``portfolio.correlation_regimes`` (:class:`CorrelationRegimesConfig`; off by default; K >= 2):
    R covariance matrices Sigma_r (``covariances``, or ``factor_vols`` per regime with the config's
    loadings and idiosyncratic vols) and transition rates; the regime follows the continuous-time
    Markov chain of :mod:`mmgym.scenarios.regimes` (Hamilton 1989's regime switching; one step's
    transition ``P = expm(Q dt)``, :func:`mmgym.scenarios.regimes.transition_matrix`, and its rule
    :func:`mmgym.scenarios.regimes.next_regime`: one uniform per step, drawn after the mid normals).
    Regime r_t moves step t's mids (``dS = sqrt(dt) L_r z``) and sets its penalty matrix (P_r =
    Sigma_r, or diag(Sigma_r) with ``penalty: per_asset``); the quote rules, the baselines and the
    observation's normalisation use the nominal Sigma. The observation gains the EWMA correlation
    of assets 0 and 1's mid changes, ``c / sqrt(v_0 v_1)`` with ``c <- c + d (dS_0 dS_1 - c)`` and
    the volatility features' EWMA variances v_a (the same weight d, ``observation.vol_halflife``;
    c restarts at the nominal Sigma_01 dt), and with ``observed: true`` the regime's one-hot.
    ``get_attr("regime")``.

    ## Rewards

    One number per env: ``r = sum_a (d cash_a + x'_a dS_a) - phi x'^T P x' dt - [last] alpha x'^T P x'``
    (``x' = q' + q_e w``, ``= q'`` without the factor instrument; with correlation regimes
    ``P = P_r`` of the step's regime);
    terms in ``info``: ``pnl`` (spread capture + revaluation, before fees), ``fees``
    (``-maker_fee`` per lot), ``inventory_penalty`` (``-phi q'^T P q' dt``,
    ``reward.inventory_penalty``), ``terminal_penalty`` (``-alpha q'^T P q'``,
    ``reward.terminal_penalty``), ``impact`` (market orders: ``-sum_a |v_a| (half_spread + eta
    |v_a|)``, their cost against the pre-trade mids; the permanent impact is in ``pnl`` as a mid
    move; on the last step also ``-1/2 q'^T G q'``, the liquidation's permanent impact at the final
    mark, Almgren & Chriss 2000 sec. 2, module docstring "The final mark"). ``P = Sigma`` (``portfolio.penalty: portfolio``) or
    ``diag(Sigma)`` (``per_asset``). ``info`` also carries ``portfolio_variance`` (``q'^T Sigma q'``),
    the totals ``fill_bid``/``fill_ask`` over assets, and per asset ``depth_bid_a``,
    ``depth_ask_a``, ``fill_bid_a``, ``fill_ask_a``, ``quote_mid_a``.

    The episode statistics are the ledger's; its inventory statistics (``abs_inventory_sum``,
    ``max_abs_inventory``, ``final_inventory``) are of the risk-equivalent inventory
    ``sqrt(q'^T P q')`` (price per sqrt(time unit)), the quantity the penalty squares.

    ## Risk limits and alerts

    ``limits:`` (:class:`LimitsConfig`; none by default). Limits in force on a step (from the
    state before it): position ``L_a s_a`` on ``|q_a|`` and factor ``L_f min_{a: b_a != 0} s_a`` on
    ``|e|``, ``e = b_1^T q`` (``b_1`` the first column of ``portfolio.loadings``, or the unit top
    eigenvector of Sigma when Sigma is given directly), ``s_a = min(1, sigma_ref_a / sigma_hat_a)``
    with ``limits.vol_scaling`` (``sigma_hat_a = sqrt(EWMA of dS_a^2 / dt)``, observation column
    "realised volatility" times sigma_a; ``sigma_ref_a`` = ``limits.vol_ref``, default sigma_a), else
    1. ``on_breach``: ``suppress`` (a side whose fill would take ``|q_a|`` or ``|e|`` beyond its
    limit and further from 0 does not quote), ``flatten`` (market orders back inside the limits at
    the start of the step, reward term ``impact``, ``info["hedge_a"]``; quotes not suppressed) or
    ``alert`` (nothing enforced). After the step, ``info`` has per limit ``limit_a`` /
    ``limit_factor``, ``breach_a`` / ``breach_factor`` (``|value| > limit``), ``warn_a`` /
    ``warn_factor`` (``warn_at limit <= |value| <= limit``), ``inventory_a``, ``factor_exposure``,
    and the counts ``alerts_breach``, ``alerts_warn``; the episode statistics sum them
    (``alerts_breach``, ``alerts_warn``) and keep ``max_abs_factor_exposure``.

    ## Starting State

    mids ``portfolio.s0``, cash 0, every q_a = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps; never truncated.

    ## Arguments

    ``gym.make("mmgym/PortfolioMarketMaking-v0", config=None, **overrides)`` as every mmgym env
    (``portfolio={"assets": 3, "covariance": [...]}``).

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class PortfolioMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/PortfolioMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID
