"""numpy's protocols on Tensors: numpy functions of Tensors run as microgradnet ops.

`np.exp(t)`, `np.mean(t, axis=0)`, `np.dot(x, w)`, `np.clip(t, 0, 1)`, ... dispatch to the op
of the same meaning (`Tensor.__array_ufunc__`, `Tensor.__array_function__`), so the result is
a Tensor that stays in the graph. A function without such an op raises a TypeError naming
what to use instead, rather than silently dropping out of the graph. A few functions whose
result has no gradient anyway (shapes, argmax, any/all, isnan, allclose, ...) run on the data
and return numpy values. `np.asarray(t)` and `np.array(t)` still convert through `__array__`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import functional as F
from .autograd import Tensor, _bump_version, as_tensor, is_grad_enabled

__all__ = ["array_function", "array_ufunc"]


# ufunc -> the op computing it (in the graph)
UFUNC_OPS: dict[np.ufunc, Callable[..., Tensor]] = {
    np.add: F.add, np.subtract: F.sub, np.multiply: F.mul, np.divide: F.div,
    np.power: F.pow, np.negative: F.neg, np.positive: as_tensor, np.exp: F.exp,
    np.log: F.log, np.sqrt: F.sqrt, np.absolute: F.abs, np.maximum: F.maximum,
    np.minimum: F.minimum, np.tanh: F.tanh, np.matmul: F.matmul,
    # comparisons give bool tensors outside the graph, as the operators do
    np.less: F.less, np.less_equal: F.less_equal, np.greater: F.greater,
    np.greater_equal: F.greater_equal, np.equal: F.equal, np.not_equal: F.not_equal,
}

# ufuncs whose result has no gradient: computed on the data, a numpy array back
UFUNC_QUERIES = {np.isnan, np.isinf, np.isfinite, np.signbit}

# what to write instead of a ufunc that has no op
UFUNC_HINTS = {
    np.square: "t ** 2", np.reciprocal: "1 / t", np.fabs: "mg.abs(t)", np.exp2: "2 ** t",
    np.log1p: "mg.log(1 + t)", np.expm1: "mg.exp(t) - 1", np.log2: "mg.log(t) / math.log(2)",
    np.log10: "mg.log(t) / math.log(10)", np.fmax: "mg.maximum(a, b)",
    np.fmin: "mg.minimum(a, b)", np.float_power: "t ** p", np.cbrt: "t ** (1 / 3)",
}

# ufunc methods other than __call__ that have an op
REDUCE_HINTS = {
    np.add: "mg.sum(t, axis) or t.sum(axis)", np.maximum: "mg.max(t, axis) or t.max(axis)",
    np.minimum: "mg.min(t, axis) or t.min(axis)",
}


def _refuse(what: str, hint: str | None) -> TypeError:
    if hint is None:
        return TypeError(
            f"{what} has no microgradnet op, so it cannot stay in the graph: for the values "
            f"alone (no gradient), call it on t.numpy() (or t.data) explicitly"
        )
    return TypeError(f"{what} has no microgradnet op: use {hint} (it stays in the graph)")


def _data(value: Any) -> Any:
    """value with Tensors (also inside lists and tuples) replaced by their arrays."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_data(v) for v in value)
    return value


def _needs_graph(values: Any) -> bool:
    """Whether an op of these values would be recorded in the graph."""
    return is_grad_enabled() and any(
        isinstance(v, Tensor) and v.requires_grad for v in values
    )


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """Tensor.__array_ufunc__: run `ufunc` as its microgradnet op."""
    name = f"np.{ufunc.__name__}"
    if method != "__call__":
        hint = REDUCE_HINTS.get(ufunc) if method == "reduce" else None
        raise _refuse(f"{name}.{method}", hint)
    out = kwargs.pop("out", None)
    if ufunc in UFUNC_QUERIES and out is None:
        return ufunc(*_data(inputs), **kwargs)
    if out is not None:
        return _into(ufunc, name, inputs, out, kwargs)
    op = UFUNC_OPS.get(ufunc)
    if op is None:
        raise _refuse(name, UFUNC_HINTS.get(ufunc))
    if kwargs:
        raise TypeError(f"{name} on tensors takes no {', '.join(sorted(kwargs))}= (the op "
                        f"{op.__name__} does not): convert with mg.cast, or index the result")
    return op(*inputs)


def _into(ufunc: np.ufunc, name: str, inputs: tuple, out: Any, kwargs: dict) -> Any:
    """A ufunc with out=: into numpy arrays (e.g. `array += t`) or in place into a tensor."""
    outs = out if isinstance(out, tuple) else (out,)
    if _needs_graph(inputs) or _needs_graph(outs):
        raise TypeError(
            f"{name}(..., out=...) with a tensor that requires grad would write around the "
            f"graph: write it as an op (t = t + x), or under mg.no_grad() (a tensor's own "
            f"in-place t += x), or on t.numpy() for the values alone"
        )
    ufunc(*_data(inputs), out=tuple(_data(o) for o in outs), **kwargs)
    for o in outs:
        if isinstance(o, Tensor):
            _bump_version(o)
    return outs[0] if len(outs) == 1 else outs

# --------------------------------------------------------------------------- functions


def _no(name: str, **given: Any) -> None:
    """Refuse numpy arguments the op has no use for (given a value other than their
    default None, or True for where)."""
    bad = [k for k, v in given.items() if v is not None and not (k == "where" and v is True)]
    if bad:
        raise TypeError(f"np.{name} on tensors takes no {', '.join(bad)}= (the microgradnet "
                        f"op does not)")


def _reduction(op: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
    def run(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: Any = False, initial: Any = None, where: Any = True) -> Tensor:
        _no(name, dtype=dtype, out=out, initial=initial, where=where)
        return op(a, axis, bool(keepdims))

    return run


def _extremum(op: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
    def run(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False,
            initial: Any = None, where: Any = True) -> Tensor:
        _no(name, out=out, initial=initial, where=where)
        return op(a, axis, bool(keepdims))

    return run


def _dot(a: Any, b: Any, out: Any = None) -> Tensor:
    _no("dot", out=out)
    if np.ndim(_data(a)) == 0 or np.ndim(_data(b)) == 0:
        return F.mul(a, b)
    if np.ndim(_data(a)) > 2 or np.ndim(_data(b)) > 2:
        raise TypeError("np.dot of tensors of more than 2 dimensions has no microgradnet op: "
                        "use mg.matmul(a, b) (numpy's matmul semantics: batched)")
    return F.matmul(a, b)


def _clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *, min: Any = None,
          max: Any = None, **kwargs: Any) -> Tensor:
    _no("clip", out=out, **kwargs)
    low = a_min if a_min is not None else min
    high = a_max if a_max is not None else max
    return F.clip(a, low, high)


def _reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
             copy: Any = None) -> Tensor:
    if order != "C":
        raise TypeError("np.reshape on tensors: only order='C' (mg.reshape's)")
    _no("reshape", copy=copy)
    return F.reshape(a, shape if shape is not None else newshape)


def _transpose(a: Any, axes: Any = None) -> Tensor:
    return F.transpose(a, axes)


def _concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
                 casting: Any = None) -> Tensor:
    _no("concatenate", out=out, dtype=dtype, casting=casting)
    if axis is None:
        raise TypeError("np.concatenate(..., axis=None) on tensors: flatten them first "
                        "(t.reshape(-1)), then mg.concatenate")
    return F.concatenate(arrays, axis)


def _stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None,
           casting: Any = None) -> Tensor:
    _no("stack", out=out, dtype=dtype, casting=casting)
    return F.stack(arrays, axis)


_MISSING = object()


def _where(condition: Any, x: Any = _MISSING, y: Any = _MISSING) -> Any:
    if x is _MISSING and y is _MISSING:
        return np.where(_data(condition))  # the indices: no gradient
    if x is _MISSING or y is _MISSING:
        raise TypeError("np.where needs both x and y, or neither")
    return F.where(condition, x, y)


FUNCTION_OPS: dict[Callable, Callable[..., Any]] = {
    np.sum: _reduction(F.sum, "sum"), np.mean: _reduction(F.mean, "mean"),
    np.max: _extremum(F.max, "max"), np.min: _extremum(F.min, "min"),
    np.amax: _extremum(F.max, "amax"), np.amin: _extremum(F.min, "amin"),
    np.dot: _dot, np.clip: _clip, np.reshape: _reshape, np.transpose: _transpose,
    np.concatenate: _concatenate, np.stack: _stack, np.where: _where,
}

# functions whose result has no gradient: run on the data, numpy values back
FUNCTION_QUERIES = {
    np.shape, np.ndim, np.size, np.any, np.all, np.argmax, np.argmin, np.argsort,
    np.count_nonzero, np.nonzero, np.flatnonzero, np.argwhere, np.allclose, np.isclose,
    np.array_equal, np.array_equiv, np.result_type, np.may_share_memory, np.shares_memory,
    np.histogram, np.histogram_bin_edges, np.bincount, np.unique, np.searchsorted, np.digitize,
}

# what to write instead of a function that has no op
FUNCTION_HINTS = {
    "ravel": "t.reshape(-1)", "squeeze": "t.reshape(shape)", "expand_dims": "t.reshape(shape)",
    "matmul": "a @ b", "inner": "(a * b).sum(-1)", "outer": "a.reshape(-1, 1) * b",
    "swapaxes": "t.transpose(axes)", "moveaxis": "t.transpose(axes)",
    "vstack": "mg.concatenate", "hstack": "mg.concatenate", "tensordot": "mg.matmul",
    "prod": "mg.exp(mg.log(t).sum(axis)) for positive t", "var": "((t - t.mean()) ** 2).mean()",
    "std": "mg.sqrt(((t - t.mean()) ** 2).mean())", "copy": "t + 0 (or t.numpy().copy())",
    "norm": "mg.sqrt((t ** 2).sum())", "average": "mg.mean, or (t * w).sum() / w.sum()",
}


def array_function(func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
    """Tensor.__array_function__: run `func` as its microgradnet op."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    op = FUNCTION_OPS.get(func)
    if op is not None:
        return op(*args, **kwargs)
    if func in FUNCTION_QUERIES:
        return func(*_data(args), **{k: _data(v) for k, v in kwargs.items()})
    name = func.__name__
    module = getattr(func, "__module__", "numpy") or "numpy"
    prefix = "np.linalg." if module.startswith("numpy.linalg") else "np."
    raise _refuse(f"{prefix}{name}", FUNCTION_HINTS.get(name))
