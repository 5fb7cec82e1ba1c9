"""Which kernel set runs: the Cython kernels (default) or their numpy reference.

`kernels` is one object whose attributes are the active kernels; every op calls
`kernels.<name>(...)`, so switching backends swaps every kernel at once.
"""

from __future__ import annotations

import contextlib
import importlib
import numbers
import os
from collections.abc import Iterator
from types import ModuleType

from . import _reference
from ._kernel_modules import KERNEL_SET_MODULES, THREAD_COUNT_MODULES

__all__ = ["backend_name", "BACKENDS", "get_num_threads", "kernel_table", "kernels", "set_backend",
           "set_num_threads", "use_backend"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


BACKENDS = ("cython", "numpy")


class _KernelSet:
    """The active kernels as attributes (`kernels.relu_forward`, ...)."""

    name = "none"

    def __repr__(self) -> str:
        return f"<microgradnet kernels: {self.name}>"


kernels = _KernelSet()
_cache: dict[str, dict] = {}


def _load(name: str) -> dict:
    """Return {kernel name: function} for a backend, importing it once."""
    if name in _cache:
        return _cache[name]
    if name == "numpy":
        table = {k: getattr(_reference, k) for k in _reference.KERNEL_NAMES}
    elif name == "cython":
        modules: list[ModuleType] = []
        for mod in KERNEL_SET_MODULES:
            try:
                modules.append(importlib.import_module(f"microgradnet._kernels.{mod}"))
            except ImportError as exc:
                from ._build_hint import build_hint  # only when the kernels fail to load

                raise ImportError(build_hint(exc)) from exc
        table = {}
        for module in modules:
            for k in dir(module):
                if not k.startswith("_") and callable(getattr(module, k)):
                    table[k] = getattr(module, k)
        missing = sorted(set(_reference.KERNEL_NAMES) - set(table))
        if missing:
            raise ImportError(
                "microgradnet's Cython kernels are out of date (missing "
                + ", ".join(missing)
                + "): rebuild with `pip install .` or `python setup.py build_ext --inplace`."
            )
        table = {k: table[k] for k in _reference.KERNEL_NAMES}
    else:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    _cache[name] = table
    return table


def set_backend(name: str) -> None:
    """Make `name` ("cython" or "numpy") the kernel set every op uses from now on."""
    table = _load(name)
    kernels.__dict__.clear()
    kernels.__dict__.update(table)
    kernels.name = name


def backend_name() -> str:
    """Return the name of the active kernel set: "cython" or "numpy"."""
    return kernels.name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed block with every kernel taken from backend `name`."""
    previous = kernels.name
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


_MAX_THREADS = 1024


def _thread_count_modules() -> list[ModuleType]:
    try:
        return [
            importlib.import_module(f"microgradnet._kernels.{m}") for m in THREAD_COUNT_MODULES
        ]
    except ImportError:
        return []  # not built: nothing runs on threads


def set_num_threads(n: int) -> None:
    """Run microgradnet's large elementwise kernels on at most n threads (1: never threaded)."""
    # BLAS (matmul) has its own threads: OPENBLAS_NUM_THREADS or threadpoolctl set those.
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"the number of threads must be an int, got {type(n).__name__}")
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"the number of threads must be between 1 and {_MAX_THREADS}, got {n}")
    for module in _thread_count_modules():
        module._set_num_threads(int(n))


def get_num_threads() -> int:
    """Return the most threads a large elementwise kernel runs on (1 without OpenMP)."""
    modules = _thread_count_modules()
    return modules[0]._get_num_threads() if modules else 1


def kernel_table(name: str) -> dict:
    """Return {kernel name: function} of backend `name` without activating it."""
    return dict(_load(name))


set_backend(os.environ.get("MICROGRADNET_BACKEND", "cython").strip().lower() or "cython")
