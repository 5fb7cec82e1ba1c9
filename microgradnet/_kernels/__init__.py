"""Compiled Cython kernels (built from csrc/ by setup.py).

The activation kernels may run large arrays on several OpenMP threads (libgomp, read when
the extension loads). After a parallel region libgomp's idle threads spin by default for
about 3 ms on this machine (GOMP_SPINCOUNT 300000): on a 2-core machine that steals the
second core from whatever runs next, and with OpenBLAS's own spinning threads a relu then
a 2-thread 128x128 GEMM took 9 ms instead of 0.4. A passive wait policy (sleep at once)
costs a futex wake per kernel instead (relu forward+backward 1e6 float32 through the
Tensor API: 0.58 ns per element against 0.46 spinning). So unless the user chose a policy
(OMP_WAIT_POLICY or GOMP_SPINCOUNT set), the spin is bounded to ~30 us (3000 spins), long
enough to keep the worker awake between the kernels of a forward and backward pass and
short enough not to stand in another library's way. The variable is set only while the
extension (and with it libgomp) loads, then removed, so child processes and libraries that
load later see the user's environment. It has no effect if something loaded libgomp before.
"""

import os

_SPIN_DEFAULT = "3000"


def _load_with_bounded_spin() -> None:
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["GOMP_SPINCOUNT"] = _SPIN_DEFAULT
    try:
        from . import activations  # noqa: F401  (loads libgomp, which reads the variable)
    except ImportError:
        pass  # not built: microgradnet.backend names the fix when the kernels are used
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_load_with_bounded_spin()
