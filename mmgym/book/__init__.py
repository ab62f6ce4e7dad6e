"""The numba limit order book: a batched tick-ladder simulator (numpy + numba only in ``kernel``).

``kernel`` holds the state layout (:class:`~mmgym.book.kernel.BookState`) and the njit operations
and background flow; ``config`` the pydantic ``BookConfig`` schema. The Gymnasium layer is
:mod:`mmgym.envs.lob`, the estimator :mod:`mmgym.calibrate`.
"""
