"""The Cython kernels (microgradnet._kernels) against their numpy twins (_reference.py).

One table of kernel specs drives the tests: every kernel on float32 and float64; empty,
single-element, odd-shaped, 3-D, non-contiguous and 1e6-element inputs; magnitudes of
+-80 and +-1e4 that overflow the naive formulas; inf and nan; the `out=` contract; bad
arguments (where both backends must fail alike). GEMM, softmax axes and labels have their
own tests below the table.

Tolerances. float64: rtol 1e-12, the two sides differ only in libm versus numpy rounding
and in summation order. float32: rtol 1e-5 (~80 ulp), for the same reasons plus the sums,
which the kernels accumulate in double and numpy in float32. atol (1e-6 / 1e-13) is scaled
per element by the magnitude of the inputs of elementwise kernels, because the formulas
that cancel (1 - y*y with y near 1, Phi(x) + x*phi(x) near its zero, 1 + erf in the
reference's GELU left tail) lose digits in proportion to their operands, not their result.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from microgradnet import _reference as ref
from microgradnet._kernels import activations, elementwise, losses, matmul, optim
from microgradnet.activation_table import ACTIVATIONS as ACTIVATION_TABLE
from microgradnet.activation_table import NAMES as ACTIVATION_NAMES

MODULES = {
    "matmul": matmul, "activations": activations, "losses": losses, "optim": optim,
    "elementwise": elementwise,
}
CY = {n: getattr(m, n) for m in MODULES.values() for n in dir(m) if not n.startswith("_")}
REF = {n: getattr(ref, n) for n in ref.KERNEL_NAMES}
BACKENDS = {"reference": REF, "cython": CY}
DTYPES = (np.float32, np.float64)
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-13)}

# The contract (csrc/README.md), module by module.
CONTRACT = {
    "matmul": {"gemm", "bias_add", "bias_grad"},
    "activations": {
        f"{name}_{way}"
        for name in (*ACTIVATION_NAMES, "softmax", "log_softmax")
        for way in ("forward", "backward")
    } | {"sigmoid_backward_from_x", "tanh_backward_from_x"},
    "losses": {
        f"{name}_{way}"
        for name in ("softmax_cross_entropy", "sparse_softmax_cross_entropy",
                     "sigmoid_binary_cross_entropy", "mse")
        for way in ("forward", "backward")
    },
    # In-place updates: tested in test_optim_kernels.py.
    "optim": {"sgd_update", "sgd_momentum_update", "adam_update", "rmsprop_update",
              "adagrad_update", "sum_squares"},
    # Bit for bit numpy's: more in test_elementwise.py.
    "elementwise": {"add", "subtract", "multiply", "negative", "sum_all"},
}

ANY = [(), (0,), (0, 3), (3, 0), (1,), (7, 13), (2, 3, 5)]
MATRIX = [(0, 0), (0, 3), (3, 0), (1, 1), (7, 13), (64, 10)]


def _mag(a):
    """|a| in float64 with inf and nan counted as 0 (they are compared exactly anyway)."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), np.abs(a), 0.0)


def _product_scale(args, axis):
    """Elementwise: the product of the operands' magnitudes (at least 1 each)."""
    scale = 1.0
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            scale = scale * np.maximum(1.0, _mag(a))
    return scale


def _axis_sum_scale(args, axis):
    """dy minus (or times) a sum along the axis: float32 sums err by eps * sum(|dy|)."""
    dy = _mag(args[0])
    return 1.0 + dy + dy.sum(axis=axis, keepdims=True)


def _xent_scale(args, axis):
    """dloss * (p * sum(t) - t): the error of sum(t) and the cancellation, times |dloss|."""
    return 1.0 + _mag(args[0])[:, None] * (1.0 + _mag(args[2]).sum(axis=1, keepdims=True))


def _row_scale(args, axis):
    """dloss * (p - onehot)."""
    return 1.0 + _mag(args[0])[:, None]


def _column_sum_scale(args, axis):
    """A sum over the rows of signed values cancels: eps * sum(|dy|)."""
    return 1.0 + _mag(args[0]).sum(axis=0)


def _unit_scale(args, axis):
    """Exact operations, or relative errors only."""
    return 1.0


@dataclass(frozen=True)
class Spec:
    """A kernel call: its name, the roles of its positional arguments, extra keywords.

    Roles: "x" any float data of the shape; "unit" floats in [0, 1]; "weights" non-negative
    with zeros; "probs"/"log_probs" (log-)softmax rows; "per_row" (n,) floats; "labels" (n,)
    ints in [0, c); "bias" (m,) floats; "scalar" a Python float. `shapes` are the data
    shapes to try; `lead` is the argument whose shape and dtype the others must match;
    `scale` gives the magnitude the float32 rounding error is proportional to (see the
    module docstring), as a function of the arguments and the axis.
    """

    name: str
    roles: tuple[str, ...]
    shapes: tuple = tuple(ANY)
    kwargs: tuple = ()
    elementwise: bool = True
    lead: int = 0
    scale: Callable = _product_scale

    @property
    def id(self) -> str:
        return self.name + "".join(f"-{k}={v}" for k, v in self.kwargs)


def _act(name, roles, **kwargs):
    return Spec(name, roles, kwargs=tuple(kwargs.items()))


# Test choices per activation: another alpha than the default; the role of a saved output
# (sigmoid's y lies in [0, 1]); the derivatives recomputed from x.
_OTHER_ALPHA = {"leaky_relu": 0.2, "elu": 0.5}
_SAVED_ROLE = {"sigmoid": "unit"}
_FROM_X = ("sigmoid", "tanh")


def _activation_specs():
    """Each row of the activation table: its forward and backward, with the default alpha and
    another; the derivatives from x beside their activation."""
    specs = []
    for a in ACTIVATION_TABLE:
        alphas = [{}] if a.alpha is None else [{}, {"alpha": _OTHER_ALPHA.get(a.name, a.alpha / 2)}]
        backward = ("x", _SAVED_ROLE.get(a.name, "x"))
        specs += [_act(a.forward_kernel, ("x",), **kw) for kw in alphas]
        specs += [_act(a.backward_kernel, backward, **kw) for kw in alphas]
        if a.name in _FROM_X:
            specs.append(_act(f"{a.name}_backward_from_x", ("x", "x")))
    return specs


def _axis(name, roles, **kwargs):
    scale = _unit_scale if name.endswith("forward") else _axis_sum_scale
    return Spec(name, roles, tuple(s for s in ANY if s), tuple(kwargs.items()), False,
                scale=scale)


def _rows(name, roles, lead=0, scale=_unit_scale):
    return Spec(name, roles, tuple(MATRIX), elementwise=False, lead=lead, scale=scale)


SPECS = [
    *_activation_specs(),
    _axis("softmax_forward", ("x",)),
    _axis("softmax_forward", ("x",), axis=0),
    _axis("softmax_backward", ("x", "probs")),
    _axis("softmax_backward", ("x", "probs"), axis=0),
    _axis("log_softmax_forward", ("x",)),
    _axis("log_softmax_forward", ("x",), axis=0),
    _axis("log_softmax_backward", ("x", "log_probs")),
    _axis("log_softmax_backward", ("x", "log_probs"), axis=0),
    _rows("softmax_cross_entropy_forward", ("x", "weights")),
    _rows("softmax_cross_entropy_backward", ("per_row", "probs", "weights"), 1, _xent_scale),
    _rows("sparse_softmax_cross_entropy_forward", ("x", "labels")),
    _rows("sparse_softmax_cross_entropy_backward", ("per_row", "probs", "labels"), 1, _row_scale),
    Spec("sigmoid_binary_cross_entropy_forward", ("x", "unit")),
    Spec("sigmoid_binary_cross_entropy_backward", ("x", "x", "unit"), lead=1),
    Spec("mse_forward", ("x", "x")),
    Spec("mse_backward", ("scalar", "x", "x"), lead=1),
    _rows("bias_add", ("x", "bias")),
    _rows("bias_grad", ("x",), scale=_column_sum_scale),
    Spec("add", ("x", "x")),
    Spec("subtract", ("x", "x")),
    Spec("multiply", ("x", "x")),
    Spec("negative", ("x",)),
    Spec("sum_all", ("x",), elementwise=False),
]
ELEMENTWISE = [s for s in SPECS if s.elementwise]
WITH_OUT = [
    s for s in SPECS if {"out", "probs_out"} & set(inspect.signature(CY[s.name]).parameters)
]


def _ids(specs):
    return [s.id for s in specs]


# --------------------------------------------------------------------------- helpers


def _values(rng, shape, dtype, special=False):
    """Normal floats with a sprinkling of large magnitudes (and of inf/nan if `special`)."""
    x = np.asarray(rng.standard_normal(shape) * 3)
    if x.ndim:
        pick = rng.random(shape)
        x[pick < 0.15] = rng.choice([-1e4, -80.0, 80.0, 1e4], size=int((pick < 0.15).sum()))
        if special:
            wild = pick > 0.8
            x[wild] = rng.choice([np.inf, -np.inf, np.nan, 0.0, -0.0], size=int(wild.sum()))
    return x.astype(dtype)


def _make(spec, shape, dtype, rng, special=False):
    """The positional arguments of one call of `spec` on data of `shape`."""
    n = shape[0] if shape else 1
    c = shape[1] if len(shape) > 1 else 1
    axis = dict(spec.kwargs).get("axis", -1)
    args = []
    for role in spec.roles:
        if role == "x":
            args.append(_values(rng, shape, dtype, special))
        elif role == "unit":
            args.append(rng.random(shape).astype(dtype))
        elif role == "weights":
            w = rng.random(shape)
            args.append(np.where(w < 0.3, 0, w).astype(dtype))
        elif role in ("probs", "log_probs"):
            z = rng.standard_normal(shape).astype(dtype)
            func = ref.softmax_forward if role == "probs" else ref.log_softmax_forward
            args.append(func(z, axis=axis if len(shape) else -1) if len(shape) else z)
        elif role == "per_row":
            args.append(_values(rng, (n,), dtype, special))
        elif role == "labels":
            args.append(rng.integers(0, max(c, 1), size=n))
        elif role == "bias":
            args.append(_values(rng, (c,), dtype, special))
        elif role == "scalar":
            args.append(float(rng.standard_normal()))
        else:
            raise AssertionError(role)
    return args


def _call(backend, spec, args, **extra):
    with np.errstate(all="ignore"):
        return BACKENDS[backend][spec.name](*args, **dict(spec.kwargs), **extra)


def _scale(spec, args):
    return spec.scale(args, dict(spec.kwargs).get("axis", -1))


def _close(got, want, dtype, scale=1.0):
    """Same type, shape and dtype, and values within the dtype's tolerance."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _close(g, w, dtype)
        return
    if isinstance(want, float):
        assert isinstance(got, float)
        scale = np.max(scale, initial=1.0)
    else:
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype and got.shape == want.shape
    rtol, atol = TOL[dtype]
    ok = np.isclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True)
    if not np.all(ok):
        where = tuple(np.argwhere(~ok)[0]) if np.ndim(ok) else ()
        raise AssertionError(
            f"{np.size(ok) - np.count_nonzero(ok)} of {np.size(ok)} values differ, the first"
            f" at {where}: got {np.asarray(got)[where]!r}, want {np.asarray(want)[where]!r}"
        )


def _limits(spec, args, want):
    """`want` with the limits at x = +-inf where the reference's formula computes inf * 0.

    gelu and silu are x * (something that vanishes at -inf), and their derivatives add
    x * (something that vanishes at +-inf): the reference gets nan there, the Cython kernels
    (csrc/vmath.h) the limits, -0 forward and dy * (1 or 0) backward. Only a nan of the
    reference is replaced, so a reference that returns the limits itself passes unchanged.
    """
    if spec.name in {"sigmoid_backward_from_x", "tanh_backward_from_x"}:
        # The reference's s * (1 - s) and 1 - t * t round to 0 for |x| > ~17 (9); the kernels'
        # e / (1 + e)^2 stays positive, so an infinite dy gives +-inf there, not inf * 0.
        dy, x = args
        k = 1 if spec.name.startswith("sigmoid") else 2
        with np.errstate(all="ignore"):
            positive = np.exp(-k * np.abs(x)) != 0  # e, in the dtype of x
        patch = np.isnan(want) & np.isinf(dy) & np.isfinite(x) & positive
        want = want.copy()
        want[patch] = dy[patch]
        return want
    if spec.name not in {"gelu_forward", "silu_forward", "gelu_backward", "silu_backward"}:
        return want
    want = want.copy()
    with np.errstate(all="ignore"):
        if spec.name.endswith("forward"):
            x = args[0]
            limit = np.zeros_like(x)
        else:
            dy, x = args
            limit = np.where(x > 0, dy, dy * 0)
    patch = np.isinf(x) & np.isnan(want)
    want[patch] = limit[patch]
    return want


def _compare(spec, args, dtype):
    """Run both backends; both fail with the same exception type, or agree."""
    try:
        want = _call("reference", spec, [a.copy() if hasattr(a, "copy") else a for a in args])
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            _call("cython", spec, args)
        return
    want = _limits(spec, args, want)
    _close(_call("cython", spec, args), want, dtype, _scale(spec, args))


def _non_contiguous(a, how):
    """`a` with the same values in a non-C-contiguous layout."""
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        return a
    if how == "step2":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return np.ascontiguousarray(a.T).T  # the transpose of a C array: F order


# --------------------------------------------------------------------------- the table


def test_exported_names_are_the_contract():
    for name, module in MODULES.items():
        public = {n for n in dir(module) if not n.startswith("_")}
        assert public == CONTRACT[name], name
    assert set(CY) == set(ref.KERNEL_NAMES)


@pytest.mark.parametrize("name", sorted(ref.KERNEL_NAMES))
def test_same_signature_and_docstring(name):
    cy, py = inspect.signature(CY[name]), inspect.signature(getattr(ref, name))
    assert [(p.name, p.default) for p in cy.parameters.values()] == [
        (p.name, p.default) for p in py.parameters.values()
    ]
    assert CY[name].__doc__.strip()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_matches_reference(spec, dtype):
    rng = np.random.default_rng(0)
    for shape in spec.shapes:
        _compare(spec, _make(spec, shape, dtype, rng), dtype)


@pytest.mark.parametrize("how", ["step2", "transpose"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_non_contiguous_inputs(spec, dtype, how):
    rng = np.random.default_rng(1)
    for shape in ((7, 13), (2, 3, 5)):
        if len(shape) in {len(s) for s in spec.shapes}:
            args = _make(spec, shape, dtype, rng)
            _compare(spec, [_non_contiguous(a, how) for a in args], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_inf_and_nan_propagate(spec, dtype):
    rng = np.random.default_rng(2)
    _compare(spec, _make(spec, (16, 16), dtype, rng, special=True), dtype)


EXACT = [s for s in SPECS if s.name in {
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "elu_backward", "sigmoid_backward", "tanh_backward", "step_forward", "step_backward",
    "selu_backward", "bias_add", "mse_backward", "add", "subtract", "multiply", "negative",
    "sum_all",
}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", EXACT, ids=_ids(EXACT))
def test_same_operations_give_the_same_bits(spec, dtype):
    """Kernels doing the reference's own float operations agree bit for bit, -0.0 included
    (the selects of leaky_relu and elu are rewritten for the vectorizer, not changed)."""
    rng = np.random.default_rng(14)
    args = _make(spec, (16, 16), dtype, rng, special=True)
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.ndim == 2:
            a[0, :4] = [0.0, -0.0, 1e-45 if dtype == np.float32 else 5e-324, -1e-45]
    got, want = _call("cython", spec, args), _call("reference", spec, args)
    _assert_same_bits(got, want)


def _assert_same_bits(got, want):
    same = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
    assert np.all(same | (np.isnan(got) & np.isnan(want)))


@pytest.mark.parametrize("alpha", [np.inf, -np.inf, np.nan, -2.0, 0.0])
def test_leaky_relu_odd_alpha(alpha):
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(all="ignore"):
        want = ref.leaky_relu_forward(x, alpha)
    _assert_same_bits(activations.leaky_relu_forward(x, alpha), want)


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_large(spec):
    rng = np.random.default_rng(3)
    shape = (10**6,) if spec.elementwise else (100_000, 10)
    _compare(spec, _make(spec, shape, np.float32, rng), np.float32)


@pytest.mark.parametrize("spec", WITH_OUT, ids=_ids(WITH_OUT))
def test_out_is_written_and_returned(spec):
    rng = np.random.default_rng(4)
    args = _make(spec, (7, 13), np.float64, rng)
    want = _call("reference", spec, args)
    buf = np.full((want[1] if isinstance(want, tuple) else want).shape, np.nan)
    key = "probs_out" if isinstance(want, tuple) else "out"
    got = _call("cython", spec, args, **{key: buf})
    assert (got[1] if isinstance(got, tuple) else got) is buf
    _close(got, want, np.float64, _scale(spec, args))


@pytest.mark.parametrize("spec", WITH_OUT, ids=_ids(WITH_OUT))
def test_out_may_be_an_input(spec):
    """In place: out is one of the inputs of the output's shape (each in turn)."""
    rng = np.random.default_rng(5)
    args = _make(spec, (7, 13), np.float64, rng)
    want = _call("reference", spec, [a.copy() if hasattr(a, "copy") else a for a in args])
    result = want[1] if isinstance(want, tuple) else want
    key = "probs_out" if isinstance(want, tuple) else "out"
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype == result.dtype and a.shape == result.shape:
            fresh = [b.copy() if hasattr(b, "copy") else b for b in args]
            got = _call("cython", spec, fresh, **{key: fresh[i]})
            assert (got[1] if isinstance(got, tuple) else got) is fresh[i]
            _close(got, want, np.float64, _scale(spec, args))


def _bad_outs(shape):
    wide = np.zeros(shape[:-1] + (2 * shape[-1],))
    frozen = np.zeros(shape)
    frozen.flags.writeable = False
    return [
        ([0.0] * shape[-1], TypeError, "numpy array"),
        (np.zeros(shape, np.float32), TypeError, "dtype"),
        (np.zeros(shape[:-1] + (shape[-1] + 1,)), ValueError, "shape"),
        (np.zeros(shape + (1,)), ValueError, "shape"),
        (wide[..., ::2], ValueError, "contiguous"),
        (frozen, ValueError, "read-only"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", WITH_OUT, ids=_ids(WITH_OUT))
def test_bad_out_raises(spec, backend):
    rng = np.random.default_rng(6)
    args = _make(spec, (7, 13), np.float64, rng)
    want = _call("reference", spec, args)
    key = "probs_out" if isinstance(want, tuple) else "out"
    for out, error, word in _bad_outs((want[1] if isinstance(want, tuple) else want).shape):
        with pytest.raises(error, match=word):
            _call(backend, spec, args, **{key: out})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_bad_inputs_raise(spec, backend):
    """A list, an int array, the other float dtype, another shape: each argument in turn."""
    rng = np.random.default_rng(7)
    args = _make(spec, (7, 13), np.float32, rng)
    for i, role in enumerate(spec.roles):
        if role == "scalar":
            continue
        a = args[i]
        bad_shape = np.resize(a, a.shape[:-1] + (a.shape[-1] + 1,))
        word = "needs" if role == "bias" else "shape"
        cases = [(a.tolist(), TypeError, "numpy array"), (bad_shape, ValueError, word)]
        if role == "labels":
            cases.append((a.astype(np.float32), TypeError, "integer"))
        else:
            cases.append((a.astype(np.int64), TypeError, "float32 or float64"))
            if i != spec.lead:
                cases.append((a.astype(np.float64), TypeError, "dtype"))
        for bad, error, word in cases:
            if i == spec.lead and error is ValueError:
                continue  # the lead array sets the shape the others must match
            with pytest.raises(error, match=word):
                _call(backend, spec, args[:i] + [bad] + args[i + 1:])


# --------------------------------------------------------------------------- properties


SUBNORMAL32 = float(np.float32(1e-40))  # exactly representable in both dtypes


def _floats(dtype):
    width = 32 if dtype == np.float32 else 64
    return st.one_of(
        st.floats(-1e4, 1e4, width=width),
        st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -0.0, 80.0, -80.0, SUBNORMAL32]),
    )


@st.composite
def _elementwise_call(draw, spec):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    args = []
    for role in spec.roles:
        if role == "scalar":
            args.append(draw(st.floats(-10, 10)))
        elif role == "unit":
            args.append(draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32))))
        else:
            args.append(draw(hnp.arrays(dtype, shape, elements=_floats(dtype))))
    return dtype, args


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=_ids(ELEMENTWISE))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_elementwise_property(spec, data):
    dtype, args = data.draw(_elementwise_call(spec))
    _compare(spec, args, dtype)


# --------------------------------------------------------------------------- along an axis


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 150)])
@pytest.mark.parametrize(
    "name", ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward"]
)
def test_every_axis(name, shape, dtype):
    """Every axis of a 3-D array, negative ones too; 150 columns cross the block size."""
    rng = np.random.default_rng(8)
    for axis in range(-3, 3):
        roles = ("x",) if name.endswith("forward") else ("x", "probs")
        spec = _axis(name, roles, axis=axis)
        _compare(spec, _make(spec, shape, dtype, rng), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_axis(backend):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="out of range"):
        BACKENDS[backend]["softmax_forward"](x, axis=2)
    with pytest.raises(ValueError, match="out of range"):
        BACKENDS[backend]["log_softmax_backward"](x, x, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        BACKENDS[backend]["softmax_forward"](x, axis=1.0)
    assert BACKENDS[backend]["softmax_forward"](x, axis=np.int64(0)).shape == (2, 3)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.int8, np.uint8, np.uint64])
def test_label_dtypes(label_dtype, dtype):
    rng = np.random.default_rng(9)
    logits = _values(rng, (9, 5), dtype)
    labels = rng.integers(0, 5, size=18).astype(label_dtype)[::2]  # non-contiguous too
    dloss = _values(rng, (9,), dtype)
    for name, args in [
        ("sparse_softmax_cross_entropy_forward", (logits, labels)),
        ("sparse_softmax_cross_entropy_backward", (dloss, ref.softmax_forward(logits), labels)),
    ]:
        _close(CY[name](*args), getattr(ref, name)(*args), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint64])
def test_label_out_of_range_is_named(backend, label_dtype):
    logits = np.zeros((4, 3))
    f = BACKENDS[backend]
    with pytest.raises(ValueError, match=r"label 3 at index 2 is out of range \[0, 3\)"):
        f["sparse_softmax_cross_entropy_forward"](logits, np.array([0, 1, 3, 9], label_dtype))
    if label_dtype != np.uint64:
        with pytest.raises(ValueError, match="label -1 at index 1"):
            f["sparse_softmax_cross_entropy_backward"](
                np.ones(4), logits, np.array([0, -1, 2, 2], label_dtype)
            )


# --------------------------------------------------------------------------- gemm


def _layout(mat, how):
    """`mat` in a given memory layout: C, F, row- or column-strided, step-2, reversed."""
    r, c = mat.shape
    if how == "C":
        return np.ascontiguousarray(mat)
    if how == "F":
        return np.asfortranarray(mat)
    if how == "rows":  # rows further apart than their length: a leading dimension > c
        big = np.zeros((r, c + 3), mat.dtype)
        big[:, :c] = mat
        return big[:, :c]
    if how == "cols":
        big = np.zeros((r + 3, c), mat.dtype, order="F")
        big[:r] = mat
        return big[:r]
    if how == "step2":  # no unit stride: must be copied
        big = np.zeros((r, 2 * c), mat.dtype)
        big[:, ::2] = mat
        return big[:, ::2]
    if how == "reversed":
        return np.ascontiguousarray(mat[::-1])[::-1]
    raise AssertionError(how)


LAYOUTS = ["C", "F", "rows", "cols", "step2", "reversed"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_flags_and_layouts(trans_a, trans_b, dtype):
    rng = np.random.default_rng(10)
    m, k, n = 5, 7, 3
    a0 = rng.standard_normal((k, m) if trans_a else (m, k))
    b0 = rng.standard_normal((n, k) if trans_b else (k, n))
    exact = (a0.T if trans_a else a0) @ (b0.T if trans_b else b0)
    for la in LAYOUTS:
        for lb in LAYOUTS:
            a, b = _layout(a0.astype(dtype), la), _layout(b0.astype(dtype), lb)
            got = matmul.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
            _close(got, ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b), dtype)
            np.testing.assert_allclose(got, exact, rtol=TOL[dtype][0] * 10, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_alpha_beta(dtype):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
    c0 = rng.standard_normal((6, 5)).astype(dtype)
    for alpha, beta in [(1.0, 0.0), (-2.0, 0.0), (0.5, 1.0), (2.0, -0.5)]:
        out = c0.copy()
        got = matmul.gemm(a, b, out=out, alpha=alpha, beta=beta)
        assert got is out
        _close(got, ref.gemm(a, b, out=c0.copy(), alpha=alpha, beta=beta), dtype)
    out = np.full((6, 5), np.nan, dtype)  # beta == 0: out is not read, its nan neither
    np.testing.assert_allclose(matmul.gemm(a, b, out=out), a.astype(float) @ b, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mkn", list(itertools.product((0, 1, 2), (0, 1, 3), (0, 1, 2))))
def test_gemm_small_and_empty_dims(mkn, dtype):
    """Dims of 0 and 1, including size-1 dims with strides BLAS would reject if used."""
    m, k, n = mkn
    rng = np.random.default_rng(12)
    a0, b0 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    size = np.dtype(dtype).itemsize
    odd = np.lib.stride_tricks.as_strided
    variants_a = [a0, np.asfortranarray(a0)]
    if m == 1:
        variants_a.append(odd(a0, a0.shape, (12345 * size, size)))
    if k == 1:
        variants_a.append(odd(a0, a0.shape, (size, 999 * size)))
    variants_b = [b0, np.asfortranarray(b0), np.ascontiguousarray(b0.T).T]
    c0 = rng.standard_normal((m, n)).astype(dtype)
    for a in variants_a:
        for b in variants_b:
            want = a0.astype(float) @ b0
            np.testing.assert_allclose(matmul.gemm(a, b), want, rtol=1e-5, atol=1e-6)
            nan_out = np.full((m, n), np.nan, dtype)
            np.testing.assert_allclose(matmul.gemm(a, b, out=nan_out), want, rtol=1e-5,
                                       atol=1e-6)
            got = matmul.gemm(a, b, out=c0.copy(), alpha=2.0, beta=3.0)
            np.testing.assert_allclose(got, 2 * want + 3 * c0, rtol=1e-5, atol=1e-5)


def test_gemm_matches_float64_matmul():
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((37, 50)), rng.standard_normal((50, 23))
    np.testing.assert_allclose(matmul.gemm(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matmul.gemm(b, a, trans_a=True, trans_b=True), (a @ b).T,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gemm_errors(backend):
    gemm = BACKENDS[backend]["gemm"]
    a = np.zeros((4, 3))
    with pytest.raises(ValueError, match="match"):
        gemm(a, a)
    with pytest.raises(ValueError, match="2-D"):
        gemm(a, np.zeros(3))
    with pytest.raises(ValueError, match="needs out"):
        gemm(a, a, trans_b=True, beta=1.0)
    with pytest.raises(TypeError, match="dtype"):
        gemm(a, a.T.astype(np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        gemm(a.tolist(), a.T)
    with pytest.raises(TypeError, match="float32 or float64"):
        gemm(a.astype(int), a.T)
    square = np.ones((4, 4))
    with pytest.raises(ValueError, match="overlap"):
        gemm(square, square, out=square)
    buf = np.ones(40)
    with pytest.raises(ValueError, match="overlap"):
        gemm(np.ones((4, 4)), buf[:16].reshape(4, 4), out=buf[8:24].reshape(4, 4))
    with pytest.raises(ValueError, match="shape"):
        gemm(square, square, out=np.zeros((4, 5)))


def test_gemm_dims_beyond_blas_int_raise():
    big = 2**31
    a = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1, big), (0, 0))
    b = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (big, 1), (0, 0))
    with pytest.raises(ValueError, match="BLAS"):
        matmul.gemm(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", list(range(activations._simd_level(-1) + 1)))
@pytest.mark.parametrize("mn", [(50, 60), (17, 33), (300, 1), (1, 700), (257, 3)])
def test_gemm_of_inner_dimension_one_is_the_exact_outer_product(mn, level, dtype):
    """k == 1 (a layer of one input, the gradient through a layer of one unit) runs as
    vm_outer per SIMD level: one rounded product per element, whatever the layout."""
    m, n = mn
    rng = np.random.default_rng(14)
    a0, b0 = rng.standard_normal((m, 1)), rng.standard_normal((1, n))
    a0[:: 7] = np.inf
    b0[0, 1 :: 5] = np.nan
    b0[0, 2 :: 9] = -0.0
    with np.errstate(invalid="ignore"):  # inf * 0
        want = np.outer(a0.astype(dtype), b0.astype(dtype))  # the products, rounded once
    assert matmul._simd_level(level) == level
    try:
        for trans_a in (False, True):
            for trans_b in (False, True):
                a = np.ascontiguousarray(a0.T) if trans_a else a0
                b = np.ascontiguousarray(b0.T) if trans_b else b0
                got = matmul.gemm(a.astype(dtype), b.astype(dtype), trans_a=trans_a,
                                  trans_b=trans_b)
                assert got.dtype == dtype
                np.testing.assert_array_equal(got, want)
        got = matmul.gemm(a0.astype(dtype), np.asfortranarray(b0.astype(dtype)))
        np.testing.assert_array_equal(got, want)
        # alpha or beta: BLAS, as before
        out = np.ones((m, n), dtype)
        got = matmul.gemm(a0.astype(dtype), b0.astype(dtype), out=out, alpha=2.0, beta=1.0)
        np.testing.assert_allclose(got, 2 * want + 1, rtol=1e-6)
    finally:
        matmul._simd_level(-1)


def _in_order(a, b):
    """op(A) op(B) by the rule of the tiles (and of the scalar loop below them): each element
    the products over p summed in order from +0, each product rounded, then added."""
    acc = np.zeros((a.shape[0], b.shape[1]), a.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for p in range(a.shape[1]):
            acc = acc + np.multiply.outer(a[:, p], b[p, :])
    return acc


# (m, n, k): W3's hidden layer (32 x 32 on a batch of 32), a first layer of 2 inputs, odd
# sizes with every remainder of 4 rows and of 8 (4) columns, the limits of the multiply-adds
# (2 ** 18) and of B's packed rows (16 KB) either side.
TILE_SHAPES = [(32, 32, 32), (32, 32, 2), (33, 17, 13), (7, 9, 11), (5, 8, 40), (6, 24, 3),
               (19, 64, 31), (65, 31, 4), (1, 300, 3), (2, 9, 300), (256, 32, 32),
               (257, 32, 32), (16, 64, 64), (16, 65, 64), (16, 32, 64), (16, 33, 64)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", list(range(activations._simd_level(-1) + 1)))
def test_gemm_small_products_sum_in_order_at_every_level(level, dtype):
    """Products on vmath_gemm.h's tiles have the in-order rule's bits, for every transpose
    flag and layout of A and B, with nan, inf and -0 inside, at every SIMD level (the bits
    are the same on every CPU); the rest goes to BLAS and is the product within rounding."""
    rng = np.random.default_rng(18)
    size = np.dtype(dtype).itemsize
    on_tiles = {s for s in TILE_SHAPES if matmul._tiles(*s, dtype)}
    # W3's layers and both sides of each limit
    assert {(32, 32, 32), (32, 32, 2), (256, 32, 32)} <= on_tiles
    assert (257, 32, 32) not in on_tiles and (1, 300, 3) in on_tiles
    assert (6, 24, 3) in on_tiles and (7, 9, 11) in on_tiles
    assert ((16, 64, 64) in on_tiles) == (size == 4) and (16, 65, 64) not in on_tiles
    assert (16, 32, 64) in on_tiles and ((16, 33, 64) in on_tiles) == (size == 4)
    assert not matmul._tiles(64, 32 // size - 1, 8, dtype)  # narrower than a vector
    assert matmul._simd_level(level) == level
    try:
        for m, n, k in TILE_SHAPES:
            a0 = rng.standard_normal((m, k)).astype(dtype)
            b0 = rng.standard_normal((k, n)).astype(dtype)
            a0.flat[:: 23] = 0.0
            a0.flat[5 :: 41] = -0.0
            b0.flat[3 :: 37] = np.inf
            b0.flat[7 :: 53] = np.nan
            want = _in_order(a0, b0)
            for trans_a, trans_b in itertools.product((False, True), repeat=2):
                for la, lb in [("C", "C"), ("F", "rows"), ("rows", "F"), ("cols", "step2"),
                               ("reversed", "cols"), ("step2", "reversed")]:
                    a = _layout(a0.T if trans_a else a0, la)
                    b = _layout(b0.T if trans_b else b0, lb)
                    with np.errstate(invalid="ignore"):
                        got = matmul.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
                    what = f"{(m, n, k)} trans {trans_a, trans_b}, layouts {la, lb}"
                    if (m, n, k) in on_tiles:
                        np.testing.assert_array_equal(got, want, err_msg=what)
                    else:
                        finite = np.isfinite(want)
                        np.testing.assert_allclose(got[finite], want[finite], err_msg=what,
                                                   rtol=TOL[dtype][0] * k, atol=1e-5)
    finally:
        matmul._simd_level(-1)


# Products with B transposed, C = A B.T (a layer's input gradient dY W.T): where B fits
# gemm's stack buffer and the copy pays (matmul._trans_b_copies), B is copied transposed and
# BLAS runs its plain form; elsewhere BLAS reads B as it is.
# (m, n, k): W3's hidden layer, W2b's, W4's last (float32: B of 10 KB), odd sizes of both
# kinds, short sums below and above the transposition's 8 x 8 tiles.
TB_SHAPES = [(32, 32, 32), (50, 10, 10), (128, 256, 10), (33, 17, 13), (7, 9, 11),
             (1, 5, 16), (19, 64, 31), (31, 3, 7), (2, 3, 300), (40, 2, 33), (9, 40, 40)]
# B just within gemm's buffer (16 KB) and just beyond, per dtype: (m, n, k, copied)
TB_LIMITS = {
    np.float32: [(16, 64, 64, True), (16, 63, 65, True), (16, 65, 64, False),
                 (16, 64, 65, False)],
    np.float64: [(16, 32, 64, True), (16, 64, 32, True), (16, 33, 64, False),
                 (16, 64, 33, False)],
}


def _assert_product(got, a, b, alpha=1.0, beta=0.0, c0=None):
    """got == alpha a b.T + beta c0 within the rounding of sums of a's and b's dtype."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = alpha * (a64 @ b64.T) + (beta * c0.astype(np.float64) if beta else 0.0)
    eps = np.finfo(a.dtype).eps
    bound = 2 * eps * (a.shape[1] + 2) * (abs(alpha) * (np.abs(a64) @ np.abs(b64).T)
                                          + abs(beta) * (np.abs(c0) if beta else 0.0))
    assert got.dtype == a.dtype and got.shape == want.shape
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", TB_SHAPES + [s[:3] for d in DTYPES for s in TB_LIMITS[d]])
def test_gemm_trans_b_matches_the_product(mnk, dtype):
    """Every layout of B, alpha and beta: against the float64 product and the reference."""
    m, n, k = mnk
    rng = np.random.default_rng(15)
    a, b0 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype)
    for how in LAYOUTS:
        b = _layout(b0, how)
        got = matmul.gemm(a, b, trans_b=True)
        _assert_product(got, a, b0)
        _close(got, ref.gemm(a, b, trans_b=True), dtype, scale=k)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    got = matmul.gemm(a, b0, out=c0.copy(), trans_b=True, alpha=-1.5, beta=0.5)
    _assert_product(got, a, b0, -1.5, 0.5, c0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", list(range(activations._simd_level(-1) + 1)))
def test_gemm_trans_b_is_the_product_with_b_transposed_in_memory(level, dtype):
    """Where B is copied (B small, the copy paying): the same bits as the product with B.T
    laid out in memory, whatever B's layout and whichever SIMD level transposes it."""
    rng = np.random.default_rng(16)
    shapes = [s for s in TB_SHAPES if s[0] * s[1] * s[2] > 256]  # smaller ones are loops
    shapes += [s[:3] for s in TB_LIMITS[dtype] if s[3]]
    copied = [s for s in shapes if matmul._trans_b_copies(*s, dtype)]
    # the layers of WORKLOADS.md run this way (W4's B is 20 KB in float64: not copied)
    assert {(32, 32, 32), (50, 10, 10), (16, 64, 64) if dtype == np.float32
            else (16, 32, 64)} <= set(copied)
    assert ((128, 256, 10) in copied) == (dtype == np.float32)
    assert matmul._simd_level(level) == level
    try:
        for m, n, k in copied:
            a = rng.standard_normal((m, k)).astype(dtype)
            b0 = rng.standard_normal((n, k)).astype(dtype)
            want = matmul.gemm(a, np.ascontiguousarray(b0.T))
            for how in LAYOUTS:
                b = _layout(b0, how)
                np.testing.assert_array_equal(matmul.gemm(a, b, trans_b=True), want,
                                              err_msg=f"{(m, n, k)}, B {how}")
                # B.T given with B's buffer in F order: the same product
                np.testing.assert_array_equal(matmul.gemm(a, np.asfortranarray(b0).T), want)
    finally:
        matmul._simd_level(-1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_trans_b_buffer_limit(dtype):
    """B of up to 16 KB is copied, beyond it not; the products agree either side."""
    rng = np.random.default_rng(17)
    for m, n, k, copied in TB_LIMITS[dtype]:
        assert matmul._trans_b_copies(m, n, k, dtype) == copied
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype)
        got = matmul.gemm(a, b, trans_b=True)
        _assert_product(got, a, b)
        if copied:
            np.testing.assert_array_equal(got, matmul.gemm(a, np.ascontiguousarray(b.T)))
    # short sums are copied for any m and n that fit; long ones when C's rows fill a 64-byte
    # vector and there are 16 of them
    size = np.dtype(dtype).itemsize
    assert matmul._trans_b_copies(1, 3, 16, dtype)
    assert not matmul._trans_b_copies(15, 64, 17, dtype)
    assert matmul._trans_b_copies(16, 64 // size, 17, dtype)
    assert not matmul._trans_b_copies(16, 64 // size - 1, 17, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", [(0, 32, 32), (32, 0, 32), (32, 32, 0), (0, 0, 0)])
def test_gemm_trans_b_empty(mnk, dtype):
    m, n, k = mnk
    a, b = np.ones((m, k), dtype), np.ones((n, k), dtype)
    got = matmul.gemm(a, b, trans_b=True)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_array_equal(got, np.zeros((m, n), dtype))
    out = np.full((m, n), 2.0, dtype)
    np.testing.assert_array_equal(matmul.gemm(a, b, out=out, trans_b=True, beta=0.5),
                                  np.full((m, n), 1.0, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_backward_of_an_infinite_dy_far_left(dtype):
    """Found by test_elementwise_property: below x = -15 float32's gelu' is -0, so dy = inf
    gives NaN in the kernel; the reference rounds the derivative to x's dtype likewise."""
    x = np.array([-15.5, -16.0, -30.0, 3.0], dtype)
    dy = np.full(x.shape, np.inf, dtype)
    spec = next(s for s in ELEMENTWISE if s.name == "gelu_backward")
    _compare(spec, [dy, x], dtype)
