"""Every differentiable op: its Function (forward, backward, kernel dispatch) and its function.

Each op stands in one place: the Function subclass computes the result from arrays and saves
what its backward needs; the plain function next to it converts arguments to Tensors and
applies it. `REGISTRY` lists them all by name (tests and benchmarks iterate over it).
Gradients of broadcast inputs are reduced in the engine (autograd.py), not here.
"""

from __future__ import annotations

import builtins
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    import cython
except ImportError:  # uncompiled, without Cython installed
    from . import _cython_shim as cython

from .activation_table import ACTIVATIONS as ACTIVATION_TABLE
from .activation_table import ActivationSpec
from .autograd import Function, Tensor, _share_version, _to_numpy, as_tensor, tensors
from .backend import kernels as K

if not cython.compiled:
    # Compiled, functional.pxd cimports these C functions of autograd.
    from .autograd import (
        _apply1,
        _apply2,
        _elementwise,
        _filled,
        _float_matrices,
        _float_pair,
        _is_float_array,
        _link1,
        _scalar_like,
    )

__all__ = ["Abs", "abs", "ACTIVATIONS", "Add", "add", "Cast", "cast", "Clip", "clip", "Concatenate",
           "concatenate", "Div", "div", "equal", "Exp", "exp", "GetItem", "getitem", "greater",
           "greater_equal", "less", "less_equal", "Linear", "linear", "Log", "log", "log_softmax",
           "LogSoftmax", "MatMul", "matmul", "Max", "max", "Maximum", "maximum", "Mean", "mean",
           "Min", "min", "Minimum", "minimum", "mse_loss", "MSELoss", "Mul", "mul", "Neg", "neg",
           "not_equal", "Pow", "pow", "REGISTRY", "Reshape", "reshape",
           "sigmoid_binary_cross_entropy", "SigmoidBinaryCrossEntropy", "Softmax", "softmax",
           "softmax_cross_entropy", "SoftmaxCrossEntropy", "SparseSoftmaxCrossEntropy", "Sqrt",
           "sqrt", "Stack", "stack", "Sub", "sub", "Sum", "sum", "Transpose", "transpose", "Where",
           "where", *(spec.name for spec in ACTIVATION_TABLE)]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a plain number or array takes the other's dtype."""
    if isinstance(a, Tensor):
        return a, (b if isinstance(b, Tensor) else as_tensor(b, a))
    if isinstance(b, Tensor):
        return as_tensor(a, b), b
    a = Tensor(a)
    return a, as_tensor(b, a)


def _floating(x: Any, op: str) -> Tensor:
    """x as a Tensor, which must be float32 or float64 for `op`."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    data = cython.cast(Tensor, x).data
    if not _is_float_array(data) and data.dtype not in _FLOATS:
        raise TypeError(f"{op} needs a float32 or float64 tensor, got {data.dtype}")
    return x


def _multiply(a: Any, b: Any) -> Any:
    """a * b (numpy's bits), through the elementwise kernel when it takes a and b."""
    return K.multiply(a, b) if _elementwise(a, b) else a * b


def _negative(a: Any) -> Any:
    """-a (numpy's bits), through the elementwise kernel when it takes a."""
    return K.negative(a) if _elementwise(a, a) else -a


def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalize an axis argument (None, int or sequence of ints) to a sorted tuple."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    return tuple(sorted(np.lib.array_utils.normalize_axis_tuple(tuple(axis), ndim)))


# =========================================================================== arithmetic


class Add(Function):
    name = "add"
    saves = ()

    def forward(self, a, b):
        # the kernel where numpy would neither broadcast nor promote and would lay the result
        # out in C order: numpy's bits, faster
        return K.add(a, b) if _elementwise(a, b) else a + b

    def backward(self, grad):
        return grad, grad


def add(a: Any, b: Any) -> Tensor:
    """Elementwise a + b, broadcasting."""
    if type(a) is Tensor and type(b) is Tensor:
        return _apply2(Add(), a, b)  # Add.apply, without its generic argument handling
    return Add.apply(*_pair(a, b))


class Sub(Function):
    name = "sub"
    saves = ()

    def forward(self, a, b):
        return K.subtract(a, b) if _elementwise(a, b) else a - b

    def backward(self, grad):
        return grad, _negative(grad) if self.needs_input_grad[1] else None


def sub(a: Any, b: Any) -> Tensor:
    """Elementwise a - b, broadcasting."""
    if type(a) is Tensor and type(b) is Tensor:
        return _apply2(Sub(), a, b)
    return Sub.apply(*_pair(a, b))


class Mul(Function):
    name = "mul"
    saves = (0, 1)

    def forward(self, a, b):
        self.saved = (a, b)
        return _multiply(a, b)

    def backward(self, grad):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (_multiply(grad, b) if need_a else None, _multiply(grad, a) if need_b else None)


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise a * b, broadcasting."""
    if type(a) is Tensor and type(b) is Tensor:
        return _apply2(Mul(), a, b)
    return Mul.apply(*_pair(a, b))


class Div(Function):
    name = "div"
    saves = (1,)
    saves_output = True

    def forward(self, a, b):
        self.b = b
        self.out = out = a / b
        return out

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        ga = grad / self.b
        return (ga if need_a else None, -ga * self.out if need_b else None)


def div(a: Any, b: Any) -> Tensor:
    """Elementwise a / b, broadcasting."""
    return Div.apply(*_pair(a, b))


class Pow(Function):
    name = "pow"
    saves = (0, 1)
    saves_output = True

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = out = a**b
        return out

    def backward(self, grad):
        a, b = self.a, self.b
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_a:
                # NOTE: d(a^0)/da = 0, also at a == 0 where b * a^(b-1) would be 0 * inf.
                ga = np.where(b == 0, 0, grad * b * a ** (b - 1))
            if need_b:
                # NOTE: d(a^b)/db = a^b log a; taken as 0 at a == 0 (b >= 0), as PyTorch does.
                gb = np.where((a == 0) & (b >= 0), 0, grad * self.out * np.log(a))
        return ga, gb


def pow(a: Any, b: Any) -> Tensor:
    """Elementwise a ** b, broadcasting."""
    return Pow.apply(*_pair(a, b))


class Neg(Function):
    name = "neg"
    saves = ()

    def forward(self, a):
        return _negative(a)

    def backward(self, grad):
        return _negative(grad)


def neg(a: Any) -> Tensor:
    """Elementwise -a."""
    return _apply1(Neg(), as_tensor(a))


class Maximum(Function):
    name = "maximum"
    saves = ()

    def forward(self, a, b):
        # NOTE: at a tie both inputs get half the gradient (as PyTorch does).
        self.weight_a = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
        return np.maximum(a, b)

    def backward(self, grad):
        w = self.weight_a.astype(grad.dtype, copy=False)
        return grad * w, grad * (1 - w)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum of a and b, broadcasting; ties share the gradient."""
    return Maximum.apply(*_pair(a, b))


class Minimum(Function):
    name = "minimum"
    saves = ()

    def forward(self, a, b):
        self.weight_a = np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0))
        return np.minimum(a, b)

    def backward(self, grad):
        w = self.weight_a.astype(grad.dtype, copy=False)
        return grad * w, grad * (1 - w)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum of a and b, broadcasting; ties share the gradient."""
    return Minimum.apply(*_pair(a, b))


class Where(Function):
    name = "where"
    saves = ()

    def forward(self, a, b, condition):
        self.condition = condition
        return np.where(condition, a, b)

    def backward(self, grad):
        c = self.condition
        need_a, need_b = self.needs_input_grad
        zero = grad.dtype.type(0)
        return (
            np.where(c, grad, zero) if need_a else None,
            np.where(c, zero, grad) if need_b else None,
        )


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise `a` where condition is true, else `b` (the condition gets no gradient)."""
    cond = _to_numpy(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        cond = cond != 0
    a, b = _pair(a, b)
    return Where.apply(a, b, condition=cond)


# =========================================================================== unary math


class Exp(Function):
    name = "exp"
    saves = ()
    saves_output = True

    def forward(self, a):
        self.out = out = np.exp(a)
        return out

    def backward(self, grad):
        return grad * self.out


def exp(a: Any) -> Tensor:
    """Elementwise e ** a."""
    return Exp.apply(_floating(a, "exp"))


class Log(Function):
    name = "log"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return grad / self.a


def log(a: Any) -> Tensor:
    """Elementwise natural logarithm (nan below 0, -inf at 0, as IEEE says)."""
    return Log.apply(_floating(a, "log"))


class Sqrt(Function):
    name = "sqrt"
    saves = ()
    saves_output = True

    def forward(self, a):
        self.out = out = np.sqrt(a)
        return out

    def backward(self, grad):
        return grad / (2 * self.out)


def sqrt(a: Any) -> Tensor:
    """Elementwise square root."""
    return Sqrt.apply(_floating(a, "sqrt"))


class Abs(Function):
    name = "abs"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, grad):
        # NOTE: abs'(0) = 0 (the subgradient PyTorch picks).
        return grad * np.sign(self.a)


def abs(a: Any) -> Tensor:
    """Elementwise absolute value."""
    return Abs.apply(as_tensor(a))


class Clip(Function):
    name = "clip"
    saves = ()

    def forward(self, a, low, high):
        # NOTE: the gradient passes where low <= a <= high, the bounds included.
        inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a >= low
        if high is not None:
            inside &= a <= high
        self.inside = inside
        return np.clip(a, low, high)

    def backward(self, grad):
        return np.where(self.inside, grad, grad.dtype.type(0))


def clip(a: Any, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to [min, max] (either bound may be None)."""
    a = as_tensor(a)
    if min is None and max is None:
        raise ValueError("clip needs min, max or both")
    if min is not None and max is not None and np.any(np.asarray(min) > np.asarray(max)):
        raise ValueError(f"clip: min {min} is greater than max {max}")
    return Clip.apply(a, low=min, high=max)


# =========================================================================== reductions


# Above this many elements, a reduction's gradient is spread as a read-only broadcast view:
# writing a fresh array costs more than np.broadcast_to's Python-level work there.
_SPREAD_COPY_MAX = 1 << 14


def _spread(grad: np.ndarray, shape: tuple, axes: tuple[int, ...] | None) -> np.ndarray:
    """The gradient of a reduction over `axes` (None: all), spread back over the input's shape.

    Small: a fresh array filled by assignment, two C calls where np.expand_dims and
    np.broadcast_to run Python-level code. Large: the broadcast view, no memory written."""
    large = math.prod(shape) > _SPREAD_COPY_MAX
    if axes is None and not large:
        filled = _filled(shape, grad)  # the gradient of a sum of all: one value everywhere
        if filled is not None:
            return filled
    kept = tuple([1 if axes is None or i in axes else n for i, n in enumerate(shape)])
    if large:
        return np.broadcast_to(grad.reshape(kept), shape)
    out = np.empty(shape, grad.dtype)
    out[...] = grad.reshape(kept)
    return out


class Sum(Function):
    name = "sum"
    saves = ()

    def forward(self, a, axes, keepdims):
        self.shape, self.axes = a.shape, axes
        if axes is None and not keepdims and _is_float_array(a):
            return K.sum_all(a)  # np.add.reduce's bits
        # np.add.reduce is what np.sum runs (the same bits), without its Python-level wrapper
        return np.add.reduce(a, axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _spread(grad, self.shape, self.axes)


def sum(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum over `axis` (an int, a tuple of ints, or None for all)."""
    a = as_tensor(a)
    ctx = Sum()
    return _link1(ctx, ctx.forward(a.data, _axes(axis, a.ndim), keepdims), a)


class Mean(Function):
    name = "mean"
    saves = ()

    def forward(self, a, axes, keepdims):
        self.shape, self.axes = a.shape, axes
        reduced = a.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
        self.scale = 1.0 / reduced if reduced else np.nan
        return np.mean(a, axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _spread(grad * grad.dtype.type(self.scale), self.shape, self.axes)


def mean(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over `axis` (an int, a tuple of ints, or None for all)."""
    a = as_tensor(a)
    ctx = Mean()
    return _link1(ctx, ctx.forward(a.data, _axes(axis, a.ndim), keepdims), a)


class _Extremum(Function):
    reduce = staticmethod(np.max)
    saves = (0,)
    saves_output = True

    def forward(self, a, axes, keepdims):
        if a.size == 0:
            raise ValueError(f"{self.name} of an empty tensor (shape {a.shape}) has no value")
        self.a, self.axes, self.keepdims = a, axes, keepdims
        self.out_kept = out = self.reduce(a, axis=axes, keepdims=True)
        if keepdims:
            return out
        return out.reshape(()) if axes is None else np.squeeze(out, axis=axes)

    def backward(self, grad):
        # NOTE: tied extremes share the gradient equally (as PyTorch's amax/amin do).
        if not self.keepdims:
            grad = np.reshape(grad, self.out_kept.shape)
        hit = self.a == self.out_kept
        count = np.sum(hit, axis=self.axes, keepdims=True)
        return np.where(hit, grad / np.maximum(count, 1), grad.dtype.type(0))


class Max(_Extremum):
    name = "max"
    reduce = staticmethod(np.max)


class Min(_Extremum):
    name = "min"
    reduce = staticmethod(np.min)


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Maximum over `axis`; tied maxima share the gradient equally."""
    a = as_tensor(a)
    return Max.apply(a, axes=_axes(axis, a.ndim), keepdims=keepdims)


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Minimum over `axis`; tied minima share the gradient equally."""
    a = as_tensor(a)
    return Min.apply(a, axes=_axes(axis, a.ndim), keepdims=keepdims)


# =========================================================================== shapes


class Reshape(Function):
    name = "reshape"
    saves = ()

    def forward(self, a, shape):
        self.shape = a.shape
        return np.reshape(a, shape)

    def backward(self, grad):
        return np.reshape(grad, self.shape)


def reshape(a: Any, shape: Any) -> Tensor:
    """Return the data in a new shape (one dimension may be -1)."""
    a = as_tensor(a)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    out = Reshape.apply(a, shape=shape)
    if out.data.base is not None and np.may_share_memory(out.data, a.data):
        _share_version(out, a)  # a view: in-place changes of one show in the other
    return out


class Transpose(Function):
    name = "transpose"
    saves = ()

    def forward(self, a, axes):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, grad):
        if self.axes is None:
            return np.transpose(grad)
        return np.transpose(grad, np.argsort(self.axes))


def transpose(a: Any, axes: Any = None) -> Tensor:
    """Permute the axes (reverse them when `axes` is None)."""
    a = as_tensor(a)
    if axes is not None:
        axes = tuple(int(i) for i in axes)
        if sorted(i % a.ndim if a.ndim else i for i in axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} axes")
        axes = tuple(i % a.ndim for i in axes)
    return _share_version(Transpose.apply(a, axes=axes), a)  # a view


def _index_key(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic(index: Any) -> bool:
    """True for indices of ints, slices, None and Ellipsis only (no repeats possible)."""
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.all(
        isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts
    )


class GetItem(Function):
    name = "getitem"
    saves = ()

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        full = np.zeros(self.shape, dtype=self.dtype)
        if _is_basic(self.index):
            full[self.index] = grad
        else:
            # add.at accumulates where an integer index repeats (x[[0, 0]]).
            np.add.at(full, self.index, grad)
        return full


def getitem(a: Any, index: Any) -> Tensor:
    """Index like numpy: basic slicing and integer-array (or boolean) indexing."""
    a = as_tensor(a)
    index = _index_key(index)
    out = GetItem.apply(a, index=index)
    return _share_version(out, a) if _is_basic(index) else out  # basic indexing gives a view


class Concatenate(Function):
    name = "concatenate"
    saves = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.split(grad, self.splits, axis=self.axis))


def concatenate(ts: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    ts = tensors(ts)
    if not ts:
        raise ValueError("concatenate needs at least one tensor")
    axis = int(np.lib.array_utils.normalize_axis_index(axis, ts[0].ndim)) if ts[0].ndim else 0
    return Concatenate.apply(*ts, axis=axis)


class Stack(Function):
    name = "stack"
    saves = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.moveaxis(grad, self.axis, 0))


def stack(ts: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    ts = tensors(ts)
    if not ts:
        raise ValueError("stack needs at least one tensor")
    axis = int(np.lib.array_utils.normalize_axis_index(axis, ts[0].ndim + 1))
    return Stack.apply(*ts, axis=axis)


# =========================================================================== matmul


class MatMul(Function):
    name = "matmul"
    saves = (0, 1)

    def forward(self, a, b):
        self.saved = (a, b)
        if _float_matrices(a, b, False):
            return K.gemm(a, b)
        return np.matmul(a, b)

    def backward(self, grad):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        if _float_matrices(a, b, False):
            # Transposes are GEMM flags, not copies.
            return (
                K.gemm(grad, b, trans_b=True) if need_a else None,
                K.gemm(a, grad, trans_a=True) if need_b else None,
            )
        # 1-D operands become a row/column; batch dimensions broadcast like numpy's matmul.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.reshape(grad, np.matmul(a2[..., :1, :], b2[..., :, :1]).shape[:-2]
                        + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if need_a:
            ga = _sum_to(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if need_b:
            gb = _sum_to(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


def _sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum leading (batch) dimensions that broadcasting added, back to `shape`."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape[:-2]) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product a @ b (1-D, 2-D, or batched with broadcasting, like numpy)."""
    if type(a) is Tensor and type(b) is Tensor:
        ad, bd = cython.cast(Tensor, a).data, cython.cast(Tensor, b).data
        if _float_matrices(ad, bd, True):
            return _apply2(MatMul(), a, b)  # the common case: two matrices of one float dtype
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul needs tensors of at least 1 dimension, got {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    if a.dtype != b.dtype:
        dtype = np.result_type(a.dtype, b.dtype)
        a = a if a.dtype == dtype else _cast(a, dtype)
        b = b if b.dtype == dtype else _cast(b, dtype)
    try:
        return MatMul.apply(a, b)
    except ValueError as exc:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match: {exc}") from exc


class Cast(Function):
    name = "cast"
    saves = ()

    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.dtype)


def _cast(a: Tensor, dtype: Any) -> Tensor:
    return Cast.apply(a, dtype=np.dtype(dtype))


def cast(a: Any, dtype: Any) -> Tensor:
    """Convert to another dtype; the gradient is converted back."""
    a = as_tensor(a)
    dtype = np.dtype(dtype)
    if a.requires_grad and dtype not in _FLOATS:
        raise TypeError(f"cannot cast a tensor that requires grad to {dtype}")
    return _cast(a, dtype)


class Linear(Function):
    name = "linear"
    saves = (0, 1)

    def forward(self, x, w, b=None):
        self.saved = (x, w)
        out = K.gemm(x, w)
        if b is not None:
            K.bias_add(out, b, out=out)
        return out

    def backward(self, grad):
        x, w = self.saved
        need = self.needs_input_grad
        gx = K.gemm(grad, w, trans_b=True) if need[0] else None
        gw = K.gemm(x, grad, trans_a=True) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, K.bias_grad(grad) if need[2] else None


def linear(x: Any, w: Any, b: Any = None) -> Tensor:
    """x @ w + b in one fused pass: x (n, in), w (in, out), b (out,) or None."""
    x = _floating(x, "linear")
    w = as_tensor(w, x)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"linear needs x (n, in) and w (in, out), got {x.shape} and {w.shape}")
    if w.data.dtype != x.data.dtype:
        # NOTE: no silent promotion (as PyTorch): the caller chooses which side to convert.
        raise TypeError(f"linear: x is {x.data.dtype} but w is {w.data.dtype}; convert one "
                        f"with mg.cast(t, dtype) so that both match")
    if b is None:
        return Linear.apply(x, w)
    b = as_tensor(b, x)
    if b.shape != (w.shape[1],):
        raise ValueError(f"linear: bias has shape {b.shape}, expected ({w.shape[1]},)")
    if b.data.dtype != x.data.dtype:
        raise TypeError(f"linear: x is {x.data.dtype} but b is {b.data.dtype}; convert one "
                        f"with mg.cast(t, dtype) so that both match")
    return Linear.apply(x, w, b)


# =========================================================================== activations


class _Activation(Function):
    """An elementwise activation of the table: its two kernels, and the array (the input x or
    the output y) that its backward reads, saved by the forward."""

    _forward_kernel = _backward_kernel = ""
    _saves_y = False

    def forward(self, x):
        y = getattr(K, self._forward_kernel)(x)
        self.saved = (y if self._saves_y else x,)
        return y

    def backward(self, grad):
        # NOTE: at a kink the kernel takes the left derivative: relu'(0) = 0, step'(x) = 0.
        return getattr(K, self._backward_kernel)(grad, self.saved[0])


class _ActivationWithAlpha(_Activation):
    """An activation of the table with a parameter alpha (leaky_relu, elu, ...)."""

    def forward(self, x, alpha):
        self.alpha = alpha
        y = getattr(K, self._forward_kernel)(x, alpha)
        self.saved = (y if self._saves_y else x,)
        return y

    def backward(self, grad):
        return getattr(K, self._backward_kernel)(grad, self.saved[0], self.alpha)


def _activation(spec: ActivationSpec) -> Callable[..., Tensor]:
    """The Function of a row of the activation table, and mg.<name> that applies it."""
    base = _Activation if spec.alpha is None else _ActivationWithAlpha
    op = type(spec.function_class, (base,), {
        # interned, so that getattr(K, ...) finds the kernel by identity, not by comparing text
        "name": spec.name, "_forward_kernel": sys.intern(spec.forward_kernel),
        "_backward_kernel": sys.intern(spec.backward_kernel), "_saves_y": spec.saves == "y",
        "saves": () if spec.saves == "y" else (0,), "saves_output": spec.saves == "y",
        "__module__": __name__, "__slots__": (),
    })
    name = spec.name
    if spec.alpha is None:
        def fn(x: Any) -> Tensor:
            return _apply1(op(), _floating(x, name))
    else:
        def fn(x: Any, alpha: float = spec.alpha) -> Tensor:
            if spec.alpha_positive and not alpha > 0:
                # The backward reads the derivative off the output, which needs alpha > 0.
                raise ValueError(f"{name} needs alpha > 0, got {alpha}")
            return op.apply(_floating(x, name), alpha=float(alpha))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = spec.doc
    return fn


# relu, leaky_relu, elu, ...: one function per row of the table (activation_table.py).
globals().update({spec.name: _activation(spec) for spec in ACTIVATION_TABLE})


class Softmax(Function):
    name = "softmax"
    saves = ()
    saves_output = True

    def forward(self, x, axis):
        self.axis = axis
        self.y = y = K.softmax_forward(x, axis)
        return y

    def backward(self, grad):
        return K.softmax_backward(grad, self.y, self.axis)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, computed stably."""
    x = _floating(x, "softmax")
    return Softmax.apply(x, axis=int(np.lib.array_utils.normalize_axis_index(axis, x.ndim)))


class LogSoftmax(Function):
    name = "log_softmax"
    saves = ()
    saves_output = True

    def forward(self, x, axis):
        self.axis = axis
        self.y = y = K.log_softmax_forward(x, axis)
        return y

    def backward(self, grad):
        return K.log_softmax_backward(grad, self.y, self.axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed stably."""
    x = _floating(x, "log_softmax")
    return LogSoftmax.apply(x, axis=int(np.lib.array_utils.normalize_axis_index(axis, x.ndim)))


# Every activation by name: the table's rows, then those that act along an axis.
ACTIVATIONS = {
    **{spec.name: globals()[spec.name] for spec in ACTIVATION_TABLE},
    "softmax": softmax,
    "log_softmax": log_softmax,
}


# =========================================================================== losses


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}; choose 'mean', 'sum' or 'none'")


def _same_shape(op: str, a: Tensor, b: Tensor, names: str = "prediction and target") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names} shapes differ: {a.shape} and {b.shape}")


class MSELoss(Function):
    name = "mse_loss"
    saves = (0, 1)

    def forward(self, pred, target):
        self.saved = (pred, target)
        return _scalar_like(K.mse_forward(pred, target), pred)

    def backward(self, grad):
        pred, target = self.saved
        gp = K.mse_backward(float(grad), pred, target)
        return gp, -gp if self.needs_input_grad[1] else None


def mse_loss(pred: Any, target: Any) -> Tensor:
    """Mean squared error, mean((pred - target) ** 2), in one fused pass."""
    if type(pred) is Tensor and type(target) is Tensor:
        p, t = cython.cast(Tensor, pred).data, cython.cast(Tensor, target).data
        if _float_pair(p, t):
            return _apply2(MSELoss(), pred, target)  # the common case, without conversions
    pred = _floating(pred, "mse_loss")
    target = as_tensor(target, pred)
    _same_shape("mse_loss", pred, target)
    return MSELoss.apply(pred, target)


class SigmoidBinaryCrossEntropy(Function):
    name = "sigmoid_binary_cross_entropy"
    saves = (0, 1)

    def forward(self, logits, target):
        self.saved = (logits, target)
        return K.sigmoid_binary_cross_entropy_forward(logits, target)

    def backward(self, grad):
        logits, target = self.saved
        need_z, need_t = self.needs_input_grad
        gz = K.sigmoid_binary_cross_entropy_backward(grad, logits, target) if need_z else None
        return gz, -grad * logits if need_t else None


def sigmoid_binary_cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], fused and stable."""
    logits = _floating(logits, "sigmoid_binary_cross_entropy")
    target = as_tensor(target, logits)
    _same_shape("sigmoid_binary_cross_entropy", logits, target, "logits and target")
    return _reduce(SigmoidBinaryCrossEntropy.apply(logits, target), reduction)


class SoftmaxCrossEntropy(Function):
    name = "softmax_cross_entropy"
    saves = (0, 1)

    def forward(self, logits, target):
        self.logits, self.target = logits, target
        loss, self.probs = K.softmax_cross_entropy_forward(logits, target)
        return loss

    def backward(self, grad):
        need_z, need_t = self.needs_input_grad
        gz = K.softmax_cross_entropy_backward(grad, self.probs, self.target) if need_z else None
        gt = None
        if need_t:
            gt = -grad[:, None] * K.log_softmax_forward(self.logits, 1)
        return gz, gt


class SparseSoftmaxCrossEntropy(Function):
    name = "sparse_softmax_cross_entropy"
    saves = ()

    def forward(self, logits, labels):
        self.labels = labels
        loss, self.probs = K.sparse_softmax_cross_entropy_forward(logits, labels)
        return loss

    def backward(self, grad):
        return K.sparse_softmax_cross_entropy_backward(grad, self.probs, self.labels)


def softmax_cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(logits) (n, c) against class probabilities (n, c) or labels (n,)."""
    logits = _floating(logits, "softmax_cross_entropy")
    if logits.ndim != 2:
        raise ValueError(
            f"softmax_cross_entropy needs logits of shape (samples, classes), got {logits.shape}"
        )
    raw = target.data if isinstance(target, Tensor) else _to_numpy(target)
    if raw.dtype.kind in "iu":
        if raw.shape != (logits.shape[0],):
            raise ValueError(
                f"softmax_cross_entropy: labels have shape {raw.shape}, "
                f"expected ({logits.shape[0]},) for logits {logits.shape}"
            )
        loss = SparseSoftmaxCrossEntropy.apply(logits, labels=raw)
    else:
        target = as_tensor(target, logits)
        _same_shape("softmax_cross_entropy", logits, target, "logits and target")
        loss = SoftmaxCrossEntropy.apply(logits, target)
    return _reduce(loss, reduction)


# =========================================================================== comparisons


def _compare(ufunc: np.ufunc, a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    return Tensor._wrap(ufunc(a.data, b.data))


def less(a: Any, b: Any) -> Tensor:
    """Elementwise a < b as a bool tensor (not differentiable)."""
    return _compare(np.less, a, b)


def less_equal(a: Any, b: Any) -> Tensor:
    """Elementwise a <= b as a bool tensor (not differentiable)."""
    return _compare(np.less_equal, a, b)


def greater(a: Any, b: Any) -> Tensor:
    """Elementwise a > b as a bool tensor (not differentiable)."""
    return _compare(np.greater, a, b)


def greater_equal(a: Any, b: Any) -> Tensor:
    """Elementwise a >= b as a bool tensor (not differentiable)."""
    return _compare(np.greater_equal, a, b)


def equal(a: Any, b: Any) -> Tensor:
    """Elementwise a == b as a bool tensor (not differentiable)."""
    return _compare(np.equal, a, b)


def not_equal(a: Any, b: Any) -> Tensor:
    """Elementwise a != b as a bool tensor (not differentiable)."""
    return _compare(np.not_equal, a, b)


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


# Every op by name: the tests and benchmarks iterate over this.
REGISTRY: dict[str, type[Function]] = {c.name: c for c in _subclasses(Function) if c.name}
