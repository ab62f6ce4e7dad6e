"""A cheap per-env random stream for numba kernels.

Each env owns one xoroshiro128+ state (Blackman & Vigna 2018, "Scrambled linear pseudorandom number
generators") in ``rng[i] = (s0, s1)``, ``rng: (num_envs, 2) uint64``. Every draw of env ``i`` comes
from its own stream in a fixed order, so no two components of an env ever see the same numbers and
common random numbers across policies hold exactly (the number of draws per step never depends on
the action). Uniforms use the top 53 bits; normal and exponential variates use the ziggurat method
(:func:`zig_normal`, :func:`zig_exponential`). Kernels keep the state in two locals while they draw
(:func:`xoroshiro_next`) and store it back once per step.

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
def xoroshiro_next(s0, s1):
    """One xoroshiro128+ step on a scalar state: returns (64 random bits, new s0, new s1).

    Kernels load ``rng[i]`` into two locals, draw, and store them back once per step: passing the
    array itself into a helper per draw costs a reference-count round trip per call.
    """
    result = s0 + s1
    s1 ^= s0
    n0 = ((s0 << _U24) | (s0 >> _U40)) ^ s1 ^ (s1 << _U16)
    n1 = (s1 << _U37) | (s1 >> _U27)
    return result, n0, n1


@njit(cache=True, inline="always")
def to_unit(bits):
    """Uniform on [0, 1) from the top 53 of 64 random bits."""
    return float(bits >> _U11) * _U64_TO_UNIT


@njit(cache=True)
def uniform(rng, i):
    """Uniform on [0, 1) from env ``i``'s stream (convenience for non-hot code)."""
    bits, rng[i, 0], rng[i, 1] = xoroshiro_next(rng[i, 0], rng[i, 1])
    return to_unit(bits)


# ------------------------------------------------------------------------------ ziggurat ---
# Marsaglia & Tsang (2000), "The Ziggurat Method for Generating Random Variables", J. Stat.
# Software 5(8): 128 layers for the normal, 256 for the exponential, tables built as in the paper's
# zigset(). Layer index and value come from different bits of one 64-bit draw (Doornik 2005 notes
# the paper's reuse of the same bits correlates them).
def _normal_tables():
    m1 = 2147483648.0
    dn = tn = 3.442619855899
    vn = 9.91256303526217e-3
    q = vn / np.exp(-0.5 * dn * dn)
    kn = np.zeros(128, dtype=np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


def _exponential_tables():
    m2 = 4294967296.0
    de = te = 7.697117470131487
    ve = 3.949659822581572e-3
    q = ve / np.exp(-de)
    ke = np.zeros(256, dtype=np.int64)
    we = np.zeros(256)
    fe = np.zeros(256)
    ke[0] = int((de / q) * m2)
    ke[1] = 0
    we[0] = q / m2
    we[255] = de / m2
    fe[0] = 1.0
    fe[255] = np.exp(-de)
    for i in range(254, 0, -1):
        de = -np.log(ve / de + np.exp(-de))
        ke[i + 1] = int((de / te) * m2)
        te = de
        fe[i] = np.exp(-de)
        we[i] = de / m2
    return ke, we, fe


ZIG_KN, ZIG_WN, ZIG_FN = _normal_tables()
ZIG_KE, ZIG_WE, ZIG_FE = _exponential_tables()
_ZIG_R = 3.442619855899
_U32 = np.uint64(32)
_U8 = np.uint64(8)
_M127 = np.uint64(127)
_M255 = np.uint64(255)


@njit(cache=True, inline="always")
def zig_normal(s0, s1):
    """Standard normal by the ziggurat (Marsaglia & Tsang 2000, RNOR): returns (z, s0, s1).

    About 99% of draws take the fast path: one 64-bit draw, a table look-up and a compare.
    """
    kn = ZIG_KN
    wn = ZIG_WN
    fn = ZIG_FN
    while True:
        bits, s0, s1 = xoroshiro_next(s0, s1)
        hz = np.int64(bits >> _U32) - 2147483648
        iz = np.int64((bits >> _U8) & _M127)
        if abs(hz) < kn[iz]:
            return hz * wn[iz], s0, s1
        if iz == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                b1, s0, s1 = xoroshiro_next(s0, s1)
                b2, s0, s1 = xoroshiro_next(s0, s1)
                x = -np.log(1.0 - to_unit(b1)) / _ZIG_R
                y = -np.log(1.0 - to_unit(b2))
                if y + y >= x * x:
                    break
            return (_ZIG_R + x if hz > 0 else -_ZIG_R - x), s0, s1
        x = hz * wn[iz]
        b1, s0, s1 = xoroshiro_next(s0, s1)
        if fn[iz] + to_unit(b1) * (fn[iz - 1] - fn[iz]) < np.exp(-0.5 * x * x):
            return x, s0, s1


@njit(cache=True, inline="always")
def zig_exponential(s0, s1):
    """Standard exponential by the ziggurat (Marsaglia & Tsang 2000, REXP): returns (e, s0, s1)."""
    ke = ZIG_KE
    we = ZIG_WE
    fe = ZIG_FE
    while True:
        bits, s0, s1 = xoroshiro_next(s0, s1)
        jz = np.int64(bits >> _U32)
        iz = np.int64((bits >> _U8) & _M255)
        if jz < ke[iz]:
            return jz * we[iz], s0, s1
        if iz == 0:  # memoryless tail beyond r
            b1, s0, s1 = xoroshiro_next(s0, s1)
            return 7.697117470131487 - np.log(1.0 - to_unit(b1)), s0, s1
        x = jz * we[iz]
        b1, s0, s1 = xoroshiro_next(s0, s1)
        if fe[iz] + to_unit(b1) * (fe[iz - 1] - fe[iz]) < np.exp(-x):
            return x, s0, s1
