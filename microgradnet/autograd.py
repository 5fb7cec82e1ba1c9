"""Tensor, the graph node (Function) and reverse-mode autodiff.

A Tensor wraps a numpy array. An op is a Function subclass (in functional.py) with a
`forward` on arrays and a `backward` giving one gradient per input; `Function.apply`
runs the forward and, when gradients are wanted, links the result to its inputs.
`Tensor.backward` walks that graph in reverse topological order (iteratively, so deep
graphs do not hit Python's recursion limit) and sums gradients that were broadcast back
to each input's shape, once, here in the engine.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

try:
    import cython
except ImportError:  # uncompiled, without Cython installed: no-op stand-ins
    from . import _cython_shim as cython
import numpy as np

from .backend import kernels as K

if cython.compiled:
    # Compiled, the backward walk reads shapes, dtypes and flags off the arrays in C (see
    # _same_shape); uncompiled, the same questions go through numpy's attributes.
    from cython.cimports.libc.string import memcmp
    from cython.cimports.numpy import (
        NPY_FLOAT32,
        NPY_FLOAT64,
        PyArray_BASE,
        PyArray_DATA,
        PyArray_DESCR,
        PyArray_DIMS,
        PyArray_EMPTY,
        PyArray_EquivTypes,
        PyArray_FillWithScalar,
        PyArray_IS_C_CONTIGUOUS,
        PyArray_ISNOTSWAPPED,
        PyArray_ISWRITEABLE,
        PyArray_NDIM,
        PyArray_TYPE,
        dtype,
        ndarray,
        npy_intp,
    )

__all__ = ["as_tensor", "enable_grad", "Function", "is_grad_enabled", "no_grad", "Tensor", "tensor",
           "tensors"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- grad mode


class _GradMode(threading.local):
    """Whether ops record the graph, per thread (as PyTorch): no_grad in one thread, e.g.
    a monitor predicting in the background, must not stop another thread's training."""

    enabled = True  # the class attribute is every new thread's starting value


_grad_mode = _GradMode()
_mode_lock = threading.Lock()
# How many threads have recording off right now. While it is 0 (nearly always during
# training), an op knows recording is on without the slower thread-local lookup.
_threads_without_grad = 0


def _set_grad_enabled(enabled: bool) -> None:
    global _threads_without_grad
    with _mode_lock:
        if _grad_mode.enabled != enabled:
            _threads_without_grad += -1 if enabled else 1
            _grad_mode.enabled = enabled


class no_grad:
    """Context manager and decorator that turns off graph recording inside it."""

    def __enter__(self) -> None:
        self._previous = _grad_mode.enabled
        _set_grad_enabled(False)

    def __exit__(self, *exc: object) -> None:
        _set_grad_enabled(self._previous)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return func(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    """Context manager and decorator that turns graph recording back on inside it."""

    def __enter__(self) -> None:
        self._previous = _grad_mode.enabled
        _set_grad_enabled(True)


def is_grad_enabled() -> bool:
    """Return True when ops record the graph for backward (in this thread)."""
    return _grad_mode.enabled


# --------------------------------------------------------------------------- conversion


def _as_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"not a dtype: {dtype!r}") from exc
    if dt.kind not in "fiub" or (dt.kind == "f" and dt not in _FLOAT_DTYPES):
        raise TypeError(
            f"unsupported dtype {dt}: use float32, float64, an integer type or bool"
        )
    return dt


def _to_numpy(data: Any, copy: bool = False) -> np.ndarray:
    """Convert data to an array of real numbers (float, int or bool), else TypeError."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (str, bytes)):
        raise TypeError(f"cannot make a tensor from a {type(data).__name__}")
    try:
        arr = np.array(data, copy=copy or None)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: {exc}") from exc
    if arr.dtype.kind not in "fiub":
        what = {"c": "complex numbers", "O": "Python objects (or ragged nested lists)"}.get(
            arr.dtype.kind, f"data of dtype {arr.dtype}"
        )
        raise TypeError(f"cannot make a tensor from {what}; use real numbers")
    return arr


def _as_array(data: Any, dtype: Any = None, copy: bool = False) -> np.ndarray:
    """Convert data to an array: floats become float32 unless `dtype` says otherwise."""
    arr = _to_numpy(data, copy)
    if dtype is not None:
        target = _as_dtype(dtype)
    elif arr.dtype.kind == "f":
        target = np.dtype(np.float32)
    else:
        target = arr.dtype
    return arr if arr.dtype == target else arr.astype(target)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient of a broadcast result back to the input's shape."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        raise RuntimeError(f"internal error: gradient of shape {grad.shape} for input {shape}")
    return grad


# The walk asks these of every gradient an op returns; numpy answers each through a Python
# attribute (a new tuple for a shape), the compiled module reads the array's struct.


@cython.cfunc
def _is_array(a: object) -> cython.bint:
    """Whether a is a numpy array (of any subclass)."""
    if cython.compiled:
        return isinstance(a, ndarray)
    else:
        return isinstance(a, np.ndarray)


@cython.cfunc
@cython.inline
def _is_exact_array(a: object) -> cython.bint:
    """Whether a is a numpy array (not of a subclass)."""
    if cython.compiled:
        return type(a) is ndarray
    else:
        return type(a) is np.ndarray


@cython.cfunc
def _same_shape(a: object, b: object) -> cython.bint:
    """Whether the arrays a and b have one shape."""
    if cython.compiled:
        n: cython.int = PyArray_NDIM(cython.cast(ndarray, a))
        if n != PyArray_NDIM(cython.cast(ndarray, b)):
            return False
        # a 0-d array's dims are NULL, which memcmp must not be given even for 0 bytes
        return n == 0 or memcmp(
            PyArray_DIMS(cython.cast(ndarray, a)), PyArray_DIMS(cython.cast(ndarray, b)),
            n * cython.sizeof(npy_intp)) == 0
    else:
        return a.shape == b.shape


@cython.cfunc
def _same_dtype(a: object, b: object) -> cython.bint:
    """Whether the arrays a and b have one dtype."""
    if cython.compiled:
        da = PyArray_DESCR(cython.cast(ndarray, a))
        db = PyArray_DESCR(cython.cast(ndarray, b))
        return da == db or PyArray_EquivTypes(cython.cast(dtype, da), cython.cast(dtype, db))
    else:
        return a.dtype == b.dtype


@cython.cfunc
def _is_float_array(a: object) -> cython.bint:
    """Whether a is a float32 or float64 numpy array (what the elementwise kernels take)."""
    if cython.compiled:
        if not isinstance(a, ndarray):
            return False
        t: cython.int = PyArray_TYPE(cython.cast(ndarray, a))
        return (t == NPY_FLOAT32 or t == NPY_FLOAT64) and PyArray_ISNOTSWAPPED(
            cython.cast(ndarray, a))
    else:
        return isinstance(a, np.ndarray) and a.dtype in _FLOAT_DTYPES


@cython.cfunc
@cython.inline
def _float_operands(a: object, b: object) -> cython.bint:
    """Whether a and b are float arrays of one dtype."""
    return _is_float_array(a) and _is_float_array(b) and _same_dtype(a, b)


@cython.cfunc
def _float_pair(a: object, b: object) -> cython.bint:
    """Whether a and b are float arrays of one dtype and one shape (an elementwise kernel's
    operands, where numpy would neither broadcast nor promote)."""
    return _float_operands(a, b) and _same_shape(a, b)


@cython.cfunc
@cython.inline
def _c_ordered(a: object) -> cython.bint:
    """Whether numpy lays an elementwise result of the array a out in C order, as the kernels
    do: a is C-contiguous or has at most one dimension (a transposed view's result is
    Fortran-ordered, and a later sum adds it in that order)."""
    if cython.compiled:
        return (PyArray_NDIM(cython.cast(ndarray, a)) <= 1
                or PyArray_IS_C_CONTIGUOUS(cython.cast(ndarray, a)))
    else:
        return a.ndim <= 1 or a.flags.c_contiguous


@cython.cfunc
def _elementwise(a: object, b: object) -> cython.bint:
    """Whether an elementwise kernel gives numpy's a op b, layout included: a float pair
    (_float_pair) that numpy would lay out in C order."""
    return _float_pair(a, b) and _c_ordered(a) and _c_ordered(b)


@cython.cfunc
def _float_matrices(a: object, b: object, product: cython.bint) -> cython.bint:
    """Whether a and b are 2-D float arrays of one dtype (GEMM's operands), and, if `product`,
    whether a's columns match b's rows."""
    if not _float_operands(a, b):
        return False
    if cython.compiled:
        if PyArray_NDIM(cython.cast(ndarray, a)) != 2 or PyArray_NDIM(cython.cast(ndarray, b)) != 2:
            return False
        return not product or (PyArray_DIMS(cython.cast(ndarray, a))[1]
                               == PyArray_DIMS(cython.cast(ndarray, b))[0])
    else:
        return a.ndim == 2 and b.ndim == 2 and (not product or a.shape[1] == b.shape[0])


@cython.cfunc
def _scalar_like(value: object, like: object) -> object:
    """A 0-d array of like's float dtype holding value (a float), rounded as numpy casts: a
    float32 beyond its range is inf, as IEEE says."""
    if cython.compiled and _is_float_array(like):
        v: cython.double = value
        out: ndarray = PyArray_EMPTY(0, cython.NULL, PyArray_TYPE(cython.cast(ndarray, like)), 0)
        if PyArray_TYPE(cython.cast(ndarray, like)) == NPY_FLOAT32:
            cython.cast(cython.p_float, PyArray_DATA(out))[0] = cython.cast(cython.float, v)
        else:
            cython.cast(cython.p_double, PyArray_DATA(out))[0] = v
        return out
    with np.errstate(over="ignore"):
        return np.asarray(value, dtype=like.dtype)


@cython.cfunc
def _filled(shape: tuple, value: object) -> object:
    """A new array of `shape` holding the one element of the 0-d float array `value`
    everywhere, in value's dtype; None when value is no such array."""
    if not (_is_float_array(value) and value.ndim == 0):
        return None
    if cython.compiled:
        n: cython.Py_ssize_t = len(shape)
        dims = cython.declare(npy_intp[32])
        i: cython.Py_ssize_t
        if n <= 32:  # numpy's limit on dimensions
            for i in range(n):
                dims[i] = shape[i]
            out: ndarray = PyArray_EMPTY(n, dims, PyArray_TYPE(cython.cast(ndarray, value)), 0)
            PyArray_FillWithScalar(out, value)
            return out
    filled = np.empty(shape, value.dtype)
    filled.fill(value)
    return filled


@cython.cfunc
def _added(a: object, b: object) -> object:
    """a + b (numpy's bits), through the elementwise kernel when it takes a and b."""
    if _elementwise(a, b):
        return K.add(a, b)
    return a + b


@cython.cfunc
def _ones_like(a: object) -> object:
    """A new array of ones of a's shape and dtype (C order)."""
    if cython.compiled and _is_exact_array(a):
        ones: ndarray = PyArray_EMPTY(PyArray_NDIM(cython.cast(ndarray, a)),
                                      PyArray_DIMS(cython.cast(ndarray, a)),
                                      PyArray_TYPE(cython.cast(ndarray, a)), 0)
        PyArray_FillWithScalar(ones, 1)
        return ones
    ones = np.empty(a.shape, a.dtype)
    ones.fill(1)  # two C calls, where np.ones_like runs Python-level code
    return ones


@cython.cfunc
@cython.inline
def _owns_writable(a: object) -> cython.bint:
    """Whether the array a owns its memory (is no view) and may be written."""
    if cython.compiled:
        return (PyArray_BASE(cython.cast(ndarray, a)) == cython.NULL
                and PyArray_ISWRITEABLE(cython.cast(ndarray, a)))
    else:
        return a.base is None and a.flags.writeable


# --------------------------------------------------------------------------- the ops

# functional.py defines the ops on top of Function and Tensor, so it imports this module; the
# Tensor's operators and methods reach it through this reference, set on their first call,
# instead of an import here that would make the two modules import each other.
_functional_module = cython.declare(object, None)


@cython.cfunc
@cython.inline
def _functional() -> object:
    """The module microgradnet.functional, imported on the first call."""
    global _functional_module
    if _functional_module is None:
        from . import functional  # not at the top: it imports this module

        _functional_module = functional
    return _functional_module


# --------------------------------------------------------------------------- versions


@cython.cfunc
@cython.inline
def _version_of(t: Tensor):
    """How many in-place changes the tensor's data has had (shared with its views)."""
    vc = t._vc
    return 0 if vc is None else vc[0]


def _bump_version(t: Tensor, changes: int = 1) -> None:
    """Count in-place changes of the tensor's data (seen by every view of it)."""
    vc = t._vc
    if vc is None:
        t._vc = [changes, False]
    else:
        vc[0] += changes


def _share_version(view: Tensor, base: Tensor) -> Tensor:
    """Give `view`, whose data is a view of `base`'s, the version counter of `base`."""
    if base._vc is None:
        base._vc = [0, True]
    else:
        base._vc[1] = True
    view._vc = base._vc
    return view


def _modified_error(t: Tensor, what: str, now: Any, expected: Any) -> RuntimeError:
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{t.data.dtype} tensor of shape {t.data.shape}], which is "
        f"{what}, is at version {now}; expected version {expected} instead. Hint: change it "
        f"after backward(), or out of place (t = t - x instead of t -= x), or on a copy."
    )


@cython.cfunc
def _check_saved_versions(ctx: Function, node: Tensor):
    """Raise if a tensor that ctx's backward reads changed in place since the forward."""
    p: Tensor
    parents = ctx.parents
    changed = node._vc is not None
    for p in parents:
        changed = changed or p._vc is not None
    if not changed:
        return  # nothing here was ever changed in place (nearly always): no lookups
    saves = ctx.saves
    versions = ctx._versions
    if saves is None:
        saves = range(len(parents))
    for i in saves:
        p = parents[i]
        if p._vc is not None:
            expected = 0 if versions is None else versions[i]
            if p._vc[0] != expected:
                what = f"input {i} of '{ctx.name or type(ctx).__name__}'"
                if p._ctx is not None:
                    what += f" (the output of '{p._ctx.name or type(p._ctx).__name__}')"
                raise _modified_error(p, what, p._vc[0], expected)
    if ctx.saves_output and node._vc is not None:
        expected = 0 if ctx._out_version is None else ctx._out_version
        if node._vc[0] != expected:
            what = f"the output of '{ctx.name or type(ctx).__name__}'"
            raise _modified_error(node, what, node._vc[0], expected)


@cython.cfunc
def _node_at(ctx: Function, i: cython.Py_ssize_t, parent: Tensor) -> Tensor:
    """The graph node that input i of ctx was when the op ran: the tensor itself, or, if a
    recorded in-place op has replaced its node since, the node it replaced."""
    if parent._hist is None:
        return parent
    versions = ctx._versions
    seen = 0 if versions is None else versions[i]
    for replaced_at, node in parent._hist:
        if seen <= replaced_at:
            return node
    return parent


_protocols_module = cython.declare(object, None)


@cython.cfunc
@cython.inline
def _protocols() -> object:
    """The module microgradnet._array_protocols, imported on the first call."""
    global _protocols_module
    if _protocols_module is None:
        from . import _array_protocols  # not at the top: it imports functional, then this

        _protocols_module = _array_protocols
    return _protocols_module


# --------------------------------------------------------------------------- Function


@cython.cclass
class Function:
    """A differentiable op: `forward` on arrays, `backward` one gradient per input.

    The forward keeps what backward needs in `self.saved` (a tuple), or, in an op written in
    Python, in attributes of `self` (the context). After a backward without `retain_graph`,
    those are released to free memory.
    """

    # Compiled (setup.py), Tensor and Function are extension types with their fields in C,
    # declared in autograd.pxd; the ops of functional.py are extension types too.
    name = ""  # set by each op; names the op in functional.REGISTRY
    # What backward reads of the op's own tensors: the inputs by index (None: all of them)
    # and whether the output. An in-place change to one of those between the forward and the
    # backward raises (the version counter), as in PyTorch.
    saves = None  # a tuple of input indices, or None
    saves_output = False

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        """Compute the op's result from input arrays (and save what backward needs)."""
        raise NotImplementedError

    @cython.ccall
    def backward(self, grad: object):
        """Return the gradient w.r.t. each input (a tuple, or one array for one input)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run the op on Tensors, recording it in the graph when a gradient is needed."""
        # Unrolled for one and two inputs: this is the per-op overhead on small tensors.
        ctx: Function = cls()
        if len(inputs) == 2:
            a: Tensor = inputs[0]
            b: Tensor = inputs[1]
            if params:
                return _link2(ctx, ctx.forward(a.data, b.data, **params), a, b)
            return _apply2(ctx, a, b)
        if len(inputs) == 1:
            a = inputs[0]
            if params:
                return _link1(ctx, ctx.forward(a.data, **params), a)
            return _apply1(ctx, a)
        t: Tensor
        data = ctx.forward(*[t.data for t in inputs], **params)
        needs = tuple([t.requires_grad for t in inputs])
        out = _output(data, _recording(True in needs))
        if out.requires_grad:
            ctx.parents = inputs
            ctx.needs_input_grad = needs
            for t in inputs:
                if t._vc is not None:
                    ctx._versions = tuple([_version_of(t) for t in inputs])
                    break
            out._ctx = ctx
        return out

    def release(self) -> None:
        """Drop the arrays saved for backward and the links to the inputs."""
        _release(self)


if not cython.compiled:
    # Uncompiled, the C fields' starting values (autograd.pxd) are class attributes.
    Function.parents = Function.needs_input_grad = Function.saved = None
    Function._versions = Function._out_version = None
    Function.released = False


@cython.cfunc
@cython.inline
def _recording(needed: cython.bint) -> cython.bint:
    """Whether an op whose inputs need a gradient (or not) records itself in the graph."""
    if needed and _threads_without_grad != 0:
        return _grad_mode.enabled  # some thread is under no_grad: is this one?
    return needed


@cython.cfunc
@cython.inline
def _output(data: object, record: cython.bint) -> Tensor:
    """The tensor around an op's result (requires_grad when recorded, not yet linked)."""
    if not _is_exact_array(data):
        data = np.asarray(data)  # numpy hands back scalars for 0-d results
    out: Tensor = Tensor.__new__(Tensor)
    out.data = data
    out.requires_grad = record
    return out


@cython.cfunc
def _link1(ctx: Function, data: object, a: Tensor) -> Tensor:
    """The result of a one-input op: its tensor, linked to the input if recorded."""
    out: Tensor = _output(data, _recording(a.requires_grad))
    if out.requires_grad:
        ctx.parents = (a,)
        ctx.needs_input_grad = (True,)
        if a._vc is not None:
            ctx._versions = (_version_of(a),)
        out._ctx = ctx
    return out


@cython.cfunc
def _link2(ctx: Function, data: object, a: Tensor, b: Tensor) -> Tensor:
    """The result of a two-input op: its tensor, linked to the inputs if recorded."""
    out: Tensor = _output(data, _recording(a.requires_grad or b.requires_grad))
    if out.requires_grad:
        ctx.parents = (a, b)
        # constant tuples (one object each), not a new tuple per op
        ctx.needs_input_grad = (((True, True) if b.requires_grad else (True, False))
                                if a.requires_grad else (False, True))
        if a._vc is not None or b._vc is not None:
            ctx._versions = (_version_of(a), _version_of(b))
        out._ctx = ctx
    return out


@cython.cfunc
def _apply1(ctx: Function, a: Tensor) -> Tensor:
    """ctx's forward on a's data, its result linked to a (Function.apply of one input)."""
    return _link1(ctx, ctx.forward(a.data), a)


@cython.cfunc
def _apply2(ctx: Function, a: Tensor, b: Tensor) -> Tensor:
    """ctx's forward on a's and b's data, its result linked to them (Function.apply of two)."""
    return _link2(ctx, ctx.forward(a.data, b.data), a, b)


@cython.cfunc
def _release(ctx: Function):
    """Function.release, called by the engine without a method lookup."""
    ctx.saved = None
    attributes = getattr(ctx, "__dict__", None)  # an op written in Python keeps its own there
    if attributes is not None:
        attributes.clear()
    # Without the links, the intermediate tensors above this node are freed as soon as
    # the caller drops them, even while the output (e.g. a loss) is kept. `released`
    # stays, so a second backward still reaches this node and says what happened.
    ctx.parents, ctx.needs_input_grad = (), ()
    ctx.released = True


# --------------------------------------------------------------------------- Tensor


@cython.cclass
class Tensor:
    """An n-dimensional array that records the ops applied to it for reverse-mode autodiff."""

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, this one is {self.data.dtype}"
            )
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None

    # ---- array-like attributes
    @property
    def shape(self) -> tuple:
        """The tensor's shape, a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the data."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (their .grad gets filled)."""
        return self._ctx is None

    def numpy(self) -> np.ndarray:
        """Return the data as a numpy array (shared, not copied)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self) -> float | int | bool:
        """Return the value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """Return the data as nested Python lists."""
        return self.data.tolist()

    def detach(self) -> Tensor:
        """Return a tensor sharing this data, cut from the graph (no grad)."""
        return _share_version(Tensor._wrap(self.data), self)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (set .grad to None)."""
        self.grad = None

    @property
    def _version(self) -> int:
        """How many in-place changes the data has had (PyTorch's version counter)."""
        return _version_of(self)

    # ---- numpy's protocols: ufuncs and array functions run as microgradnet ops
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _protocols().array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _protocols().array_function(func, types, args, kwargs)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    @staticmethod
    def _wrap(data: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Make a tensor around an existing array, without conversion or checks."""
        t: Tensor = Tensor.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        return t

    # ---- autograd
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into the .grad of every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the ops "
                "that made it has requires_grad=True (or it was made under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without grad= needs a one-element output, this one has shape "
                    f"{self.shape}; pass grad= of that shape (e.g. ones for a sum)"
                )
            seed = _ones_like(self.data)
        else:
            seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if seed.shape != self.shape:
                raise ValueError(
                    f"grad has shape {seed.shape}, but the output has shape {self.shape}"
                )
            seed = seed.astype(self.data.dtype, copy=False)
        _run_backward(self, seed, retain_graph)

    # ---- operators (each a one-liner into functional.py)
    def __add__(self, other: Any) -> Tensor:
        return _functional().add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _functional().add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _functional().sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _functional().sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _functional().mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _functional().mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _functional().div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _functional().div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _functional().pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _functional().pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _functional().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _functional().matmul(other, self)

    def __neg__(self) -> Tensor:
        return _functional().neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _functional().abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _functional().getitem(self, index)

    # ---- in place (PyTorch's semantics; the version counter catches a corrupted graph)
    def __iadd__(self, other: Any) -> Tensor:
        return _inplace(self, other, "add", np.add)

    def __isub__(self, other: Any) -> Tensor:
        return _inplace(self, other, "sub", np.subtract)

    def __imul__(self, other: Any) -> Tensor:
        return _inplace(self, other, "mul", np.multiply)

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace(self, other, "div", np.divide)

    def add_(self, other: Any, alpha: Any = None) -> Tensor:
        """In place: self += alpha * other (alpha 1 when None); returns self."""
        return _inplace_method(self, other if alpha is None else other * alpha, "add_", np.add)

    def sub_(self, other: Any, alpha: Any = None) -> Tensor:
        """In place: self -= alpha * other (alpha 1 when None); returns self."""
        return _inplace_method(self, other if alpha is None else other * alpha, "sub_",
                               np.subtract)

    def mul_(self, other: Any) -> Tensor:
        """In place: self *= other; returns self."""
        return _inplace_method(self, other, "mul_", np.multiply)

    def div_(self, other: Any) -> Tensor:
        """In place: self /= other; returns self."""
        return _inplace_method(self, other, "div_", np.divide)

    def copy_(self, src: Any) -> Tensor:
        """In place: copy src's values (broadcast, cast to this dtype) into self; returns self."""
        return _inplace_method(self, src, "copy_", None)

    def fill_(self, value: Any) -> Tensor:
        """In place: set every element to value; returns self."""
        return _inplace_method(self, value, "fill_", None)

    def zero_(self) -> Tensor:
        """In place: set every element to 0; returns self."""
        return _inplace_method(self, 0, "zero_", None)

    # comparisons give bool tensors outside the graph
    def __lt__(self, other: Any) -> Tensor:
        return _functional().less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _functional().less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _functional().greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _functional().greater_equal(self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _functional().equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _functional().not_equal(self, other)

    # ---- methods
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes when None)."""
        return _functional().sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all axes when None)."""
        return _functional().mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis`; ties share the gradient equally."""
        return _functional().max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Minimum over `axis`; ties share the gradient equally."""
        return _functional().min(self, axis, keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        """Return the data in a new shape (one dimension may be -1)."""
        return _functional().reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reverse them when none are given)."""
        return _functional().transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return _functional().transpose(self, None)

    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return _functional().exp(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return _functional().log(self)

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        return _functional().sqrt(self)

    def abs(self) -> Tensor:
        """Elementwise absolute value."""
        return _functional().abs(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit values to [min, max]."""
        return _functional().clip(self, min, max)

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        return _functional().relu(self)

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + exp(-x))."""
        return _functional().sigmoid(self)

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent."""
        return _functional().tanh(self)

    def softmax(self, axis: int = -1) -> Tensor:
        """Softmax along `axis`."""
        return _functional().softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """Log-softmax along `axis`."""
        return _functional().log_softmax(self, axis)


if not cython.compiled:
    # Uncompiled, the C fields' starting values (autograd.pxd) are class attributes.
    Tensor.grad = Tensor._ctx = Tensor._vc = Tensor._hist = Tensor._pend = Tensor._mark = None
    Tensor.requires_grad = False


# --------------------------------------------------------------------------- in place


def _records(t: Tensor, other: Any) -> bool:
    """Whether an op of t and other would be recorded in the graph (in this thread)."""
    needs = t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
    return needs and _grad_mode.enabled


def _leaf_error(name: str) -> RuntimeError:
    return RuntimeError(
        f"a leaf Variable that requires grad is being used in an in-place operation "
        f"({name}). To update a parameter by hand, do it under `with mg.no_grad():`, e.g. "
        f"`with mg.no_grad(): w -= lr * w.grad`."
    )


def _inplace(t: Tensor, other: Any, name: str, ufunc: Any) -> Tensor:
    """t op= other: t's data changes in place, unless the op must be recorded."""
    if _records(t, other):
        if t._ctx is None and t.requires_grad:
            raise _leaf_error(f"{name}=")
        return _record_inplace(t, other, name)
    _write(t, other, name, ufunc)
    return t


def _inplace_method(t: Tensor, other: Any, name: str, ufunc: Any) -> Tensor:
    """t.<name>(other): t's data changes in place; refused where it would be recorded."""
    if _records(t, other):
        if t._ctx is None and t.requires_grad:
            raise _leaf_error(f"{name}()")
        if ufunc is None:
            raise RuntimeError(
                f"{name}() on a tensor of a recorded graph (it requires grad): write it out "
                f"of place, or under `with mg.no_grad():` if no gradient should flow"
            )
        if t._vc is not None and t._vc[1]:
            raise RuntimeError(
                f"{name}() on a view of a tensor of a recorded graph (or a tensor with views): "
                f"write it out of place (t = t + x), or under `with mg.no_grad():`"
            )
        _record_inplace(t, other, name.rstrip("_"))
        return t
    _write(t, other, name, ufunc)
    return t


def _record_inplace(t: Tensor, other: Any, name: str) -> Tensor:
    """t op= other, recorded in the graph: t itself becomes the op's node.

    The graph's nodes are the tensors, so the node t stood for moves to a new tensor `old`,
    which keeps t's array (whatever the ops before saved of it stays as it was), and t takes
    the result's array. The ops recorded before, which still name t, reach `old` through t's
    history (_node_at, by the versions they saw)."""
    if t._vc is not None and t._vc[1]:
        # A view, or a tensor with views: the others' graph could not follow the change, so
        # the op is recorded out of place and `t op= other` rebinds the name to its result.
        return getattr(_functional(), name)(t, other)
    old = Tensor._wrap(t.data, t.requires_grad)
    old._ctx = t._ctx
    new: Tensor = getattr(_functional(), name)(old, old if other is t else other)  # t *= t
    data = new.data
    if data.shape != t.data.shape:
        raise ValueError(f"in-place {name}: the result has shape {data.shape}, the tensor "
                         f"{t.data.shape}")
    if data.dtype != t.data.dtype:
        if not np.can_cast(data.dtype, t.data.dtype, "same_kind"):
            raise TypeError(f"in-place {name}: cannot store a {data.dtype} result in a "
                            f"{t.data.dtype} tensor")
        data = data.astype(t.data.dtype)
    version = _version_of(t)
    _bump_version(t)
    if t._hist is None:
        t._hist = []
    t._hist.append((version, old))
    t.data = data
    t._ctx = new._ctx
    new._ctx._out_version = _version_of(t)
    t.requires_grad = True
    return t


def _write(t: Tensor, other: Any, name: str, ufunc: Any) -> None:
    """Change t's data in place (an arithmetic ufunc, or a copy when ufunc is None) and
    count the change in its version."""
    data = t.data
    try:
        if ufunc is None:
            value = other.data if isinstance(other, Tensor) else _to_numpy(other)
            np.copyto(data, value, casting="unsafe")  # as PyTorch's copy_ and fill_
        else:
            # the other operand converted as the out-of-place op converts it, so that
            # `t -= x` gives the bits of `t = t - x`
            value = as_tensor(other, t).data
            ufunc(data, value, out=data, casting="same_kind")
    except TypeError as exc:
        raise TypeError(f"in-place {name} on a {data.dtype} tensor: {exc}") from None
    except ValueError as exc:
        if not data.flags.writeable:
            raise ValueError(f"in-place {name}: the tensor's data is read-only") from None
        raise ValueError(f"in-place {name} on a tensor of shape {data.shape}: {exc}") from None
    _bump_version(t)


@cython.cfunc
def _topological_order(root: Tensor, walk: object) -> list:
    """The nodes above root that need a gradient, each after the nodes it feeds into
    (iteratively: deep graphs do not hit Python's recursion limit).

    With a walk (see _run_backward), the nodes are marked as seen with it, and their gathered
    gradient is reset; with None, the seen nodes are kept in a set of ids instead."""
    node: Tensor
    parent: Tensor
    ctx: Function
    i: cython.Py_ssize_t
    order: list = []
    visited: set = set() if walk is None else None
    # One stack of nodes to visit; a None on it says that the node below it has had all its
    # inputs ordered, and goes into the order next.
    stack: list = [root]
    while stack:
        item = stack.pop()
        if item is None:
            order.append(stack.pop())
            continue
        node = item
        if walk is None:
            key = id(node)
            if key in visited:
                continue
            visited.add(key)
        else:
            if node._mark is walk:
                continue
            node._mark = walk
            node._pend = None
        if node._ctx is None:
            order.append(node)  # a leaf: nothing above it
            continue
        stack.append(node)
        stack.append(None)
        ctx = node._ctx
        i = 0
        for parent in ctx.parents:
            if parent._hist is not None:
                parent = _node_at(ctx, i, parent)
            i += 1
            if parent.requires_grad and (
                    parent._mark is not walk if walk is not None else id(parent) not in visited):
                stack.append(parent)
    return order


@cython.cfunc
def _saved_values(ctx: Function) -> list:
    """What ctx keeps for its backward: its `saved` tuple and its instance attributes."""
    saved = ctx.saved
    # An op written in Python may keep any one value in `saved` (a number, an array): only a
    # tuple is the ops' list of values.
    values: list = [] if saved is None else list(saved) if type(saved) is tuple else [saved]
    attributes = getattr(ctx, "__dict__", None)
    if attributes:
        values.extend(attributes.values())
    return values


@cython.cfunc
def _released_error(ctx: Function) -> RuntimeError:
    return RuntimeError(
        f"backward through the graph a second time: the values saved by "
        f"'{type(ctx).__name__}' were freed by the first backward. Pass "
        f"retain_graph=True to the first backward() to keep them."
    )


# Held by the backward walk that keeps the gradients it gathers in the nodes' own fields
# (Tensor._pend): one such walk at a time. Another walk meanwhile (in another thread, or a
# backward called inside a backward) keeps its gradients in a dict of its own instead, so
# that two walks through one node never mix their sums.
_fields_lock = threading.Lock()


@cython.cfunc
def _take(node: Tensor, grads: object):
    """The gradient gathered for node (None if none reached it), removed from the walk."""
    if grads is None:
        grad = node._pend
        node._pend = None
        return grad
    return grads.pop(id(node), None)


@cython.cfunc
def _run_backward(root: Tensor, seed: object, retain_graph: cython.bint):
    walk = object() if _fields_lock.acquire(False) else None
    if walk is None:
        _walk(root, seed, retain_graph, None, {id(root): seed})
        return
    try:
        _walk(root, seed, retain_graph, walk, None)
    finally:
        _fields_lock.release()


@cython.cfunc
def _walk(root: Tensor, seed: object, retain_graph: cython.bint, walk: object, grads: object):
    """Backward from root: with a walk object, the gathered gradients in the nodes' fields,
    with None in `grads`, keyed by id()."""
    node: Tensor
    order: list = _topological_order(root, walk)
    if grads is None:
        root._pend = seed
    try:
        _walk_order(order, seed, retain_graph, walk, grads)
    finally:
        if grads is None:
            for node in order:  # after an error, no array stays referenced by a node
                node._pend = None


@cython.cfunc
def _walk_order(order: list, seed: object, retain_graph: cython.bint, walk: object,
                grads: object):
    """The backward of each node of order, last first (see _walk)."""
    node: Tensor
    parent: Tensor
    ctx: Function
    i: cython.Py_ssize_t
    n: cython.Py_ssize_t
    # Arrays that something else may hold too (the caller's seed, a gradient an op passed
    # straight through or handed to two inputs, an array an op saved): a leaf copies these
    # before keeping them as its .grad. Any other gradient is fresh, and the leaf takes it.
    shared: set = {id(seed)}
    ndarray = np.ndarray
    for node in reversed(order):
        grad = _take(node, grads)
        if grad is None:
            continue
        if type(grad) is not ndarray:
            grad = np.asarray(grad)
        if node._ctx is None:
            data = node.data
            if node.grad is None:
                if (not _is_array(data) or not _same_dtype(grad, data)
                        or not _owns_writable(grad) or id(grad) in shared):
                    grad = np.array(grad, dtype=data.dtype)
                node.grad = Tensor._wrap(grad)
            else:
                node.grad.data = _added(node.grad.data, grad)
            continue
        ctx = node._ctx
        if ctx.released:
            raise _released_error(ctx)
        _check_saved_versions(ctx, node)
        input_grads = ctx.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        parents = ctx.parents
        needs = ctx.needs_input_grad
        n = len(parents)
        if len(input_grads) != n:
            # an op whose backward returns the wrong number of gradients fails loudly
            raise ValueError(
                f"'{ctx.name or type(ctx).__name__}'.backward returned {len(input_grads)} "
                f"gradients for {n} inputs"
            )
        saved = None
        returned: list = []
        for i in range(n):
            pgrad = input_grads[i]
            if pgrad is None or not needs[i]:
                continue
            parent = parents[i]
            if parent._hist is not None:
                parent = _node_at(ctx, i, parent)
            pdata = parent.data
            if not (_is_array(pgrad) and _is_array(pdata) and _same_shape(pgrad, pdata)
                    and _same_dtype(pgrad, pdata)):
                pshape = pdata.shape
                if pgrad.shape != pshape:
                    pgrad = _unbroadcast(pgrad, pshape)
                if pgrad.dtype != pdata.dtype:
                    pgrad = pgrad.astype(pdata.dtype)
            alias = pgrad is grad
            for other in returned:
                alias = alias or other is pgrad
            if not alias and parent._ctx is None:
                # Only a leaf keeps an array as is. What reaches a leaf through ops that pass
                # it on is caught there by `pgrad is grad`: the saved values need looking at
                # only here.
                if saved is None:
                    saved = _saved_values(ctx)
                for value in saved:
                    alias = alias or value is pgrad
            if alias:
                shared.add(id(pgrad))
            returned.append(pgrad)
            if grads is None:
                if parent._mark is walk:  # else not in the order (requires_grad since unset)
                    previous = parent._pend
                    parent._pend = pgrad if previous is None else _added(previous, pgrad)
            else:
                key = id(parent)
                previous = grads.get(key)
                grads[key] = pgrad if previous is None else _added(previous, pgrad)
        if not retain_graph:
            _release(ctx)
            # the ops that named this tensor's old nodes are released too
            node._hist = None


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a tensor (a copy of data): float32 unless `dtype` says otherwise."""
    arr = _as_array(data, dtype, copy=True)
    return Tensor(arr, requires_grad, arr.dtype)


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """Return value as a Tensor; numbers and arrays follow the float dtype of `like`."""
    if isinstance(value, Tensor):
        return value
    if like is None:
        return Tensor(value)
    dtype = like.data.dtype
    if isinstance(value, (bool, int, float)):
        # Python numbers are weak, as in numpy: float32 tensor * 2.0 stays float32.
        return Tensor._wrap(np.asarray(value, dtype=np.result_type(dtype, value)))
    arr = _to_numpy(value)
    if dtype.kind == "f" and arr.dtype.kind in "fiu" and arr.dtype != dtype:
        arr = arr.astype(dtype)
    elif dtype.kind != "f" and arr.dtype.kind == "f" and arr.dtype not in _FLOAT_DTYPES:
        arr = arr.astype(np.float32)
    return Tensor._wrap(arr)


def tensors(values: Sequence[Any]) -> list[Tensor]:
    """Convert a sequence of values to Tensors, sharing the dtype of the first Tensor."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    return [as_tensor(v, like) for v in values]

