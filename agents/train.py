"""Train an SB3 agent from one experiment config (the library behind ``train.py``).

The run directory holds everything about one run::

    RUN_DIR/
      config.yaml            # the resolved config (every default spelled out)
      model.zip              # the final model (+ vecnormalize.pkl beside it when normalising)
      best/model.zip         # best model by eval/objective_mean (+ vecnormalize.pkl, best.txt)
      checkpoints/step_<N>/  # periodic and Ctrl-C checkpoints: model.zip, vecnormalize.pkl,
                             # replay_buffer.pkl (off-policy; latest checkpoint only)
      tb/<config>_seed<k>/   # TensorBoard event files (resumed runs append to the same folder)
      summary.json           # final evaluation against the baselines, steps, wall time

Every ``model.zip`` here loads with ``evaluate.py CONFIG --agents NAME=RUN_DIR/model.zip``.

Several training seeds (``train.py CONFIG --seeds 0 1 2``, :func:`train_seeds`) train one after
the other, each a run directory of its own, ``RUN_DIR/seed<k>/`` (the layout above, with
``train.seed = k``); ``evaluate.py CONFIG --agents 'NAME=RUN_DIR/seed*/model.zip'`` evaluates them
as one agent over seeds.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmgym.cli import check_seeds
from mmgym.config import ConfigError, ExperimentConfig, first_difference
from mmgym.envs.market import TRAINING_STREAMS

from .algos import build_algo_kwargs, is_off_policy
from .callbacks import (
    CheckpointCallback,
    InterruptCallback,
    LogStdScheduleCallback,
    MarketStatsCallback,
    PeriodicEvalCallback,
    ProgressCallback,
    evaluate_model,
)
from .checkpoints import latest_checkpoint, save_model, write_checkpoint
from .features import with_features
from .vec_env import MMVecEnv

__all__ = ["TrainResult", "train", "save_model", "latest_checkpoint", "hyperparameter_table",
           "ScaleRewardVecEnv", "SEED_STRIDE", "training_env_seed", "SeedRun", "seed_run_dir",
           "plan_seeds", "train_seeds"]

#: Training seeds k and k + 1 are this far apart in env-stream seeds (:func:`training_env_seed`).
SEED_STRIDE = 2**32


def training_env_seed(seed: int) -> int:
    """The stream seed of training env 0 for ``train.seed = seed``; env i uses it + i (SB3's convention).

    With SB3's plain ``seed + i``, training seed 1's env i would replay seed 0's env i + 1 (199 of
    the 200 market streams of ``configs/ppo_cjp.yaml`` shared): runs over several training seeds
    would differ in their network initialisation but not in the markets they learn from. Spaced by
    :data:`SEED_STRIDE`, the streams of different training seeds never coincide (a resume at step N
    reseeds with ``training_env_seed(seed) + N``, still below the next seed's). Seed 0 keeps
    ``0 + i``. The family (spawn key :data:`~mmgym.envs.market.TRAINING_STREAMS`) stays disjoint
    from every evaluation scenario.
    """
    return seed * SEED_STRIDE



@dataclass
class TrainResult:
    """What :func:`train` returns (also written to ``summary.json``)."""

    run_dir: Path
    num_timesteps: int
    trained_timesteps: int
    wall_seconds: float
    env_seconds: float
    interrupted: bool
    final_eval: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        """Environment steps trained in this call per wall-clock second."""
        return self.trained_timesteps / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        """The result a run's ``summary.json`` records (:meth:`to_json`)."""
        return cls(run_dir=Path(data["run_dir"]), num_timesteps=int(data["num_timesteps"]),
                   trained_timesteps=int(data["trained_timesteps"]),
                   wall_seconds=float(data["wall_seconds"]), env_seconds=float(data["env_seconds"]),
                   interrupted=bool(data["interrupted"]), final_eval=dict(data.get("final_eval") or {}),
                   eval_history=[tuple(x) for x in data.get("eval_history") or []])

    def summary_line(self) -> str:
        """One line: steps, wall time, steps/s, final objective vs the baselines."""
        parts = [f"{self.num_timesteps:,} steps", f"{self.wall_seconds:.1f} s",
                 f"{self.steps_per_second:,.0f} steps/s"]
        fe = self.final_eval
        if fe.get("agent", {}).get("objective_mean") is not None:
            agent = fe["agent"]["objective_mean"]
            parts.append(f"objective {agent:.3f} ± {fe['agent']['objective_se']:.3f}")
            if "optimal" in fe:
                opt = fe["optimal"]["objective_mean"]
                label = fe["optimal"].get("label")  # a hidden regime: optimal is an oracle
                parts.append(f"optimal{' ' + label if label else ''} {opt:.3f} (ratio {100 * agent / opt:.2f}%)")
            for name, m in fe.items():
                if name not in ("agent", "optimal"):
                    parts.append(f"{name} {m['objective_mean']:.3f}")
        if self.interrupted:
            parts.append("interrupted (checkpoint written)")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe summary."""
        def clean(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x

        return clean({
            "run_dir": str(self.run_dir), "num_timesteps": self.num_timesteps,
            "trained_timesteps": self.trained_timesteps, "wall_seconds": self.wall_seconds,
            "env_seconds": self.env_seconds, "steps_per_second": self.steps_per_second,
            "interrupted": self.interrupted, "eval_history": self.eval_history,
            "final_eval": {name: {k: v for k, v in m.items() if isinstance(v, (int, float, str, list))}
                           for name, m in self.final_eval.items()},
        })


# --------------------------------------------------------------------------------- wrappers ---
def _vec_env_wrapper_base():
    from stable_baselines3.common.vec_env import VecEnvWrapper

    return VecEnvWrapper


class _TimedVecEnv:
    """Mixin-free timer: wraps ``step_wait`` of the MMVecEnv to measure the env's share of wall time."""

    def __init__(self, env: MMVecEnv):
        self.seconds = 0.0
        inner = env.step_wait

        def timed():
            t0 = time.perf_counter()
            out = inner()
            self.seconds += time.perf_counter() - t0
            return out

        env.step_wait = timed  # type: ignore[method-assign]


def ScaleRewardVecEnv(venv: Any, scale: float):  # noqa: N802 - a class factory (SB3 imported lazily)
    """Wrap ``venv`` so the algorithm sees ``reward * scale`` (infos' episode returns unchanged)."""
    base = _vec_env_wrapper_base()

    class _Scale(base):  # type: ignore[misc, valid-type]
        def __init__(self, v: Any, s: float):
            super().__init__(v)
            self.scale = s

        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            obs, rew, done, infos = self.venv.step_wait()
            return obs, rew * np.float32(self.scale), done, infos

    return _Scale(venv, scale)


def check_control_variate(cfg: ExperimentConfig, source: str = "<config>") -> None:
    """Refuse ``agent.control_variate`` where the revaluation noise is not the reward's zero-mean
    part (one line naming the key): a mid that is not decomposed (the book, the replay), or a
    reward that is not linear in the mid's move (CARA objective, dampening)."""
    from mmgym.scenarios import get

    env = cfg.env
    why = None
    if "revaluation_noise" in get(env.id).unused_aux(env):
        why = f"{env.id} does not split its mid's move into a predictable part and noise"
    elif env.reward.objective == "cara":
        why = "the CARA objective is not linear in the mid's move"
    elif env.reward.dampening > 0.0:
        why = "the dampening term max(0, eta q dS) is not linear in the mid's move"
    if why:
        raise ConfigError(f"{source}: agent.control_variate: {why}; must be false (got true)")


def ControlVariateVecEnv(venv: Any, mm_env: MMVecEnv):  # noqa: N802 - a class factory (SB3 imported lazily)
    """Wrap ``venv`` so the algorithm learns from ``reward - q (dS - E_t dS)`` (``agent.control_variate``).

    The subtracted term, the market's ``revaluation_noise`` aux column
    (:class:`mmgym.sim.ledger.Outcome`, ``ds_noise``), is ``q_{t+1} (dS_t - E[dS_t | F_t, fills_t])``:
    the inventory after the fills times a move drawn independently of them, so its conditional
    mean is zero and ``E[sum_t r_t]`` is the same for every policy, with and without it (a control
    variate, e.g. Greensmith, Bartlett & Baxter 2004, JMLR 5, sec. 1). Every PPO advantage keeps
    its expectation; the Brownian revaluation and the event jumps stop adding variance to it. The
    rows are read from the market's buffers once per batch; episode returns in ``infos`` (and so
    ``rollout/ep_rew_mean`` and every evaluation) stay the env's."""
    base = _vec_env_wrapper_base()
    col = list(mm_env.market.aux_names).index("revaluation_noise")
    aux = mm_env.market.buffers.aux

    class _ControlVariate(base):  # type: ignore[misc, valid-type]
        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            obs, rew, done, infos = self.venv.step_wait()
            return obs, (rew - aux[:, col]).astype(rew.dtype, copy=False), done, infos

    return _ControlVariate(venv)


# ------------------------------------------------------------------------------ hyperparams ---
def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out: list[tuple[str, Any]] = []
        for k, v in data.items():
            out.extend(_flatten(v, f"{prefix}{k}."))
        return out
    return [(prefix[:-1], data)]


def hyperparameter_table(cfg: ExperimentConfig) -> str:
    """The resolved config as a Markdown table (TensorBoard's text tab renders it)."""
    rows = ["| key | value |", "|---|---|"]
    for key, value in _flatten(cfg.model_dump(mode="json")):
        if key.startswith("env.book.") and cfg.env.id != "mmgym/LOBMarketMaking-v0":
            continue
        rows.append(f"| {key} | {json.dumps(value) if not isinstance(value, str) else value} |")
    return "\n".join(rows)


#: HParams metrics: scalar tags the run logs (the HParams tab shows their latest values)
HPARAM_METRICS = ("eval/objective_mean", "eval/optimality_ratio", "mm/objective")


def tensorboard_layout(cfg: ExperimentConfig) -> dict[str, dict[str, list]]:
    """TensorBoard's custom-scalars layout: the agent's evaluation objective and every baseline
    on one chart, the optimality ratio beside it, the glass box (gamma, skew) on another."""
    return {
        "mmgym: agent vs baselines": {
            "evaluation objective (agent and baselines)": [
                "Multiline", ["eval/objective_mean", r"eval/baseline/.*/objective_mean"]],
            "agent / optimal": ["Multiline", ["eval/optimality_ratio"]],
            "training episodes (exploring policy)": ["Multiline", ["mm/objective", "mm/pnl"]],
        },
        "mmgym: glass box": {
            "risk aversion and skew the agent chose": ["Multiline", ["mm/gamma", "mm/skew"]],
            "inventory": ["Multiline", ["mm/abs_inventory", "mm/max_abs_inventory"]],
            "quotes and fills": ["Multiline", ["mm/spread", "mm/fills"]],
        },
        **glass_box_layout(cfg),
    }


def glass_box_layout(cfg: ExperimentConfig) -> dict[str, dict[str, list]]:
    """The glass box per driver bin (``mm/glass_box/...``, :class:`MarketStatsCallback`) on a
    scenario with a hidden driver: one chart per quantity, the agent's bins and the optimal
    policy's (``.../<bin>/optimal``) together; nothing on other scenarios."""
    from mmgym.evaluation.glass_box import driver_of

    driver = driver_of(cfg.env)
    if driver is None:
        return {}
    charts = {
        f"half-spread by {driver.name} (agent; .../optimal: the optimum)":
            ["Multiline", [r"mm/glass_box/half_spread/.*"]],
        f"skew per lot by {driver.name} (agent; .../optimal: the optimum)":
            ["Multiline", [r"mm/glass_box/skew_per_lot/.*"]],
    }
    if cfg.env.action.mode == "as_hybrid":
        charts[f"gamma chosen by {driver.name}"] = ["Multiline", [r"mm/glass_box/gamma/.*"]]
    return {f"mmgym: glass box by {driver.name}": charts}


def hparams_of(cfg: ExperimentConfig) -> dict[str, Any]:
    """The run's hyperparameters for TensorBoard's HParams tab (scalars and strings only)."""
    out: dict[str, Any] = {}
    for key, value in _flatten(cfg.model_dump(mode="json")):
        if not (key.startswith("agent.") or key.startswith("train.seed") or key.startswith("env.")):
            continue
        if key.startswith("env.book.") and cfg.env.id != "mmgym/LOBMarketMaking-v0":
            continue
        if isinstance(value, bool) or isinstance(value, (int, float, str)):
            out[key] = value
        elif value is not None:
            out[key] = json.dumps(value)
    return out


def write_tensorboard_views(writer: Any, cfg: ExperimentConfig) -> None:
    """The custom-scalars layout and the HParams session of a new run (torch's summary writers)."""
    from torch.utils.tensorboard.summary import hparams

    writer.add_custom_scalars(tensorboard_layout(cfg))
    exp, ssi, sei = hparams(hparams_of(cfg), {m: 0.0 for m in HPARAM_METRICS})
    for summary in (exp, ssi, sei):
        writer.file_writer.add_summary(summary)


def tensorboard_dir(run_dir: Path, source: str, seed: int) -> Path:
    """``RUN_DIR/tb/<config stem>_seed<k>``: the run's TensorBoard folder, named by config and seed
    (an existing folder of a resumed run is kept, whatever its name)."""
    tb = run_dir / "tb"
    existing = sorted(p for p in tb.iterdir() if p.is_dir()) if tb.is_dir() else []
    if existing:
        return existing[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(source).stem) or "run"
    return tb / f"{stem}_seed{seed}"


def _tb_writer(logger: Any):
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    for fmt in logger.output_formats:
        if isinstance(fmt, TensorBoardOutputFormat):
            return fmt.writer
    return None


# ------------------------------------------------------------------------------------ train ---
#: Keys that may change on --resume (they do not change what the model is or learns from).
RESUMABLE_CHANGES = ("train.total_timesteps", "train.eval_freq", "train.eval_episodes",
                     "train.eval_baselines", "train.checkpoint_freq", "train.progress_bar",
                     "train.run_dir", "train.torch_threads", "eval.", "baselines.")


def _check_same_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    """Refuse to continue a run whose ``config.yaml`` differs beyond :data:`RESUMABLE_CHANGES`."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    old = yaml.safe_load(saved.read_text()) or {}
    diff = first_difference(old, cfg.model_dump(mode="json"), skip=RESUMABLE_CHANGES)
    if diff is not None:
        key, was, now = diff
        raise ConfigError(
            f"--resume: {key} differs from the run's {saved} (run: {was!r}, now: {now!r}); "
            "resume with the run's config (only train.total_timesteps, evaluation, "
            "checkpoint and baselines settings may change) or start a new --run-dir")


def _check_run_dir(run_dir: Path, resume: bool, overwrite: bool, cfg: ExperimentConfig | None = None) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"train.run_dir: not a directory (got {str(run_dir)!r})")
    if resume:
        if latest_checkpoint(run_dir) is None:
            raise ConfigError(f"--resume: no checkpoint under {run_dir}/checkpoints "
                              "(checkpoints are written every train.checkpoint_freq steps and on Ctrl-C)")
        if cfg is not None:
            _check_same_config(run_dir, cfg)
    elif run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise ConfigError(f"train.run_dir: {run_dir} already holds a run; use --resume to continue it, "
                          f"--overwrite to replace it, or --run-dir DIR (got {str(run_dir)!r})")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"train.run_dir: cannot create it: {exc.strerror} (got {str(run_dir)!r})") from None


def _clear_run_dir(run_dir: Path) -> None:
    for name in ("model.zip", "vecnormalize.pkl", "config.yaml", "summary.json", "best", "checkpoints", "tb"):
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def train(cfg: ExperimentConfig, resume: bool = False, overwrite: bool = False,
          source: str = "<config>", log: Any = print) -> TrainResult:
    """Train the configured agent; see the module docstring for what lands in the run directory.

    Args:
        cfg: the experiment (``cfg.train.run_dir`` is the run directory).
        resume: continue from the latest checkpoint at its ``num_timesteps`` (TensorBoard curves
            continue in the same folder; off-policy replay buffers are restored).
        overwrite: replace an existing run in the run directory.
        source: the config's file name, for error messages.
        log: where to print one-line notes.

    Raises:
        ConfigError: unknown algorithm/argument names, bad values SB3 rejects, run-directory misuse.
    """
    import torch

    tc, ac = cfg.train, cfg.agent
    algo_cls, kwargs = build_algo_kwargs(ac, source)
    kwargs = with_features(cfg, kwargs, source)
    off_policy = is_off_policy(algo_cls)
    if ac.control_variate:
        check_control_variate(cfg, source)
    run_dir = Path(tc.run_dir)
    # a Ctrl-C before learning starts removes a run directory this call created (nothing in it yet)
    fresh_dir = not run_dir.exists()
    _check_run_dir(run_dir, resume, overwrite, cfg)
    torch.set_num_threads(tc.torch_threads)

    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        log(f"train.py: resuming from {ckpt}")
    try:
        return _train(cfg, tc, ac, algo_cls, kwargs, off_policy, run_dir, ckpt, resume, source, log)
    except KeyboardInterrupt:
        if fresh_dir and run_dir.is_dir() and not (run_dir / "model.zip").exists() \
                and not latest_checkpoint(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg, tc, ac, algo_cls, kwargs, off_policy, run_dir, ckpt, resume, source, log) -> TrainResult:
    """:func:`train` after the checks (same arguments, resolved)."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecNormalize

    # training streams are a family of their own: never an evaluation scenario (seed_rows)
    mm_env = MMVecEnv(cfg.env, num_envs=tc.n_envs, spawn_key=TRAINING_STREAMS)
    timer = _TimedVecEnv(mm_env)
    venv: Any = mm_env
    if ac.control_variate:
        venv = ControlVariateVecEnv(venv, mm_env)
    if ac.reward_scale != 1.0:
        venv = ScaleRewardVecEnv(venv, ac.reward_scale)
    vecnormalize = None
    if ac.normalize:
        nkw = dict(ac.normalize) if isinstance(ac.normalize, dict) else {}
        nkw.setdefault("gamma", float(kwargs.get("gamma", 0.99)))
        try:
            if ckpt is not None and (ckpt / "vecnormalize.pkl").is_file():
                vecnormalize = VecNormalize.load(str(ckpt / "vecnormalize.pkl"), venv)
                vecnormalize.training = True
            else:
                vecnormalize = VecNormalize(venv, **nkw)
        except TypeError as exc:
            raise ConfigError(f"{source}: agent.normalize: {exc} (got {ac.normalize!r})") from None
        venv = vecnormalize

    if ckpt is None:
        kwargs.setdefault("device", "cpu")
        try:
            model = algo_cls(ac.policy, venv, seed=tc.seed, verbose=kwargs.pop("verbose", 0), **kwargs)
        except (ValueError, TypeError, AssertionError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{source}: agent.kwargs: {algo_cls.__name__} rejected the arguments: {msg}") from None
        if ac.log_std_schedule is not None:  # before anything lands in the run directory
            LogStdScheduleCallback.check(model, f"{source}: agent.log_std_schedule")
        # SB3 seeded env i with seed + i; training seeds get disjoint streams instead
        venv.seed(training_env_seed(tc.seed))
        _clear_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        f"# resolved config of this run (train.py {source})\n"
        + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))

    if ckpt is not None:
        model = algo_cls.load(ckpt / "model.zip", env=venv, device=kwargs.get("device", "cpu"),
                              custom_objects={k: v for k, v in kwargs.items() if k in ("learning_rate", "clip_range")})
        if off_policy and (ckpt / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(ckpt / "replay_buffer.pkl")
        # fresh scenarios after the resume point (env i: training_env_seed(seed) + num_timesteps + i)
        venv.seed(training_env_seed(tc.seed) + model.num_timesteps)
    # one TensorBoard run per training run, named by config and seed (`tensorboard --logdir
    # runs` then lists ppo_cjp_seed0, ...; a resumed run appends to the same folder)
    model.set_logger(configure(str(tensorboard_dir(run_dir, source, tc.seed)), ["tensorboard"]))
    start_steps = model.num_timesteps
    remaining = tc.total_timesteps - start_steps
    writer = _tb_writer(model.logger)
    if writer is not None and ckpt is None:
        writer.add_text("hparams", hyperparameter_table(cfg), 0)
        write_tensorboard_views(writer, cfg)
        writer.flush()

    glass_reference: dict[str, float] = {}
    if "optimal" in tc.eval_baselines:  # the optimum's glass box: flat reference lines
        from mmgym.evaluation.glass_box import reference_scalars

        try:
            glass_reference = reference_scalars(cfg.env, cfg.baselines, tc.eval_episodes, cfg.eval.seed)
        except ConfigError as exc:
            log(f"train.py: note: no optimal glass-box lines ({exc})")
    stats = MarketStatsCallback(mm_env, glass_box_reference=glass_reference)
    best_dir = run_dir / "best"
    best_prev = -math.inf
    if resume and (best_dir / "best.txt").is_file():
        m = re.search(r"objective_mean (\S+)", (best_dir / "best.txt").read_text())
        best_prev = float(m.group(1)) if m else -math.inf
    evaluator = PeriodicEvalCallback(cfg.env, cfg.baselines, list(tc.eval_baselines), tc.eval_freq,
                                     tc.eval_episodes, cfg.eval.seed, best_dir, vecnormalize, best_prev,
                                     eval_at_start=ckpt is None)
    interrupt = InterruptCallback()
    schedule: list[Any] = []
    if ac.log_std_schedule is not None:
        schedule.append(LogStdScheduleCallback(ac.log_std_points(), tc.total_timesteps))
    callbacks: list[Any] = [*schedule, stats, evaluator,
                            CheckpointCallback(tc.checkpoint_freq,
                                               lambda: write_checkpoint(model, run_dir, vecnormalize, off_policy)),
                            interrupt]
    if tc.progress_bar:
        callbacks.append(ProgressCallback(tc.total_timesteps, stats, evaluator))

    t0 = time.perf_counter()
    if remaining > 0:
        # off-policy algorithms dump logs every log_interval finished episodes; all envs finish
        # together (fixed horizon), so n_envs gives one dump per batch of episodes
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False,
                    progress_bar=False, log_interval=tc.n_envs if off_policy else 1)
    wall = time.perf_counter() - t0
    interrupted = interrupt.interrupted
    if interrupted:
        d = write_checkpoint(model, run_dir, vecnormalize, off_policy)
        log(f"train.py: checkpoint written to {d} (continue with --resume)")
        evaluator.logger.dump(model.num_timesteps)
    else:
        if remaining > 0:
            evaluator.evaluate()  # the last point of the eval/ curves (also updates best/)
        if tc.checkpoint_freq > 0:
            write_checkpoint(model, run_dir, vecnormalize, off_policy)
        save_model(model, run_dir, vecnormalize)
    if writer is not None:
        writer.flush()

    final: dict[str, dict[str, Any]] = {}
    if not interrupted:
        if vecnormalize is not None:
            vecnormalize.training = False
        final = evaluate_model(model, vecnormalize, cfg.env, list(tc.eval_baselines), cfg.eval.episodes,
                               cfg.eval.seed, cfg.baselines)
    result = TrainResult(run_dir=run_dir, num_timesteps=int(model.num_timesteps),
                         trained_timesteps=int(model.num_timesteps - start_steps), wall_seconds=wall,
                         env_seconds=timer.seconds, interrupted=interrupted, final_eval=final,
                         eval_history=list(evaluator.history))
    if not interrupted:
        (run_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


# ------------------------------------------------------------------------------ several seeds ---
def seed_run_dir(run_dir: str | Path, seed: int) -> Path:
    """The run directory of training seed ``seed`` under ``run_dir``: ``run_dir/seed<seed>``."""
    return Path(run_dir) / f"seed{seed}"


@dataclass
class SeedRun:
    """One training seed of :func:`train_seeds`: its plan, then what happened.

    ``action`` is ``"train"`` (a new run), ``"resume"`` (continue its latest checkpoint) or
    ``"skip"`` (finished earlier: ``summary.json`` has ``train.total_timesteps`` steps).
    ``status`` is ``"trained"``, ``"skipped"``, ``"interrupted"`` or ``"not started"``.
    """

    seed: int
    cfg: ExperimentConfig
    action: str
    status: str = "not started"
    result: TrainResult | None = None

    @property
    def run_dir(self) -> Path:
        """This seed's run directory."""
        return Path(self.cfg.train.run_dir)

    def summary_line(self) -> str:
        """One line about this seed (its run directory first)."""
        if self.status == "trained" and self.result is not None:
            return f"{self.run_dir}: {self.result.summary_line()}"
        if self.status == "skipped" and self.result is not None:
            return f"{self.run_dir}: finished earlier (skipped): {self.result.summary_line()}"
        if self.status == "interrupted":
            line = self.result.summary_line() if self.result is not None else "interrupted"
            return f"{self.run_dir}: {line} (continue with --resume)"
        return f"{self.run_dir}: not started (continue with --resume)"


def _finished(run_dir: Path, total_timesteps: int) -> TrainResult | None:
    """The run's recorded result if it finished with at least ``total_timesteps`` steps, else None."""
    summary = run_dir / "summary.json"
    if not (summary.is_file() and (run_dir / "model.zip").is_file()):
        return None
    try:
        result = TrainResult.from_json(json.loads(summary.read_text()))
    except (ValueError, KeyError, TypeError):
        return None
    return result if not result.interrupted and result.num_timesteps >= total_timesteps else None


def plan_seeds(cfg: ExperimentConfig, seeds: list[int], resume: bool = False,
               overwrite: bool = False) -> list[SeedRun]:
    """One run per seed under ``cfg.train.run_dir`` (:func:`seed_run_dir`), every run directory
    checked before anything trains.

    Without ``resume``/``overwrite`` no seed's run directory may hold a run. With ``resume`` a
    finished seed is skipped, an unfinished one continues from its latest checkpoint, one not
    started yet starts; each existing run's ``config.yaml`` must match (:data:`RESUMABLE_CHANGES`).

    Raises:
        ConfigError: bad seeds, or the first run directory that cannot take its run.
    """
    check_seeds(seeds)
    plans = []
    for k in seeds:
        run_dir = seed_run_dir(cfg.train.run_dir, k)
        c = cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": k, "run_dir": str(run_dir)})})
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"train.run_dir: not a directory (got {str(run_dir)!r})")
        holds = run_dir.is_dir() and any(run_dir.iterdir())
        action = "train"
        if resume and holds:
            _check_same_config(run_dir, c)
            if _finished(run_dir, c.train.total_timesteps) is not None:
                action = "skip"
            elif latest_checkpoint(run_dir) is not None:
                action = "resume"
            else:
                raise ConfigError(f"--resume: {run_dir} holds files but no checkpoint to continue and no "
                                  "finished run; --overwrite replaces it")
        elif holds and not overwrite:
            raise ConfigError(f"train.run_dir: {run_dir} already holds a run; use --resume to continue the "
                              f"seeds' runs, --overwrite to replace them, or --run-dir DIR "
                              f"(got {str(run_dir)!r})")
        plans.append(SeedRun(k, c, action))
    return plans


def train_seeds(plans: list[SeedRun], overwrite: bool = False, source: str = "<config>",
                log: Any = print) -> list[SeedRun]:
    """Train the planned seeds one after the other (:func:`plan_seeds`); returns the plans with
    their ``status`` and ``result`` filled in.

    A Ctrl-C stops the current seed as :func:`train` does (a checkpoint is written) and leaves the
    later seeds ``"not started"``; ``--resume`` then continues where it stopped.
    """
    n = len(plans)
    for i, plan in enumerate(plans):
        if plan.action == "skip":
            plan.status, plan.result = "skipped", _finished(plan.run_dir, plan.cfg.train.total_timesteps)
            log(f"train.py: seed {plan.seed} ({i + 1} of {n}): finished earlier in {plan.run_dir}, skipped")
            continue
        log(f"train.py: seed {plan.seed} ({i + 1} of {n}): {plan.run_dir}")
        try:
            plan.result = train(plan.cfg, resume=plan.action == "resume", overwrite=overwrite,
                                source=source, log=log)
        except KeyboardInterrupt:
            plan.status = "interrupted"
            break
        plan.status = "interrupted" if plan.result.interrupted else "trained"
        if plan.result.interrupted:
            break
    return plans
