"""Compiled Cython kernels (built from csrc/ by setup.py).

The large elementwise kernels may run on several OpenMP threads (csrc/threads.pxi), through
libgomp, which reads its settings from the environment when it loads. After a parallel region
libgomp's idle threads spin by default for ~3 ms here (GOMP_SPINCOUNT 300000), holding the
second core of a 2-core machine: a threaded relu on 1e6 float32 followed by a 128x128 GEMM on
2 OpenBLAS threads (which spin too) took 8.6 ms instead of 0.36 on one thread. A passive
wait policy (sleep at once) avoids that (0.37 ms) but makes every kernel wake its worker
(relu forward+backward through the Tensor API, 1e6 float32: 0.60 ns per element, against
0.47 spinning and 0.81 on one thread). So unless the user chose (OMP_WAIT_POLICY or
GOMP_SPINCOUNT set), the spin is bounded to ~30 us (3000 spins): long enough to keep the
worker awake from one kernel of a forward or backward pass to the next (0.49 ns per element
above), short enough not to stand long in another library's way (0.47 ms in the GEMM case).
The variable is set only while the extension loads libgomp and removed afterwards, so child
processes see the user's environment. It has no effect when libgomp was loaded before (for
instance by `import torch`, whose bundled libgomp then serves us too: its default spin
applies); loaded by us first, the bound applies to PyTorch's OpenMP threads as well.
"""

import os

_SPIN_DEFAULT = "3000"


def _load_with_bounded_spin() -> None:
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return  # the user's choice
    os.environ["GOMP_SPINCOUNT"] = _SPIN_DEFAULT
    try:
        from . import activations  # noqa: F401  (loads libgomp, which reads the variable)
    except ImportError:
        pass  # not built: microgradnet.backend names the fix when the kernels are used
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_load_with_bounded_spin()
