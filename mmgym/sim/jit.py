"""How mmgym's kernels are compiled: one policy for every numba function of the simulation layer.

Cold compile time matters to a new user as much as speed (the first ``gym.make`` compiles every
kernel a scenario reaches), so the flags are explicit and the kinds few:

- :data:`entry`: a kernel Python calls (a scenario's ``step``/``reset``, the book engine's one
  Python entry point). It has numba's CPython wrapper.
- :data:`kernel`: a kernel only numba calls, out of line. Compiled without the CPython wrapper
  (:class:`NumbaOnlyDispatcher`): unboxing a state of a dozen arrays is a large part of a small
  kernel's cold compile, and nothing calls these from Python.
- :data:`hot`: as :data:`kernel`, marked for LLVM to inline (``forceinline``): small and hot.

All three compile without reference counting (``_nrt=False``: nothing in a step allocates), with
``error_model="numpy"`` (no zero-division checks: divisors are checked or constant), without
fastmath, and with every other flag numba would otherwise inherit from whichever caller compiles
a function first set explicitly, so a kernel compiles (and is cached) the same whoever calls it.
Small scalar helpers a kernel inlines at numba's IR level keep ``@njit(cache=True,
inline="always")`` (the step skeleton's processes): they take on their caller's flags.

:func:`opaque` hides a loop counter from LLVM so that a short or rarely run loop is neither
unrolled nor vectorised (that code otherwise grows every caller that links it in).
"""

from __future__ import annotations

from llvmlite import ir as _llvm_ir  # numba's own IR builder, for the one intrinsic below
from numba import njit, types
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic

__all__ = ["FLAGS", "NumbaOnlyDispatcher", "entry", "kernel", "hot", "opaque"]

#: The compile flags of every kernel (module docstring).
FLAGS = dict(_nrt=False, fastmath=False, error_model="numpy", boundscheck=False, no_cfunc_wrapper=True)


class NumbaOnlyDispatcher(CPUDispatcher):
    """A numba dispatcher compiled without a CPython wrapper, for numba-compiled callers.

    A Python call runs ``python_impl`` if one is set (the same rule in Python), and otherwise
    raises ``TypeError`` rather than jumping into the missing wrapper.
    """

    python_impl = None

    def __call__(self, *args, **kwargs):
        if self.python_impl is not None:
            return self.python_impl(*args, **kwargs)
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__name__} is compiled for numba "
                        "callers only")


def _numba_only(forceinline: bool):
    opts = dict(FLAGS, forceinline=forceinline, nopython=True, no_cpython_wrapper=True)

    def decorate(func):
        dispatcher = NumbaOnlyDispatcher(py_func=func, locals={}, targetoptions=opts)
        dispatcher.enable_caching()
        return dispatcher

    return decorate


#: A kernel Python calls (with the CPython wrapper), cached.
entry = njit(cache=True, forceinline=False, **FLAGS)
#: A kernel only numba calls, out of line, cached.
kernel = _numba_only(forceinline=False)
#: A small hot kernel only numba calls; LLVM inlines it into its callers.
hot = _numba_only(forceinline=True)


@intrinsic
def opaque(typingctx, x):
    """Identity on an integer that LLVM cannot see through (an empty inline asm).

    Loops over order slots and cold loops step as ``j = opaque(j + 1)``: LLVM then cannot
    compute their trip count, so it neither unrolls nor vectorises them. numba has no
    per-function optimisation level, and the unrolled and vectorised copies of such few-pass
    loops made up most of the code every caller of the book engine links in and compiles again.
    """
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        (v,) = args
        fnty = _llvm_ir.FunctionType(v.type, [v.type])
        return builder.asm(fnty, "", "=r,0", [v], side_effect=False, name="opaque")

    return x(x), codegen
