r"""``as_tuned`` and ``glft_tuned``: the best static member of a quoting family for *this* config.

A *family* is a closed-form quoting rule with free parameters; tuning picks the parameters with the
largest expected episode objective (the summed reward ``evaluate.py`` reports) on the env itself.

Families (``FAMILIES``):

* ``as_tuned``: Avellaneda & Stoikov (2008) eqs. (29)-(30) plus an extra half-spread ``c`` on both
  sides, parameters (gamma, c), with tau = T - t::

      delta_b = q gamma sigma^2 tau + gamma sigma^2 tau / 2 + (1/gamma) ln(1 + gamma/k_b) + c
      delta_a = -q gamma sigma^2 tau + gamma sigma^2 tau / 2 + (1/gamma) ln(1 + gamma/k_a) + c

  (``c`` may be negative; its range is ``baselines.tuning.c_min/c_max``, default [-1/k, 2/k]).
* ``glft_tuned``: the Guéant, Lehalle & Fernandez-Tapia (2013) asymptotic closed form (Math.
  Finan. Econ. 7, sec. 4), parameter gamma, with
  ``w = sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))``::

      delta_b = (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 w,   delta_a = (1/gamma) ln(1 + gamma/k) - (2q - 1)/2 w

* ``begv_tuned`` (the portfolio, :mod:`mmgym.baselines.portfolio`): Bergault, Evangelista, Guéant &
  Vieira (2021)'s closed form (``begv``) for the penalty ``Sigma_m`` of ``action.mode:
  portfolio_hybrid`` at constant multipliers, parameters ``m_factor_0 .. m_factor_{F-1}, m_idio``
  (:func:`~mmgym.scenarios.portfolio.hybrid_penalty`; factor f's variance scaled by m_f, the
  idiosyncratic part by m_idio), each on a log scale over ``[1/r, r]``, r =
  ``action.risk_multiplier_max``: the hybrid's constant actions ``a_j = ln m_j / ln r``, zero skews.
  Always simulated (the exact policy evaluation is single-asset); ``multiplier_points`` per
  multiplier on the coarse grid (odd: m = 1, begv itself, is a grid point, so the tuned score on
  the tuning set is never below begv's).

The first two are computed by the untuned baselines' classes (:class:`~mmgym.baselines.AvellanedaStoikov`,
:class:`~mmgym.baselines.GLFT`); ``c`` is added to their depths.

**The score of a candidate.** Where the (t, q) DP of :mod:`mmgym.baselines.optimal` is exact for
the env (``Scenario.dp_exact``, :func:`~mmgym.baselines.inexact_reason` None, a risk-neutral
objective), a candidate's depth tables over (t, q) are scored by exact policy evaluation,
:func:`~mmgym.baselines.evaluate_tables` V_0(q0): deterministic, no sampling noise. Elsewhere (the
order book, the OU mid, a tick with a mid off the tick grid, a CARA objective) it is the mean
summed reward of ``baselines.tuning.episodes`` simulated episodes on common random numbers, seeds
``baselines.tuning.seed + e`` (by default from 2**40 on) in the stream family
:data:`~mmgym.envs.market.TUNING_STREAMS` (the *tuning set*), the same for every candidate, so
the comparison between candidates is paired and the score is a deterministic function of the
parameters. **Seed families** (:meth:`~mmgym.envs.market.BatchMarket.seed_rows`' spawn key):
evaluation runs episode e on seed ``eval.seed + e`` with the empty key, training on
:data:`~mmgym.envs.market.TRAINING_STREAMS`, tuning on ``TUNING_STREAMS``; NumPy hashes the key
into the stream's entropy, so a tuning episode is never an evaluation episode whatever the seed
numbers (:func:`check_evaluation_seeds` still refuses overlapping seed numbers: a second guard,
and the rule a reader can check by eye). Its standard error is std/sqrt(n). The simulated optimum is the best
of many candidates on one sample, so its tuning-set mean is optimistic (a maximum of noisy
estimates): the unbiased figure is the evaluation on other seeds, which is why an evaluation may
not overlap the tuning set (:func:`check_evaluation_seeds`).

**The search** (per parameter: log scale for gamma, linear for c; coordinates scaled to [0, 1]):
a coarse grid (``gamma_points`` x ``c_points``), then from its best point a bounded refinement:
scipy's ``minimize_scalar(method="bounded")`` (Brent 1973, Algorithms for Minimization without
Derivatives, ch. 5: golden section with parabolic interpolation) on the bracket around it for one
parameter; scipy's Nelder-Mead with bounds (Nelder & Mead 1965, Comput. J. 7(4)) for two or more, with an
initial simplex one grid step wide. Exact scores are refined to 1e-6 of each range (Nelder-Mead
restarted once from its result); simulated ones to 1e-3 and a tenth of a standard error, below
which the tuning set resolves nothing. The answer is the best point evaluated. Results are cached in-process per (family, env config, ``baselines.tuning``, method),
so periodic evaluations during training tune once. Simulated results (minutes on the order book) are
also kept on disk (:func:`cache_dir`, ``baselines.tuning.disk_cache``), keyed by the same parts plus a
hash of mmgym's source files (:func:`source_hash`): any code change, of the simulator or of the
search, tunes afresh; an unreadable cache file is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import optimize

from ..config import BaselinesConfig, ConfigError, EnvConfig, TuningConfig
from ..envs.market import TUNING_STREAMS
from .analytic import GLFT, AvellanedaStoikov
from .base import DepthPolicy, MarketParams
from .optimal import evaluate_tables, inexact_reason, policy_value
from .portfolio import BEGVTuned

__all__ = ["FAMILIES", "Family", "Param", "TunedAS", "TunedGLFT", "TuningResult", "check_evaluation_seeds",
           "cache_dir", "clear_cache", "exact_unavailable", "make_tuned", "source_hash", "tune", "tuning_method"]

_CACHE_SIZE = 32
_CACHE: OrderedDict[str, TuningResult] = OrderedDict()
_XATOL = 1e-6  # in the [0, 1] coordinates of each parameter
_MAXFEV = 200  # per Nelder-Mead run
_EDGE = 1e-4  # an answer this close to 0 or 1 (coordinates) lies on its search bound


# ------------------------------------------------------------------------------ policies ---
class TunedAS(AvellanedaStoikov):
    """``as_tuned``: Avellaneda & Stoikov (2008) eqs. (29)-(30) plus an extra half-spread ``c``.

    ``delta_b = delta_b^AS + c`` and ``delta_a = delta_a^AS + c`` (module docstring), the AS depths
    computed by :class:`~mmgym.baselines.AvellanedaStoikov`.

    Args:
        config: the environment. gamma: risk aversion. c: extra half-spread (price units).
        tuning: the search that chose (gamma, c), recorded in :meth:`describe` (None: a candidate).
    """

    name = "as_tuned"

    def __init__(self, config: EnvConfig, gamma: float, c: float = 0.0, tuning: TuningResult | None = None):
        super().__init__(config, gamma)
        self.c = float(c)
        self.tuning = tuning

    def _depths(self, step, q):
        d_b, d_a = self._as_depths(step, q)
        return d_b + self.c, d_a + self.c

    def spread(self, step) -> np.ndarray:
        """AS 2008 eq. (30)'s total spread plus 2c."""
        return super().spread(step) + 2.0 * self.c

    def describe(self):
        out = {"name": self.name, "gamma": self.gamma, "c": self.c}
        if self.tuning is not None:
            out["tuning"] = self.tuning.describe()
        return out

    def report(self):
        return _with_seconds(self.describe(), self.tuning)


class TunedGLFT(GLFT):
    """``glft_tuned``: the GLFT (2013, sec. 4) asymptotic closed form at a tuned gamma
    (:class:`~mmgym.baselines.GLFT`, formulas in the module docstring).

    Args:
        config: the environment. gamma: risk aversion.
        tuning: the search that chose gamma, recorded in :meth:`describe` (None: a candidate).
    """

    name = "glft_tuned"

    def __init__(self, config: EnvConfig, gamma: float, tuning: TuningResult | None = None):
        super().__init__(config, gamma)
        self.tuning = tuning

    def describe(self):
        out = {"name": self.name, "gamma": self.gamma}
        if self.tuning is not None:
            out["tuning"] = self.tuning.describe()
        return out

    def report(self):
        return _with_seconds(self.describe(), self.tuning)


def _with_seconds(described: dict[str, Any], tuning: TuningResult | None) -> dict[str, Any]:
    if tuning is not None:
        described["tuning"]["seconds"] = tuning.seconds
    return described


# ------------------------------------------------------------------------------ families ---
@dataclass(frozen=True)
class Param:
    """One searched parameter: range [lo, hi], log scale or not, coarse-grid points."""

    name: str
    lo: float
    hi: float
    log: bool
    points: int
    #: the config keys that set (lo, hi), named when the answer lies on a bound; None:
    #: ``baselines.tuning.<name>_min`` / ``_max``
    bound_keys: tuple[str, str] | None = None

    def bound_key(self, upper: bool) -> str:
        """The config key of the lower or upper bound."""
        if self.bound_keys is not None:
            return self.bound_keys[int(upper)]
        return f"baselines.tuning.{self.name}_{'max' if upper else 'min'}"

    def value(self, u: float) -> float:
        """The parameter at coordinate u in [0, 1]."""
        u = min(1.0, max(0.0, float(u)))
        if self.log:
            return math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        return self.lo + u * (self.hi - self.lo)


@dataclass(frozen=True)
class Family:
    """A parameterised quoting rule: its searched parameters and its policy class.

    Attributes:
        name: the baseline name. policy: the class, built as ``policy(config, **params, tuning=...)``.
        space: ``(config, tuning config) -> tuple[Param, ...]``.
    """

    name: str
    policy: type[DepthPolicy]
    space: Callable[[EnvConfig, TuningConfig], tuple[Param, ...]]
    #: why its candidates are never scored by the (t, q) DP (None: exactly where the DP is exact)
    simulated: str | None = None


def _gamma(tc: TuningConfig) -> Param:
    return Param("gamma", tc.gamma_min, tc.gamma_max, True, tc.gamma_points)


def _as_space(config: EnvConfig, tc: TuningConfig) -> tuple[Param, ...]:
    k = MarketParams(config).k
    lo = -1.0 / k if tc.c_min is None else tc.c_min
    hi = 2.0 / k if tc.c_max is None else tc.c_max
    if hi <= lo:
        raise ConfigError(f"baselines.tuning: c range [{lo:g}, {hi:g}] is empty (c_min={tc.c_min}, "
                          f"c_max={tc.c_max}; None means -1/k and 2/k, 1/k = {1.0 / k:g})")
    return _gamma(tc), Param("c", lo, hi, False, tc.c_points)


def _begv_space(config: EnvConfig, tc: TuningConfig) -> tuple[Param, ...]:
    """``begv_tuned``: one multiplier per part of the portfolio's risk (factors, then the
    idiosyncratic part; :func:`~mmgym.scenarios.portfolio.risk_components`), each on a log scale over
    ``[1/r, r]``, r = ``action.risk_multiplier_max``: the range of ``portfolio_hybrid``'s constant
    actions a in [-1, 1]."""
    from ..scenarios.portfolio import risk_components

    if not hasattr(config, "portfolio"):
        raise ConfigError(f"begv_tuned quotes several assets: it needs mmgym/PortfolioMarketMaking-v0 (env is {config.id})")
    r = float(config.action.risk_multiplier_max)
    keys = ("action.risk_multiplier_max (1/r)", "action.risk_multiplier_max")
    return tuple(Param(f"m_{n}", 1.0 / r, r, True, tc.multiplier_points, keys)
                 for n in risk_components(config.portfolio)[1])


FAMILIES: dict[str, Family] = {
    "as_tuned": Family("as_tuned", TunedAS, _as_space),
    "glft_tuned": Family("glft_tuned", TunedGLFT, lambda config, tc: (_gamma(tc),)),
    "begv_tuned": Family("begv_tuned", BEGVTuned, _begv_space,
                         simulated="begv_tuned quotes K assets; the exact policy evaluation is single-asset"),
}


# ---------------------------------------------------------------------------- the result ---
@dataclass
class TuningResult:
    """The outcome of :func:`tune`.

    Attributes:
        family: the baseline name. params: the chosen parameters (``gamma``, and ``c`` for AS).
        objective: the chosen policy's score: exact V_0(q0), or the tuning-set mean.
        objective_se: its standard error (simulation), None when exact.
        method: ``"exact"`` or ``"simulation"``. not_exact: why not exact, when simulated.
        episodes, seed: the tuning set (simulation; None when exact). evaluations: candidates scored.
        bounds: name -> [lo, hi] searched. at_bound: the config keys of the bounds the answer lies
            on (``baselines.tuning.gamma_min``, ...): the best value may lie beyond them.
        seconds: wall time of the search. cached: read from the disk cache (:func:`cache_dir`).
    """

    family: str
    params: dict[str, float]
    objective: float
    objective_se: float | None
    method: str
    not_exact: str | None
    episodes: int | None
    seed: int | None
    evaluations: int
    bounds: dict[str, list[float]]
    at_bound: list[str]
    seconds: float
    cached: bool = False

    def describe(self) -> dict[str, Any]:
        """The search's record for results.json (without the wall time: it identifies nothing)."""
        out: dict[str, Any] = {"method": self.method, "objective": self.objective,
                               "objective_se": self.objective_se, "evaluations": self.evaluations,
                               "bounds": self.bounds, "at_bound": self.at_bound}
        if self.method == "simulation":
            out["episodes"] = self.episodes
            out["seeds"] = [self.seed, self.seed + self.episodes - 1]
            out["spawn_key"] = list(TUNING_STREAMS)  # the tuning streams, not evaluation's
            if self.not_exact is not None:
                out["not_exact"] = self.not_exact
        return out

    def summary(self) -> str:
        """One line: the parameters, the method and the score."""
        params = ", ".join(f"{k} = {v:.6g}" for k, v in self.params.items())
        if self.method == "exact":
            how = f"exact DP policy evaluation, objective {self.objective:.4f}"
        else:
            how = (f"simulation on {self.episodes} episodes, seeds {self.seed}..{self.seed + self.episodes - 1}, "
                   f"objective {self.objective:.4f} ± {self.objective_se:.4f} on those seeds")
        edge = f"; on the search bound {', '.join(self.at_bound)}" if self.at_bound else ""
        took = f"{self.seconds:.1f} s" + (f", read from {cache_dir()}" if self.cached else "")
        return f"{self.family}: {params} ({how}; {self.evaluations} candidates, {took}{edge})"


# --------------------------------------------------------------------------------- method ---
def exact_unavailable(config: EnvConfig) -> str | None:
    """Why a (t, q) policy's expected objective cannot be computed exactly for ``config``, or None.

    Exact means: the scenario is the DP's intensity market (``Scenario.dp_exact``), the DP is exact
    for the config (:func:`~mmgym.baselines.inexact_reason`) and it accepts the objective
    (:func:`~mmgym.baselines.evaluate_tables` refuses a CARA reward).
    """
    from ..scenarios import get as get_scenario

    if not get_scenario(config.id).dp_exact:
        return f"{config.id} is not the DP's intensity market"
    reason = inexact_reason(config)
    if reason is not None:
        return reason
    try:
        evaluate_tables(config, np.zeros(1), np.zeros(1))
    except ConfigError as exc:
        return str(exc)
    return None


def tuning_method(config: EnvConfig, tc: TuningConfig, simulated: str | None = None) -> tuple[str, str | None]:
    """``("exact" | "simulation", why not exact or None)`` for ``baselines.tuning.method``;
    ``simulated``: a family's reason never to score exactly (:attr:`Family.simulated`).

    Raises:
        ConfigError: ``method: exact`` on a config without exact policy evaluation.
    """
    reason = simulated if simulated is not None else exact_unavailable(config)
    if tc.method == "exact" and reason is not None:
        raise ConfigError(f"baselines.tuning.method=exact: no exact policy evaluation here ({reason})")
    if tc.method == "simulation" or reason is not None:
        return "simulation", reason
    return "exact", None


def check_evaluation_seeds(seed: int, episodes: int, tc: TuningConfig) -> None:
    """Refuse an evaluation whose seeds ``seed .. seed + episodes - 1`` overlap the tuning set.

    Raises:
        ConfigError: one line naming both ranges and the keys that set the tuning set.
    """
    t0, t1 = tc.seed, tc.seed + tc.episodes - 1
    if seed <= t1 and seed + episodes - 1 >= t0:
        raise ConfigError(
            f"evaluation seeds {seed}..{seed + episodes - 1} (seed {seed}, {episodes} episodes) overlap "
            f"the tuning seeds {t0}..{t1} (baselines.tuning.seed={t0}, baselines.tuning.episodes="
            f"{tc.episodes}): evaluate on other seeds")


# --------------------------------------------------------------------------------- search ---
def _scorer(config: EnvConfig, tc: TuningConfig, method: str) -> Callable[[DepthPolicy], tuple[float, float | None]]:
    """policy -> (score, standard error or None): exact V_0(q0), or the tuning-set mean."""
    if method == "exact":

        def exact(policy: DepthPolicy) -> tuple[float, float | None]:
            return policy_value(config, *policy.tables()), None

        return exact
    from ..evaluation.stats import mean_se

    def simulated(policy: DepthPolicy) -> tuple[float, float | None]:
        from ..evaluation import runner  # looked up per call: tests watch run_policy's arguments

        batch = runner.run_policy(config, policy, tc.episodes, tc.seed, cache=False, spawn_key=TUNING_STREAMS)
        mean, _, se = mean_se(batch.objective)
        return mean, se

    return simulated


def _maximise(space: tuple[Param, ...], score: Callable[[np.ndarray], float], exact: bool,
              noise: Callable[[], float]) -> None:
    """Coarse grid, then bounded refinement (module docstring), in [0, 1] coordinates.

    ``score`` memoises and remembers every point; the caller takes the best point evaluated.
    Exact scores are refined to 1e-6 in each coordinate (Nelder-Mead restarted once); simulated
    ones to 1e-3 and a tenth of the best grid point's standard error ``noise()`` (one run): finer
    is below what the tuning set resolves, and each candidate costs a simulation.
    """
    grids = [np.linspace(0.0, 1.0, p.points) for p in space]
    best_u, best = None, -math.inf
    for u in itertools.product(*grids):
        val = score(np.array(u))
        if val > best:
            best_u, best = np.array(u), val
    xatol = _XATOL if exact else 1e-3
    fatol = 1e-10 * max(1.0, abs(best)) if exact else 0.1 * noise()
    if len(space) == 1:
        step = 1.0 / (space[0].points - 1)
        lo, hi = max(0.0, best_u[0] - step), min(1.0, best_u[0] + step)
        optimize.minimize_scalar(lambda x: -score(np.array([x])), bounds=(lo, hi), method="bounded",
                                 options={"xatol": xatol})
        return
    steps = np.array([1.0 / (p.points - 1) for p in space])
    x0 = best_u
    for _ in range(2 if exact else 1):  # one restart: Nelder-Mead can stall on a ridge
        simplex = [x0]
        for i, h in enumerate(steps):
            e = np.zeros(len(space))
            e[i] = h if x0[i] + h <= 1.0 else -h
            simplex.append(x0 + e)
        res = optimize.minimize(lambda x: -score(x), x0, method="Nelder-Mead",
                                bounds=[(0.0, 1.0)] * len(space),
                                options={"initial_simplex": np.array(simplex), "xatol": xatol,
                                         "fatol": fatol, "maxfev": _MAXFEV})
        x0 = np.clip(res.x, 0.0, 1.0)


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def cache_dir() -> Path:
    """Where simulated tuning results are kept: ``$MMGYM_CACHE_DIR/tuning``, else
    ``$XDG_CACHE_HOME/mmgym/tuning``, else ``~/.cache/mmgym/tuning``."""
    root = os.environ.get("MMGYM_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mmgym")
    return Path(root) / "tuning"


@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 over the names and contents of mmgym's ``.py`` files (sorted): the code version a disk
    cache entry was computed with."""
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _disk_path(key: str) -> Path:
    return cache_dir() / (hashlib.sha256((source_hash() + key).encode()).hexdigest()[:32] + ".json")


def _disk_load(key: str) -> TuningResult | None:
    try:
        with open(_disk_path(key)) as fh:
            rec = json.load(fh)
        if rec.get("key") != key or rec.get("source") != source_hash():
            return None
        return TuningResult(**{**rec["result"], "cached": True})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _disk_store(key: str, result: TuningResult) -> None:
    """Write atomically (a temporary file renamed), so concurrent runs never read half a file."""
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({"key": key, "source": source_hash(), "result": {**result.__dict__, "cached": False}}, fh)
        os.replace(tmp, _disk_path(key))
    except OSError:  # a read-only home: the result is still cached in-process
        pass


def tune(family: str, env_config: EnvConfig, baselines_config: BaselinesConfig | None = None) -> TuningResult:
    """The best parameters of ``family`` for ``env_config`` (module docstring); cached in-process
    per (family, env config, ``baselines.tuning``, method).

    Raises:
        ConfigError: an unknown family, an empty c range, ``method: exact`` where it does not exist.
    """
    if family not in FAMILIES:
        raise ConfigError(f"unknown tuned family {family!r} (valid: {', '.join(FAMILIES)})")
    fam = FAMILIES[family]
    tc = (baselines_config if baselines_config is not None else BaselinesConfig()).tuning
    method, not_exact = tuning_method(env_config, tc, fam.simulated)
    key = _key(family, env_config.model_dump(), tc.model_dump(exclude={"disk_cache"}), method)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    on_disk = method == "simulation" and tc.disk_cache
    if on_disk and (cached := _disk_load(key)) is not None:
        _CACHE[key] = cached
        return cached
    t0 = time.perf_counter()
    space = fam.space(env_config, tc)
    scorer = _scorer(env_config, tc, method)
    seen: dict[tuple[float, ...], tuple[float, float | None]] = {}

    def params_at(u: np.ndarray) -> dict[str, float]:
        return {p.name: p.value(x) for p, x in zip(space, u)}

    def score(u: np.ndarray) -> float:
        u_key = tuple(float(x) for x in np.clip(u, 0.0, 1.0))
        if u_key not in seen:
            seen[u_key] = scorer(fam.policy(env_config, **params_at(np.array(u_key))))
        return seen[u_key][0]

    def noise() -> float:  # the standard error at the best point so far (simulation)
        return max(seen.values(), key=lambda v: v[0])[1]

    _maximise(space, score, method == "exact", noise)
    u_best, (obj, se) = max(seen.items(), key=lambda kv: kv[1][0])
    result = TuningResult(
        family=family, params=params_at(np.array(u_best)), objective=obj, objective_se=se,
        method=method, not_exact=not_exact, episodes=tc.episodes if method == "simulation" else None,
        seed=tc.seed if method == "simulation" else None, evaluations=len(seen),
        bounds={p.name: [p.lo, p.hi] for p in space},
        at_bound=[p.bound_key(x >= 0.5) for p, x in zip(space, u_best) if min(x, 1.0 - x) < _EDGE],
        seconds=time.perf_counter() - t0)
    _CACHE[key] = result
    if on_disk:
        _disk_store(key, result)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def make_tuned(family: str, env_config: EnvConfig, baselines_config: BaselinesConfig | None = None) -> DepthPolicy:
    """The tuned policy of ``family`` (:func:`tune`), its search recorded in ``describe()``."""
    result = tune(family, env_config, baselines_config)
    return FAMILIES[family].policy(env_config, **result.params, tuning=result)


def clear_cache() -> None:
    """Forget every tuning result."""
    _CACHE.clear()
