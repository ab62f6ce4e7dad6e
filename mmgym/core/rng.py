"""A cheap per-env random stream for numba kernels.

Each env owns one xoroshiro128+ state (Blackman & Vigna 2018, "Scrambled linear pseudorandom number
generators") in ``rng[i] = (s0, s1)``, ``rng: (num_envs, 2) uint64``. Every draw of env ``i`` comes
from its own stream in a fixed order, so no two components of an env ever see the same numbers and
common random numbers across policies hold exactly (the number of draws per step never depends on
the action). Uniforms use the top 53 bits; normals use Marsaglia's polar method with the second
variate cached in ``spare``.

States are seeded from NumPy's ``SeedSequence`` via :func:`rng_state_from_generator`, so per-env
streams inherit its independence guarantees.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U24 = np.uint64(24)
_U16 = np.uint64(16)
_U37 = np.uint64(37)
_U40 = np.uint64(40)
_U27 = np.uint64(27)
_U11 = np.uint64(11)
_U64_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


def rng_state_from_generator(generator: np.random.Generator) -> np.ndarray:
    """Draw a non-zero xoroshiro128+ state ``(2,) uint64`` from a NumPy generator."""
    state = generator.integers(1, np.iinfo(np.uint64).max, size=2, dtype=np.uint64, endpoint=True)
    return state


@njit(cache=True, inline="always")
def next_u64(rng, i):
    """Advance env ``i``'s xoroshiro128+ state and return 64 random bits."""
    s0 = rng[i, 0]
    s1 = rng[i, 1]
    result = s0 + s1
    s1 ^= s0
    rng[i, 0] = ((s0 << _U24) | (s0 >> _U40)) ^ s1 ^ (s1 << _U16)
    rng[i, 1] = (s1 << _U37) | (s1 >> _U27)
    return result


@njit(cache=True, inline="always")
def uniform(rng, i):
    """Uniform on [0, 1) with 53 random bits."""
    return float(next_u64(rng, i) >> _U11) * _U64_TO_UNIT


@njit(cache=True, inline="always")
def standard_normal(rng, i, spare, has_spare):
    """Standard normal by Marsaglia's polar method; the second variate is cached per env."""
    if has_spare[i]:
        has_spare[i] = False
        return spare[i]
    while True:
        u = 2.0 * uniform(rng, i) - 1.0
        v = 2.0 * uniform(rng, i) - 1.0
        s = u * u + v * v
        if 0.0 < s < 1.0:
            break
    m = np.sqrt(-2.0 * np.log(s) / s)
    spare[i] = v * m
    has_spare[i] = True
    return u * m
