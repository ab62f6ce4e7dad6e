"""Training callbacks in the style of SB3's ``common/callbacks.py``.

TensorBoard namespaces written here (SB3's own ``rollout/``, ``train/``, ``time/`` are kept):

* ``mm/``: market statistics of the episodes finished since the last record (mean per episode):
  ``pnl``, ``objective``, ``abs_inventory`` (mean |q| per step), ``max_abs_inventory``, ``spread``
  (mean quoted spread over two-sided steps), ``fills``, ``impact_cost`` and, for the ``as_hybrid``
  action, the agent's chosen risk aversion ``gamma`` and ``skew`` (the glass-box readout). On a
  scenario with a hidden driver (regimes, events: ``Scenario.driver``), ``mm/glass_box/<quantity>/<bin>``
  for ``gamma``, ``skew_per_lot`` and ``half_spread`` per driver bin over the steps since the last record
  (:mod:`mmgym.evaluation.glass_box`), and the optimal policy's as ``.../<bin>/optimal`` when given.
* ``risk/`` (an env with risk limits, ``Scenario.has_alerts``: the portfolio's ``limits:``):
  ``alerts_breach_per_episode`` and ``alerts_warn_per_episode`` (mean alert counts of the episodes
  finished since the last record), ``max_abs_factor_exposure`` (their mean), and
  ``breach_rate/<asset index | factor>``: the fraction of env-steps since the last record that
  ended with that limit breached.
* ``reward/``: one key per reward term (``MMVecEnv.last_terms``) plus ``total``, accumulated over the
  steps since the last record and scaled to one episode (sum per env-step times episode length),
  so the terms add up to the objective's scale.
* ``eval/``: periodic evaluation on fixed scenarios shared by all agents (common random numbers):
  ``objective_mean`` (+ ``objective_se``, ``pnl_mean``, ``abs_inventory_mean``) for the agent,
  ``baseline/<name>/objective_mean`` for each reference baseline (computed once, logged at every
  evaluation so they draw as flat lines on the same chart) and ``optimality_ratio`` (agent /
  optimal).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from mmgym.config import BaselinesConfig, ConfigError, EnvConfig

from .checkpoints import save_model
from .policies import sb3_policy_fn
from .vec_env import MMVecEnv

__all__ = ["MarketStatsCallback", "PeriodicEvalCallback", "CheckpointCallback", "ProgressCallback",
           "InterruptCallback", "LogStdScheduleCallback", "evaluate_model"]


def evaluate_model(model: Any, vecnormalize: Any, env_config: EnvConfig, baselines: list[str],
                   episodes: int, seed: int, baselines_config: BaselinesConfig) -> dict[str, dict[str, Any]]:
    """Metrics of the model (key ``agent``) and the named baselines on the same scenarios."""
    from mmgym.evaluation import evaluate_agents

    agents: dict[str, Any] = {"agent": sb3_policy_fn(model, vecnormalize)}
    agents.update({name: name for name in baselines if name != "agent"})
    return evaluate_agents(env_config, agents, episodes=episodes, seed=seed,
                           baselines_config=baselines_config, num_envs=min(episodes, 1000))


class MarketStatsCallback(BaseCallback):
    """Record ``mm/`` episode statistics and ``reward/`` per-term sums (module docstring).

    Args:
        mm_env: the :class:`MMVecEnv` under any wrappers (its ``last_terms`` are read every step).
        glass_box_reference: constant ``mm/glass_box/...`` scalars logged at every record (the
            optimal policy's, :func:`mmgym.evaluation.glass_box.reference_scalars`).
    """

    def __init__(self, mm_env: MMVecEnv, verbose: int = 0,
                 glass_box_reference: dict[str, float] | None = None):
        super().__init__(verbose)
        from mmgym.evaluation.glass_box import GlassBoxTracker, driver_of

        driver = driver_of(mm_env.config)
        self.glass = None if driver is None else GlassBoxTracker(mm_env.market, driver)
        self.glass_reference = dict(glass_box_reference or {})
        self.mm_env = mm_env
        self.term_names = tuple(mm_env.market.term_names)
        self._term_sums = np.zeros(len(self.term_names))
        self._env_steps = 0
        self._episodes: list[dict[str, Any]] = []
        self.hybrid = mm_env.config.action.mode == "as_hybrid"
        self.episode_length = mm_env.market.n_steps
        self.last_record: dict[str, float] = {}
        market = mm_env.market
        self.risk = market.scenario.has_alerts(market.config)
        # risk limits: (label, aux column) of each limit's breach flag
        self._risk_cols = [(name.split("_", 1)[1], j) for j, name in enumerate(market.aux_names)
                           if self.risk and name.startswith("breach_")]
        self._breach_sums = np.zeros(len(self._risk_cols))

    def _on_training_start(self) -> None:
        if self.glass is not None:  # the env was reset: the state before the first step
            self.glass.before_step(self.mm_env.market)

    def _on_step(self) -> bool:
        if self.glass is not None:
            self.glass.after_step(self.mm_env.market.buffers.aux)
            self.glass.before_step(self.mm_env.market)  # after autoreset: the next step's state
        terms = self.mm_env.last_terms
        for j, name in enumerate(self.term_names):
            self._term_sums[j] += float(np.sum(terms[name]))
        self._env_steps += self.mm_env.num_envs
        if self._risk_cols:
            aux = self.mm_env.market.buffers.aux
            for j, (_, c) in enumerate(self._risk_cols):
                self._breach_sums[j] += float(aux[:, c].sum())
        for info in self.locals.get("infos", ()):
            ep = info.get("mm_episode")
            if ep is not None and "pnl" in ep:
                self._episodes.append(ep)
        if self._episodes and not self._rollout_collecting():
            self._record()
        return True

    def _rollout_collecting(self) -> bool:
        # PPO-style algorithms record at rollout end (once per logged iteration); off-policy
        # algorithms dump logs right after episodes finish, so record as soon as they do.
        from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

        return isinstance(self.model, OnPolicyAlgorithm)

    def _on_rollout_end(self) -> None:
        if self._episodes:
            self._record()

    def _record(self) -> None:
        eps = self._episodes
        length = np.array([max(float(e["length"]), 1.0) for e in eps])
        stats: dict[str, float] = {
            "mm/pnl": float(np.mean([e["pnl"] for e in eps])),
            "mm/objective": float(np.mean([e["return"] for e in eps])),
            "mm/abs_inventory": float(np.mean(np.array([e["abs_inventory_sum"] for e in eps]) / length)),
            "mm/max_abs_inventory": float(np.mean([e["max_abs_inventory"] for e in eps])),
            "mm/fills": float(np.mean([e["fills"] for e in eps])),
            "mm/impact_cost": float(np.mean([e["impact_cost"] for e in eps])),
        }
        spread_sum = sum(e["spread_sum"] for e in eps)
        spread_count = sum(e["spread_count"] for e in eps)
        if spread_count > 0:
            stats["mm/spread"] = spread_sum / spread_count
        if self.hybrid:
            stats["mm/gamma"] = float(np.mean(np.array([e["gamma_sum"] for e in eps]) / length))
            stats["mm/skew"] = float(np.mean(np.array([e["skew_sum"] for e in eps]) / length))
        if self.risk:
            for key in ("alerts_breach", "alerts_warn"):
                stats[f"risk/{key}_per_episode"] = float(np.mean([e[key] for e in eps]))
            stats["risk/max_abs_factor_exposure"] = float(np.mean([e["max_abs_factor_exposure"] for e in eps]))
            if self._env_steps > 0:
                for j, (label, _) in enumerate(self._risk_cols):
                    stats[f"risk/breach_rate/{label}"] = float(self._breach_sums[j] / self._env_steps)
        if self._env_steps > 0:
            scale = self.episode_length / self._env_steps
            for j, name in enumerate(self.term_names):
                stats[f"reward/{name}"] = float(self._term_sums[j] * scale)
            stats["reward/total"] = float(self._term_sums.sum() * scale)
        if self.glass is not None and self.glass.num_steps:
            from mmgym.evaluation.glass_box import summarize, tb_scalars

            stats.update(tb_scalars(summarize(self.glass.record()), self.glass.driver.labels))
            stats.update(self.glass_reference)
            self.glass.clear()
        for key, value in stats.items():
            # per-bin scalars go to TensorBoard, not into a stdout table
            self.logger.record(key, value, exclude=("stdout",) if key.startswith("mm/glass_box/") else None)
        self.last_record = stats
        self._episodes = []
        self._term_sums[:] = 0.0
        self._breach_sums[:] = 0.0
        self._env_steps = 0


class PeriodicEvalCallback(BaseCallback):
    """Evaluate every ``eval_freq`` environment steps on fixed scenarios; keep the best model.

    The baselines run once (their result does not change) and are logged at every evaluation.
    The best model by ``eval/objective_mean`` is saved to ``best_dir`` (``model.zip`` plus
    ``vecnormalize.pkl`` when normalising).

    Args:
        env_config, baselines_config: the evaluation env and the baselines' parameters.
        baselines: reference baseline names (``as``, ``glft``, ``optimal``, ...).
        eval_freq: environment steps between evaluations (0: only at the start and the end).
        episodes, seed: the scenarios (episode e uses seed + e), identical at every evaluation.
        best_dir: where the best model goes (None: not saved).
        vecnormalize: the VecNormalize wrapper, if any.
        best_objective: the best objective so far (when resuming).
        eval_at_start: also evaluate before the first step (off when resuming: that point exists).
    """

    def __init__(self, env_config: EnvConfig, baselines_config: BaselinesConfig, baselines: list[str],
                 eval_freq: int, episodes: int, seed: int, best_dir: Path | None = None,
                 vecnormalize: Any = None, best_objective: float = -math.inf, eval_at_start: bool = True,
                 verbose: int = 0):
        super().__init__(verbose)
        self.eval_at_start = eval_at_start
        self.env_config = env_config
        self.baselines_config = baselines_config
        self.eval_freq = eval_freq
        self.episodes = episodes
        self.seed = seed
        self.best_dir = best_dir
        self.vecnormalize = vecnormalize
        self.best_objective = best_objective
        self.baseline_objectives: dict[str, float] = {}
        self.baselines = self._baseline_objectives(baselines)
        self._last_eval_step = -1
        self.history: list[tuple[int, float]] = []
        self.last: dict[str, float] = {}

    def _baseline_objectives(self, names: list[str]) -> list[str]:
        from mmgym.evaluation import evaluate_agents

        kept = []
        for name in names:
            try:
                res = evaluate_agents(self.env_config, {name: name}, episodes=self.episodes, seed=self.seed,
                                      baselines_config=self.baselines_config,
                                      num_envs=min(self.episodes, 1000))
            except ConfigError as exc:  # e.g. a baseline that does not apply to this market
                print(f"train.py: note: baseline {name!r} skipped in evaluations ({exc})")
                continue
            self.baseline_objectives[name] = float(res[name]["objective_mean"])
            kept.append(name)
        return kept

    def _on_training_start(self) -> None:
        if self.eval_at_start:
            self.evaluate()
        else:
            self._last_eval_step = self.num_timesteps

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.num_timesteps // self.eval_freq > max(self._last_eval_step, 0) // self.eval_freq:
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, float]:
        """Run one evaluation now, record ``eval/`` and dump the logger at ``num_timesteps``."""
        if self.num_timesteps == self._last_eval_step:
            return self.last
        from mmgym.evaluation import evaluate_agents

        t0 = time.perf_counter()
        m = evaluate_agents(self.env_config, {"agent": sb3_policy_fn(self.model, self.vecnormalize)},
                            episodes=self.episodes, seed=self.seed, baselines_config=self.baselines_config,
                            num_envs=min(self.episodes, 1000))["agent"]
        out = {
            "eval/objective_mean": m["objective_mean"],
            "eval/objective_se": m["objective_se"],
            "eval/pnl_mean": m["pnl_mean"],
            "eval/abs_inventory_mean": m["abs_inventory_mean"],
            "eval/spread_mean": m["spread_mean"],
        }
        for name, value in self.baseline_objectives.items():
            out[f"eval/baseline/{name}/objective_mean"] = value
        opt = self.baseline_objectives.get("optimal")
        if opt is not None and opt > 0:
            out["eval/optimality_ratio"] = m["objective_mean"] / opt
        out["time/eval_seconds"] = time.perf_counter() - t0
        for key, value in out.items():
            if math.isfinite(value):
                self.logger.record(key, value)
        self.logger.dump(self.num_timesteps)
        self._last_eval_step = self.num_timesteps
        self.history.append((self.num_timesteps, m["objective_mean"]))
        self.last = out
        if m["objective_mean"] > self.best_objective:
            self.best_objective = m["objective_mean"]
            if self.best_dir is not None:
                save_model(self.model, self.best_dir, self.vecnormalize)
                (self.best_dir / "best.txt").write_text(
                    f"num_timesteps {self.num_timesteps}\nobjective_mean {m['objective_mean']:.6f}\n")
        return out


class LogStdScheduleCallback(BaseCallback):
    """``agent.log_std_schedule``: the policy's log std is fixed (not learned) and set before each
    rollout to the piecewise-linear line through ``points`` [(progress, log std), ...] at progress
    ``min(1, num_timesteps / total_timesteps)``; logged as ``train/log_std_scheduled``. The policy
    must carry a state-independent ``log_std`` parameter (SB3's Gaussian ``ActorCriticPolicy``
    without gSDE: PPO, A2C)."""

    def __init__(self, points: list[tuple[float, float]], total_timesteps: int, verbose: int = 0):
        super().__init__(verbose)
        self.progress = [float(p) for p, _ in points]
        self.values = [float(v) for _, v in points]
        self.total = max(1, int(total_timesteps))

    def value(self, num_timesteps: int) -> float:
        """The scheduled log std after ``num_timesteps`` steps."""
        return float(np.interp(min(1.0, num_timesteps / self.total), self.progress, self.values))

    @staticmethod
    def check(model: Any, where: str = "agent.log_std_schedule") -> None:
        """Refuse a model whose policy has no state-independent ``log_std`` (one line)."""
        import torch

        policy = model.policy
        if getattr(policy, "use_sde", False) or not isinstance(getattr(policy, "log_std", None),
                                                                 torch.nn.Parameter):
            raise ConfigError(f"{where}: needs a Gaussian policy with a state-independent log std "
                              f"(PPO/A2C on a Box action, no gSDE); {type(model).__name__}'s "
                              f"{type(policy).__name__} has none")

    def _set(self) -> None:
        import torch

        v = self.value(self.model.num_timesteps)
        with torch.no_grad():
            self.model.policy.log_std.fill_(v)
        self.logger.record("train/log_std_scheduled", v)

    def _on_training_start(self) -> None:
        self.check(self.model)
        self.model.policy.log_std.requires_grad_(False)  # Adam skips a parameter without a gradient
        self._set()

    def _on_rollout_start(self) -> None:
        self._set()

    def _on_step(self) -> bool:
        return True


class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``save_freq`` environment steps into ``ckpt_dir/step_<N>/``.

    A checkpoint is ``model.zip`` (+ ``vecnormalize.pkl``, + ``replay_buffer.pkl`` for off-policy
    algorithms: kept in the latest checkpoint only). ``train.py --resume`` loads the latest one.
    """

    def __init__(self, save_freq: int, save: Callable[[], Path], verbose: int = 0):
        super().__init__(verbose)
        self.save_freq = save_freq
        self.save = save
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.save_freq > 0 and self.num_timesteps // self.save_freq > self._last // self.save_freq:
            self.save()
            self._last = self.num_timesteps
        return True


class ProgressCallback(BaseCallback):
    """A tqdm progress bar (stderr) with the latest episode objective and evaluation ratio."""

    def __init__(self, total_timesteps: int, stats: MarketStatsCallback | None = None,
                 evaluator: PeriodicEvalCallback | None = None):
        super().__init__()
        self.total = total_timesteps
        self.stats = stats
        self.evaluator = evaluator
        self.pbar = None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        # SB3 collects whole rollouts: on-policy training ends at the total rounded up to a
        # multiple of n_steps * n_envs, so the bar's total is that (it never passes it)
        rollout = getattr(self.model, "n_steps", 0) * self.training_env.num_envs
        total = max(self.total, self.num_timesteps)
        if rollout > 0:
            total = self.num_timesteps + -(-(total - self.num_timesteps) // rollout) * rollout
        self.pbar = tqdm(total=total, initial=self.num_timesteps, unit="step", unit_scale=True,
                         dynamic_ncols=True, mininterval=0.5, smoothing=0.05)

    def _on_step(self) -> bool:
        self.pbar.update(self.training_env.num_envs)
        return True

    def _on_rollout_end(self) -> None:
        post = {}
        if self.stats is not None and "mm/objective" in self.stats.last_record:
            # the exploring (stochastic) policy's episodes: far below the deterministic evaluation
            post["explore_obj"] = f"{self.stats.last_record['mm/objective']:.2f}"
        if self.evaluator is not None and "eval/optimality_ratio" in self.evaluator.last:
            post["eval_vs_optimal"] = f"{100 * self.evaluator.last['eval/optimality_ratio']:.2f}%"
        if post:
            self.pbar.set_postfix(post, refresh=False)

    def _on_training_end(self) -> None:
        if self.pbar is not None:
            self.pbar.close()


class InterruptCallback(BaseCallback):
    """Turn the first SIGINT (Ctrl-C) into a clean stop at the next env step.

    ``learn`` then returns normally and the caller writes a checkpoint; a second Ctrl-C interrupts
    at once (the default handler is restored after the first).
    """

    def __init__(self):
        super().__init__()
        self.interrupted = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        print("\ntrain.py: interrupted: stopping at the next step and writing a checkpoint "
              "(Ctrl-C again to abort)", flush=True)

    def _on_training_start(self) -> None:
        import threading

        # signal handlers can only be set from the main thread (a Ray Tune trial runs in a
        # worker thread: its own runtime stops it there)
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def _on_step(self) -> bool:
        return not self.interrupted

    def _on_training_end(self) -> None:
        if not self.interrupted and self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
