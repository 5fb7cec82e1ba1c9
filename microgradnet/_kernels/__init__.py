"""Compiled Cython kernels (built from csrc/ by setup.py).

The large elementwise kernels may run on several OpenMP threads (csrc/threads.pxi), through
libgomp, which reads its settings from the environment when it loads. After a parallel region
libgomp's idle threads spin by default for milliseconds, holding a core that another
library's threads (OpenBLAS's, which spin too) may need; a passive wait policy (sleep at once)
avoids that but makes every kernel wake its worker. So unless the user chose (OMP_WAIT_POLICY
or GOMP_SPINCOUNT set), GOMP_SPINCOUNT bounds the spin to 3000 spins: long enough to keep
the worker awake from one kernel of a forward or backward pass to the next, short enough not
to stand long in another library's way (measured in README.md, "Threads").
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
