"""Tensors made from a shape: zeros, ones, and random draws from microgradnet's generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Tensor, _as_dtype
from .random import generator

__all__ = ["ones", "rand", "randn", "zeros"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dims = []
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"shape must hold non-negative ints, got {shape}")
        dims.append(int(n))
    return tuple(dims)


def _make(data: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    dt = _as_dtype(dtype if dtype is not None else np.float32)
    return Tensor(data.astype(dt, copy=False), requires_grad=requires_grad, dtype=dt)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless `dtype` says otherwise)."""
    return _make(np.zeros(_shape(shape)), dtype, requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless `dtype` says otherwise)."""
    return _make(np.ones(_shape(shape)), dtype, requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal draws from microgradnet's seeded generator."""
    return _make(generator().standard_normal(_shape(shape)), dtype, requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform draws in [0, 1) from microgradnet's seeded generator."""
    return _make(generator().random(_shape(shape)), dtype, requires_grad)
