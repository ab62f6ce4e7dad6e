"""Numba kernels: numpy and numba only, batch-first ``(num_envs, ...)`` arrays, no Python per env."""
