"""The environment's shared config sections and the base of every scenario's env config.

Each section is a :class:`Section`: unknown keys rejected, a docstring per field (``describe()``
prints them), assignments validated. A scenario's env config is :class:`EnvConfig` or a subclass
that adds the scenario's own sections (``mmgym.scenarios.lob.LOBEnvConfig`` adds ``book``); the
experiment schema (:mod:`mmgym.config`) picks the class from ``env.id``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Section", "MarketConfig", "ImpactConfig", "RewardConfig", "ActionConfig",
           "ObservationConfig", "EnvConfig", "DEFAULT_ENV_ID"]

#: The env of a config that names none.
DEFAULT_ENV_ID = "mmgym/MarketMaking-v0"


class Section(BaseModel):
    """A config section: unknown keys rejected, attribute docstrings as field descriptions,
    assignments validated."""

    # allow_inf_nan=False: a non-finite number (``--set market.sigma=.inf``) is refused here, with
    # the key path, instead of failing later inside a kernel
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)


# --------------------------------------------------------------------------------------- env ---
class MarketConfig(Section):
    """The intensity market of Avellaneda & Stoikov (2008); defaults are the paper's set-up."""

    s0: float = 100.0
    """Initial mid price (price units)."""
    sigma: float = Field(2.0, ge=0.0)
    """Volatility of the arithmetic Brownian mid, price units per sqrt(time unit)."""
    A: float = Field(140.0, gt=0.0)
    """Fill intensity at zero depth, lambda(delta) = A exp(-k delta), fills per time unit."""
    k: float = Field(1.5, gt=0.0)
    """Decay of the fill intensity with depth, per price unit."""
    A_bid: float | None = Field(None, gt=0.0)
    """Bid-side A (defaults to ``A``)."""
    A_ask: float | None = Field(None, gt=0.0)
    """Ask-side A (defaults to ``A``)."""
    k_bid: float | None = Field(None, gt=0.0)
    """Bid-side k (defaults to ``k``)."""
    k_ask: float | None = Field(None, gt=0.0)
    """Ask-side k (defaults to ``k``)."""
    dt: float = Field(0.005, gt=0.0)
    """Length of one step (time units)."""
    horizon: float = Field(1.0, gt=0.0)
    """Episode length T (time units); the episode has round(horizon/dt) steps."""
    fill_rule: Literal["linear", "poisson"] = "linear"
    """Per-step fill probability: 'linear' p = min(1, A e^{-k d} dt) (AS 2008), 'poisson' p = 1 - exp(-A e^{-k d} dt)."""
    max_inventory: int = Field(25, ge=1)
    """Inventory bound Q: |q| <= Q; a side whose fill would breach it does not quote."""
    tick_size: float = Field(0.0, ge=0.0)
    """Price tick; quotes are rounded away from the mid to the tick grid. 0 means continuous prices."""
    mid_noise: Literal["gaussian", "binomial"] = "gaussian"
    """Mid increment sigma sqrt(dt) Z with Z ~ N(0,1) ('gaussian') or Z = +-1 w.p. 1/2 ('binomial', AS 2008)."""
    q0: int = 0
    """Initial inventory (lots)."""
    adverse_jump: float = Field(0.0, ge=0.0)
    """Adverse selection, jump on fill xi (Guéant, Lehalle & Fernandez-Tapia 2013, sec. 5): after each step's fills the mid also moves by xi (F_ask - F_bid), F our own fills (0 or 1) this step (price units; 0: off)."""

    @model_validator(mode="after")
    def _check(self) -> MarketConfig:
        steps = self.horizon / self.dt
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps) or round(steps) < 1:
            raise ValueError(f"horizon/dt must be a positive integer number of steps, got {steps:g}")
        if abs(self.q0) > self.max_inventory:
            raise ValueError(f"|q0| = {abs(self.q0)} exceeds max_inventory = {self.max_inventory}")
        return self

    @property
    def n_steps(self) -> int:
        """Steps per episode, round(horizon / dt)."""
        return int(round(self.horizon / self.dt))

    def side_params(self) -> tuple[float, float, float, float]:
        """(A_bid, A_ask, k_bid, k_ask) with per-side overrides applied."""
        return (
            self.A if self.A_bid is None else self.A_bid,
            self.A if self.A_ask is None else self.A_ask,
            self.k if self.k_bid is None else self.k_bid,
            self.k if self.k_ask is None else self.k_ask,
        )


class ImpactConfig(Section):
    """Market orders (the hedge action) in the linear Almgren & Chriss (2000) form."""

    half_spread: float = Field(0.0, ge=0.0)
    """Half-spread paid per lot by a market order, on top of impact (price units)."""
    eta: float = Field(0.0, ge=0.0)
    """Temporary impact: a market order of v lots executes at mid +- (half_spread + eta v)."""
    nu: float = Field(0.0, ge=0.0)
    """Permanent impact: a market order of v lots moves the mid by nu v."""


class RewardConfig(Section):
    """Reward = change in marked-to-market wealth minus risk penalties (each term reported in info)."""

    inventory_penalty: float = Field(0.0, ge=0.0)
    """Running penalty phi: each step pays phi q^2 dt on post-fill inventory (CJP 2015, ch. 10)."""
    terminal_penalty: float = Field(0.0, ge=0.0)
    """Terminal penalty alpha: the last step pays alpha q_T^2 (CJP 2015, ch. 10)."""
    maker_fee: float = 0.0
    """Fee per lot filled passively (negative for a rebate)."""
    taker_fee: float = 0.0
    """Fee per lot traded with a market order."""
    objective: Literal["risk_neutral", "cara"] = "risk_neutral"
    """'risk_neutral': wealth increments; 'cara': the terminal reward is the CARA utility (1 - e^{-g W})/g of the episode's wealth change W."""
    cara_gamma: float = Field(0.1, gt=0.0)
    """Risk aversion g of the CARA terminal utility (objective: cara)."""
    dampening: float = Field(0.0, ge=0.0)
    """Asymmetric dampening eta of Spooner et al. (2018): each step also pays max(0, eta q dS)."""
    risk_penalty: Literal["time", "variance"] = "time"
    """What the running penalty charges per step: 'time', phi q^2 dt; 'variance', phi q^2 Var_t(dS)/sigma^2 with the step's actual price variance (a regime's sigma_r^2 dt, plus a scheduled event's jump variance on its step) and sigma = market.sigma (> 0). The two agree when nothing varies."""


class ActionConfig(Section):
    """How the agent's normalised action in [-1, 1] becomes quotes."""

    mode: Literal["as_hybrid", "offsets"] = "as_hybrid"
    """'as_hybrid': (risk aversion, skew) of the Avellaneda-Stoikov rule; 'offsets': raw depths (delta_b, delta_a)."""
    gamma_min: float = Field(0.01, gt=0.0)
    """as_hybrid: smallest risk aversion (action -1); gamma is log-scaled."""
    gamma_max: float = Field(2.0, gt=0.0)
    """as_hybrid: largest risk aversion (action +1)."""
    skew_max: float = Field(2.0, ge=0.0)
    """as_hybrid: the skew action shifts the reservation price by at most this (price units)."""
    spread: bool = False
    """as_hybrid: add a third action dimension, an extra half-spread c added to both depths (the c of as_tuned), c = spread_min + (a + 1)/2 (spread_max - spread_min). Lets the agent widen beyond what AS's gamma can (AS's half-spread is at most 1/k + gamma sigma^2 tau / 2, which vanishes near the horizon)."""
    spread_min: float = -0.5
    """as_hybrid with spread: c at action -1 (price units)."""
    spread_max: float = 2.0
    """as_hybrid with spread: c at action +1 (price units)."""
    offset_min: float = -1.0
    """offsets: depth at action -1 (price units; negative depths cross the mid)."""
    offset_max: float = 3.0
    """offsets: depth at action +1 (price units)."""
    hedge: bool = False
    """Add a last action dimension: a market order of round(a * hedge_max_lots) lots (positive buys)."""
    hedge_max_lots: int = Field(5, ge=1)
    """Largest market order per step (lots)."""

    @model_validator(mode="after")
    def _check(self) -> ActionConfig:
        if self.gamma_max < self.gamma_min:
            raise ValueError(f"gamma_max ({self.gamma_max}) < gamma_min ({self.gamma_min})")
        if self.offset_max <= self.offset_min:
            raise ValueError(f"offset_max ({self.offset_max}) <= offset_min ({self.offset_min})")
        if self.spread_max <= self.spread_min:
            raise ValueError(f"spread_max ({self.spread_max}) <= spread_min ({self.spread_min})")
        if self.spread and self.mode != "as_hybrid":
            raise ValueError(f"spread: the extra half-spread dimension is as_hybrid's (mode is {self.mode!r})")
        return self


class ObservationConfig(Section):
    """Observation features."""

    vol_halflife: float = Field(20.0, gt=0.0)
    """Half-life (steps) of the exponentially weighted realised-volatility estimate."""


class EnvConfig(Section):
    """The environment: which env and the parameters of its market, reward and action.

    The intensity market's config is this class; other scenarios subclass it with their own
    sections (their ``id`` fixed to their env id).
    """

    id: str = DEFAULT_ENV_ID
    """Registered environment id (``python -c "import mmgym.scenarios as s; print(list(s.REGISTRY))"``)."""

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        from .scenarios import REGISTRY

        if value not in REGISTRY:
            raise ValueError(f"unknown environment (registered: {', '.join(sorted(REGISTRY))})")
        return value

    market: MarketConfig = Field(default_factory=MarketConfig)
    """The market model."""
    impact: ImpactConfig = Field(default_factory=ImpactConfig)
    """Market-order costs."""
    reward: RewardConfig = Field(default_factory=RewardConfig)
    """Reward terms."""
    action: ActionConfig = Field(default_factory=ActionConfig)
    """Action mapping."""
    observation: ObservationConfig = Field(default_factory=ObservationConfig)
    """Observation features."""

    @model_validator(mode="after")
    def _variance_needs_sigma(self) -> EnvConfig:
        if self.reward.risk_penalty == "variance" and self.market.sigma <= 0.0:
            raise ValueError("reward.risk_penalty: 'variance' measures the step's price variance "
                             f"against market.sigma, which must be > 0 (got {self.market.sigma:g})")
        return self
