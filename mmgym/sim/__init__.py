"""The simulation layer: numba kernels over batch-first ``(num_envs, ...)`` arrays.

numpy and numba only (nothing here imports gymnasium, pydantic or torch):

- :mod:`~mmgym.sim.rng`: one xoroshiro128+ stream per env, ziggurat normal/exponential variates;
- :mod:`~mmgym.sim.vecmath`: exp/log over arrays in loops LLVM vectorises;
- :mod:`~mmgym.sim.book`: the limit-order-book engine (ladder, FIFO queues, background flow).
"""
