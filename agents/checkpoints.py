"""Model files of a run directory: the model, its normalisation statistics and checkpoints.

Used by :mod:`mmgym.agents.train` and :mod:`mmgym.agents.callbacks` (the best model); neither imports the other
for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["save_model", "latest_checkpoint", "write_checkpoint"]

_CKPT_RE = re.compile(r"^step_(\d+)$")


def save_model(model: Any, directory: Path, vecnormalize: Any = None, replay_buffer: bool = False) -> Path:
    """Save ``model.zip`` (+ ``vecnormalize.pkl``, + ``replay_buffer.pkl``) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.zip")
    if vecnormalize is not None:
        vecnormalize.save(str(directory / "vecnormalize.pkl"))
    if replay_buffer and getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(directory / "replay_buffer.pkl")
    return directory / "model.zip"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder with the most steps under ``run_dir/checkpoints`` (None if none)."""
    ckpt = run_dir / "checkpoints"
    best: tuple[int, Path] | None = None
    if ckpt.is_dir():
        for p in ckpt.iterdir():
            m = _CKPT_RE.match(p.name)
            if m and (p / "model.zip").is_file() and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), p)
    return None if best is None else best[1]


def write_checkpoint(model: Any, run_dir: Path, vecnormalize: Any, off_policy: bool) -> Path:
    """Save a checkpoint into ``run_dir/checkpoints/step_<num_timesteps>/`` (off-policy replay
    buffers are kept in the latest checkpoint only)."""
    d = run_dir / "checkpoints" / f"step_{model.num_timesteps}"
    save_model(model, d, vecnormalize, replay_buffer=off_policy)
    if off_policy:  # the buffer is large: keep it in the latest checkpoint only
        for p in (run_dir / "checkpoints").glob("step_*/replay_buffer.pkl"):
            if p.parent != d:
                p.unlink()
    return d
