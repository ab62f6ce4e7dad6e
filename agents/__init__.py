"""Learning agents: the only package that imports torch and stable-baselines3."""

from .vec_env import MMVecEnv, RowView, make_sb3_vec_env

__all__ = ["MMVecEnv", "RowView", "make_sb3_vec_env"]
