"""Analytic baselines and the exact discrete-time optimum, as batched raw-depth policies.

Every baseline maps ``(step, inventory)`` of N envs to raw depth actions
``(N, 2[+1]) = (delta_b, delta_a[, hedge_lots])`` for
:class:`~mmgym.envs.market.BatchMarket` with ``raw_depths=True``:

==========  ================================================================================
name        policy
==========  ================================================================================
as          Avellaneda & Stoikov (2008) eqs. (29)-(30), finite horizon
symmetric   the AS average spread, constant, centred on the mid (AS 2008 sec. 4 benchmark)
fixed       constant half-spread (``baselines.fixed_half_spread``, or the best one when None)
glft        Guéant, Lehalle & Fernandez-Tapia (2013) asymptotic closed form
glft_drift  GLFT 2013 sec. 5 drift-adjusted closed form at the observed alpha (alpha scenario)
cjp         Cartea, Jaimungal & Penalva (2015) ch. 10, exact continuous-time solution
optimal     exact optimum of the env's own discrete-time problem (backward DP over (t, q))
boundary    AS inside |q| <= band, market orders to flat beyond it (needs ``action.hedge``)
as_tuned    AS with the best (gamma, extra half-spread c) for this config (:mod:`.tuned`)
glft_tuned  GLFT with the best gamma for this config (:mod:`.tuned`)
book_model  the optimum of the book's probe-calibrated intensity model with informed fills
            (:mod:`.book_model`; the order book only; probes on the tuning streams, ~10 s)
begv        Bergault, Evangelista, Guéant & Vieira (2021), multi-asset (:mod:`.portfolio`)
begv_regime begv solved for the current correlation regime's covariance (:mod:`.portfolio`)
begv_tuned  begv with its penalty multipliers per factor tuned on the env (:mod:`.tuned`)
begv_*      begv plus market-order hedges: ``begv_mv_hedge``, ``begv_threshold``, ``begv_eoq``,
            ``begv_factor_hedge`` (the factor instrument) (:mod:`.portfolio_hedge`; multi-asset,
            ``action.hedge``)
==========  ================================================================================

Example:
    >>> from mmgym.config import load_config
    >>> from mmgym.baselines import make_baseline
    >>> cfg = load_config("configs/cjp.yaml")                        # doctest: +SKIP
    >>> policy = make_baseline("optimal", cfg.env, cfg.baselines)    # doctest: +SKIP
    >>> policy.v0                                                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

from ..config import BaselinesConfig, ConfigError, EnvConfig
from .analytic import GLFT, AvellanedaStoikov, GLFTDrift, FixedSpread, InventoryBoundary, SymmetricAS
from .base import DepthPolicy, MarketParams
from .cjp import CJP
from .optimal import (
    DPSolution,
    OptimalPolicy,
    evaluate_tables,
    inexact_reason,
    policy_value,
    solve_optimal,
)
from .tuned import TunedAS, TunedGLFT, TuningResult, make_tuned, tune

__all__ = [
    "BASELINES",
    "CJP",
    "DPSolution",
    "DepthPolicy",
    "FixedSpread",
    "GLFT",
    "GLFTDrift",
    "AvellanedaStoikov",
    "InventoryBoundary",
    "MarketParams",
    "OptimalPolicy",
    "SymmetricAS",
    "TunedAS",
    "TunedGLFT",
    "TuningResult",
    "evaluate_tables",
    "inexact_reason",
    "make_baseline",
    "make_tuned",
    "policy_value",
    "solve_optimal",
    "tune",
]

#: name -> builder(env_config, baselines_config)
BASELINES: dict[str, Callable[[EnvConfig, BaselinesConfig], DepthPolicy]] = {
    "as": lambda env, bc: AvellanedaStoikov(env, bc.gamma),
    "symmetric": lambda env, bc: SymmetricAS(env, bc.gamma),
    "fixed": lambda env, bc: FixedSpread(env, bc.fixed_half_spread),
    "glft": lambda env, bc: GLFT(env, bc.gamma),
    "glft_drift": lambda env, bc: GLFTDrift(env, bc.gamma),
    "cjp": lambda env, bc: CJP(env),
    "optimal": lambda env, bc: OptimalPolicy(env),
    "boundary": lambda env, bc: InventoryBoundary(env, bc.gamma, bc.boundary_band),
    "as_tuned": lambda env, bc: make_tuned("as_tuned", env, bc),
    "glft_tuned": lambda env, bc: make_tuned("glft_tuned", env, bc),
    "book_model": lambda env, bc: _book_model(env),
    "begv": lambda env, bc: _multi_asset_only("begv", env),
    "begv_regime": lambda env, bc: _multi_asset_only("begv_regime", env),
    "begv_tuned": lambda env, bc: _multi_asset_only("begv_tuned", env),
    "begv_mv_hedge": lambda env, bc: _multi_asset_only("begv_mv_hedge", env),
    "begv_threshold": lambda env, bc: _multi_asset_only("begv_threshold", env),
    "begv_eoq": lambda env, bc: _multi_asset_only("begv_eoq", env),
    "begv_factor_hedge": lambda env, bc: _multi_asset_only("begv_factor_hedge", env),
}


def _book_model(env_config: EnvConfig) -> DepthPolicy:
    """``book_model`` on a book config: probe calibration (:func:`mmgym.calibrate.calibrate_probes`,
    the config's fill rule, on the tuning streams, so no evaluation episode is a probe's), then
    :class:`.book_model.BookModelPolicy`."""
    from ..calibrate import calibrate_probes
    from ..envs.market import TUNING_STREAMS
    from ..scenarios.lob import ENV_ID as LOB_ID
    from .book_model import BookModelPolicy

    if env_config.id != LOB_ID:
        raise ConfigError(f"baseline 'book_model' is calibrated by probe quotes on the order book: it "
                          f"needs {LOB_ID} (env is {env_config.id})")
    return BookModelPolicy(env_config, calibrate_probes(env_config, spawn_key=TUNING_STREAMS))


def _multi_asset_only(name: str, env_config: EnvConfig) -> DepthPolicy:
    raise ConfigError(f"baseline {name!r} quotes several assets: it needs mmgym/PortfolioMarketMaking-v0 "
                      f"(env is {env_config.id})")


def make_baseline(name: str, env_config: EnvConfig, baselines_config: BaselinesConfig | None = None) -> DepthPolicy:
    """Build the baseline ``name`` for an environment.

    Raises:
        ConfigError: unknown name (the message lists the valid ones), or a baseline that does not
            apply to the env (``boundary`` without the hedge action, ``optimal`` with a CARA reward).
    """
    from ..scenarios import REGISTRY, get

    table = BASELINES
    if env_config.id in REGISTRY:
        table = get(env_config.id).baselines() or BASELINES  # a scenario with baselines of its own
    if name not in table:
        raise ConfigError(f"unknown baseline {name!r} for {env_config.id} (valid: {', '.join(table)})")
    return table[name](env_config, baselines_config if baselines_config is not None else BaselinesConfig())
