"""Shared set-up of the portfolio tests that step ``BatchMarket`` directly."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mmgym.envs.market import BatchMarket


class Stepped(NamedTuple):
    """A reset market of ``n`` rows seeded 0..n-1, its aux and reward-term column indices by name,
    and a zero action array to fill."""

    m: BatchMarket
    col: dict[str, int]
    term: dict[str, int]
    act: np.ndarray


def seeded_market(env: Any, n: int, raw_depths: bool = False) -> Stepped:
    """``BatchMarket(env, n, raw_depths)`` with rows seeded 0..n-1, reset."""
    m = BatchMarket(env, n, raw_depths=raw_depths)
    m.seed_rows(list(range(n)))
    m.reset()
    return Stepped(m, {c: j for j, c in enumerate(m.aux_names)}, {c: j for j, c in enumerate(m.term_names)},
                   np.zeros((n, m.action_dim)))
