"""The optimizer kernels (microgradnet._kernels.optim) against their numpy twins.

Both sides run the same operations in the same order in the data's dtype, so they must
agree to the bit (nan where nan). Also: the update really lands in the caller's arrays,
the gradient is never written, and every argument that cannot be updated in place (wrong
dtype, shape, layout, read-only, overlapping) is refused alike by both backends.
"""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

from microgradnet import _reference as ref
from microgradnet._kernels import optim

BACKENDS = {"reference": ref, "cython": optim}
DTYPES = (np.float32, np.float64)
SHAPES = [(), (0,), (1,), (7,), (7, 13), (2, 3, 5), (3, 0)]

# name -> (state names, positional hyper-parameters after the state, keyword variants)
# Each variant is a dict of keyword arguments; "@name" marks an extra state array.
SPECS = {
    "sgd_update": ((), (0.1,), [
        {}, {"weight_decay": 0.05}, {"grad_scale": 0.3}, {"clipvalue": 0.5},
        {"weight_decay": 0.01, "grad_scale": 0.5, "clipvalue": 0.2},
    ]),
    "sgd_momentum_update": (("velocity",), (0.1, 0.9), [
        {}, {"nesterov": True}, {"weight_decay": 0.05, "clipvalue": 0.4},
        {"nesterov": True, "grad_scale": 0.25},
    ]),
    "adam_update": (("m", "v"), (0.01, 0.9, 0.999, 1e-7), [
        {}, {"vhat": "@"}, {"weight_decay": 0.004}, {"clipvalue": 0.3, "vhat": "@"},
        {"grad_scale": 0.5, "weight_decay": 0.1},
    ]),
    "rmsprop_update": (("velocity",), (0.01, 0.9, 1e-7), [
        {}, {"momentum_buf": "@", "momentum": 0.5}, {"average_grad": "@"},
        {"momentum_buf": "@", "momentum": 0.9, "average_grad": "@", "weight_decay": 0.01},
        {"clipvalue": 0.1, "grad_scale": 2.0},
    ]),
    "adagrad_update": (("accumulator",), (0.01, 1e-7), [
        {}, {"weight_decay": 0.02}, {"clipvalue": 0.2, "grad_scale": 0.9},
    ]),
}
CASES = [(name, i) for name, spec in SPECS.items() for i in range(len(spec[2]))]


def _ids(cases):
    return [f"{name}-{i}" for name, i in cases]


def _arrays(name, variant, shape, dtype, rng, scale=1.0):
    """param, grad, the state arrays and the keyword arguments of one call, all fresh."""
    states, _, variants = SPECS[name]
    kwargs = dict(variants[variant])
    def normal(factor=1.0):
        return np.asarray(rng.standard_normal(shape) * factor, dtype)

    p, g = normal(scale), normal(scale)
    # Second moments are >= 1 and the extra states <= 1: centered RMSprop keeps
    # average_grad^2 <= velocity from there on (a convex combination), so no nan.
    state = [np.asarray(np.abs(normal()) + 1, dtype) for _ in states]
    for key, value in kwargs.items():
        if isinstance(value, str):
            kwargs[key] = np.asarray(np.minimum(0.5 * np.abs(normal()), 1), dtype)
    return p, g, state, kwargs


def _copy(p, g, state, kwargs):
    copy = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return p.copy(), g.copy(), [s.copy() for s in state], copy


def _call(module, name, p, g, state, kwargs, step=1):
    """One update; Adam also gets its step count."""
    hyper = SPECS[name][1]
    extra = {"step": step} if name == "adam_update" else {}
    return getattr(module, name)(p, g, *state, *hyper, **kwargs, **extra)


def _written(p, state, kwargs):
    return [p, *state, *(v for v in kwargs.values() if isinstance(v, np.ndarray))]


def _assert_same(a_arrays, b_arrays):
    for a, b in zip(a_arrays, b_arrays, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- values


def test_signatures_match_the_reference():
    for name in [*SPECS, "sum_squares"]:
        cy = inspect.signature(getattr(optim, name))
        py = inspect.signature(getattr(ref, name))
        assert [(p.name, p.default) for p in cy.parameters.values()] == [
            (p.name, p.default) for p in py.parameters.values()
        ]




@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "variant"), CASES, ids=_ids(CASES))
def test_matches_reference_to_the_bit(name, variant, dtype, simd_level):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        args = _arrays(name, variant, shape, dtype, rng)
        want = _copy(*args)
        got = _copy(*args)
        # A few steps in a row: the state carries over, so errors would compound.
        for step in (1, 2, 3):
            _call(ref, name, *want, step=step)
            _call(optim, name, *got, step=step)
        _assert_same(_written(want[0], want[2], want[3]), _written(got[0], got[2], got[3]))
        assert want[0].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "variant"), CASES, ids=_ids(CASES))
def test_inf_and_nan_propagate_alike(name, variant, dtype):
    rng = np.random.default_rng(1)
    p, g, state, kwargs = _arrays(name, variant, (6, 5), dtype, rng)
    g[0, :] = [np.nan, np.inf, -np.inf, 0.0, 1e30]
    p[1, :] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    want, got = _copy(p, g, state, kwargs), _copy(p, g, state, kwargs)
    with np.errstate(all="ignore"):
        _call(ref, name, *want)
    _call(optim, name, *got)
    _assert_same(_written(want[0], want[2], want[3]), _written(got[0], got[2], got[3]))
    assert np.isnan(got[0][0, 0])  # a nan gradient is never hidden


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_formulas_by_hand(backend, dtype):
    """One step of each rule on numbers small enough to follow (float64 arithmetic)."""
    mod = BACKENDS[backend]
    tol = {"rtol": 1e-6 if dtype == np.float32 else 1e-14}
    p, g = np.array([1.0, -2.0], dtype), np.array([0.5, 4.0], dtype)

    q = p.copy()
    mod.sgd_update(q, g, 0.1, weight_decay=0.5, clipvalue=1.0)
    np.testing.assert_allclose(q, [1 - 0.05 - 0.05, -2 + 0.1 - 0.1], **tol)

    q, vel = p.copy(), np.array([1.0, 1.0], dtype)
    mod.sgd_momentum_update(q, g, vel, 0.1, 0.9, nesterov=True)
    v = 0.9 * np.array([1.0, 1.0]) - 0.1 * np.array([0.5, 4.0])
    np.testing.assert_allclose(vel, v, **tol)
    np.testing.assert_allclose(q, [1, -2] + 0.9 * v - 0.1 * np.array([0.5, 4.0]), **tol)

    q, m, vv = p.copy(), np.zeros(2, dtype), np.zeros(2, dtype)
    mod.adam_update(q, g, m, vv, 0.01, 0.9, 0.999, 1e-7, 1)
    # First Adam step: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1: p -= ~lr sign(g)
    alpha = 0.01 * math.sqrt(1 - 0.999) / (1 - 0.9)
    gd = np.array([0.5, 4.0])
    np.testing.assert_allclose(q, [1, -2] - alpha * 0.1 * gd / (np.sqrt(0.001 * gd**2) + 1e-7),
                               **tol)

    q, vel = p.copy(), np.zeros(2, dtype)
    mod.rmsprop_update(q, g, vel, 0.01, 0.9, 1e-7)
    np.testing.assert_allclose(q, [1, -2] - 0.01 * gd / np.sqrt(0.1 * gd**2 + 1e-7), **tol)

    q, acc = p.copy(), np.full(2, 0.1, dtype)
    mod.adagrad_update(q, g, acc, 0.01, 1e-7)
    np.testing.assert_allclose(q, [1, -2] - 0.01 * gd / np.sqrt(0.1 + gd**2 + 1e-7), **tol)


def test_amsgrad_keeps_the_largest_second_moment():
    for mod in BACKENDS.values():
        p = np.zeros(2)
        m, v, vhat = np.zeros(2), np.array([0.0, 9.0]), np.array([5.0, 1.0])
        mod.adam_update(p, np.array([1.0, 1.0]), m, v, 0.1, 0.9, 0.5, 0.0, 1, vhat=vhat)
        np.testing.assert_allclose(v, [0.5, 5.0])
        np.testing.assert_allclose(vhat, [5.0, 5.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_squares(backend, dtype):
    mod = BACKENDS[backend]
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        a = rng.standard_normal(shape).astype(dtype)
        got = mod.sum_squares(a)
        assert type(got) is float
        assert got == pytest.approx(float(np.sum(a.astype(np.float64) ** 2)), rel=1e-12)
        # Any layout: a transposed or strided view gives the same sum.
        assert mod.sum_squares(a.T) == pytest.approx(got, rel=1e-12)
    big = np.full(10**6, 0.1, np.float32)  # float32 accumulation would drift here
    assert mod.sum_squares(big) == pytest.approx(10**6 * float(np.float32(0.1)) ** 2, rel=1e-9)
    assert math.isnan(mod.sum_squares(np.array([1.0, np.nan], dtype)))


# --------------------------------------------------------------------------- in place


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "variant"), CASES, ids=_ids(CASES))
def test_updates_in_place_and_leaves_grad_alone(backend, name, variant):
    mod = BACKENDS[backend]
    rng = np.random.default_rng(3)
    p, g, state, kwargs = _arrays(name, variant, (4, 3), np.float64, rng)
    arrays = _written(p, state, kwargs)
    ids = [id(a) for a in arrays]
    pointers = [a.ctypes.data for a in arrays]
    before = [a.copy() for a in arrays]
    g_before = g.copy()
    assert _call(mod, name, p, g, state, kwargs) is None
    after = _written(p, state, kwargs)
    assert [id(a) for a in after] == ids
    assert [a.ctypes.data for a in after] == pointers
    assert not np.array_equal(p, before[0])  # the parameter moved
    for a, b in zip(after[1:], before[1:], strict=True):  # and every state array changed
        assert not np.array_equal(a, b)
    np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_may_be_param_or_a_view_of_it(backend):
    mod = BACKENDS[backend]
    p = np.array([1.0, 2.0, 3.0])
    mod.sgd_update(p, p, 0.5)  # p - 0.5 p
    np.testing.assert_array_equal(p, [0.5, 1.0, 1.5])
    # A reversed view of the parameter: read before written, as numpy would.
    p = np.array([1.0, 2.0, 3.0])
    mod.sgd_update(p, p[::-1], 1.0)
    np.testing.assert_array_equal(p, [-2.0, 0.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_grad_is_fine(backend, dtype):
    mod = BACKENDS[backend]
    rng = np.random.default_rng(4)
    g = rng.standard_normal((5, 4)).astype(dtype)
    p1 = rng.standard_normal((4, 5)).astype(dtype)
    p2 = p1.copy()
    m1, v1, m2, v2 = (np.zeros((4, 5), dtype) for _ in range(4))
    mod.adam_update(p1, g.T, m1, v1, 0.01, 0.9, 0.999, 1e-7, 1)
    mod.adam_update(p2, np.ascontiguousarray(g.T), m2, v2, 0.01, 0.9, 0.999, 1e-7, 1)
    np.testing.assert_array_equal(p1, p2)


# --------------------------------------------------------------------------- bad input


def _bad_cases():
    """(description, argument position or keyword, replacement, error, message part)."""
    f64 = np.zeros((2, 3))
    read_only = np.zeros((2, 3))
    read_only.flags.writeable = False
    return [
        ("list", "param", [[0.0] * 3] * 2, TypeError, "param must be a numpy array"),
        ("int", "param", np.zeros((2, 3), np.int64), TypeError, "param must be float32"),
        ("float16", "param", np.zeros((2, 3), np.float16), TypeError, "float32 or float64"),
        ("transposed", "param", np.zeros((3, 2)).T, ValueError, "param must be C-contiguous"),
        ("strided", "param", np.zeros((2, 6))[:, ::2], ValueError, "C-contiguous"),
        ("read-only", "param", read_only, ValueError, "param is read-only"),
        ("grad dtype", "grad", np.zeros((2, 3), np.float32), TypeError, "grad has dtype"),
        ("grad shape", "grad", np.zeros((3, 2)), ValueError, "grad has shape (3, 2)"),
        ("grad list", "grad", [[0.0] * 3] * 2, TypeError, "grad must be a numpy array"),
        ("state dtype", "state", np.zeros((2, 3), np.float32), TypeError, "float64"),
        ("state shape", "state", np.zeros((6,)), ValueError, "expected (2, 3) like param"),
        ("state transposed", "state", np.zeros((3, 2)).T, ValueError, "C-contiguous"),
        ("state read-only", "state", read_only, ValueError, "is read-only"),
        ("state is param", "state", "param", ValueError, "overlaps param"),
        ("state None", "state", None, TypeError, "must be a numpy array"),
        ("fine", None, f64, None, None),
    ]



BAD = [(case, name) for case in _bad_cases() for name in SPECS
       if case[1] != "state" or SPECS[name][0]]  # sgd_update has no state array


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "name"), BAD, ids=[f"{c[0]}-{n}" for c, n in BAD])
def test_bad_arguments_are_refused_alike(case, name, backend):
    what, where, value, error, message = case
    states, hyper, _ = SPECS[name]
    p, g = np.ones((2, 3)), np.ones((2, 3))
    state = [np.zeros((2, 3)) for _ in states]
    if where == "param":
        p = value
    elif where == "grad":
        g = value
    elif where == "state":
        state[0] = p if isinstance(value, str) else value
    args = (p, g, *state, *hyper) + ((1,) if name == "adam_update" else ())
    fn = getattr(BACKENDS[backend], name)
    if error is None:
        fn(*args)
        return
    before = None if not isinstance(p, np.ndarray) else p.copy()
    with pytest.raises(error, match=re.escape(message)):
        fn(*args)
    if before is not None and before.dtype.kind == "f" and p.flags.writeable:
        np.testing.assert_array_equal(p, before)  # checked before anything is written


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_state_arrays_are_refused(backend):
    mod = BACKENDS[backend]
    p, g = np.ones(4), np.ones(4)
    m = np.zeros(4)
    with pytest.raises(ValueError, match="m overlaps v"):
        mod.adam_update(p, g, m, m, 0.01, 0.9, 0.999, 1e-7, 1)
    both = np.zeros(8)
    with pytest.raises(ValueError, match="overlaps"):
        mod.adam_update(p, g, both[:4], np.zeros(4), 0.01, 0.9, 0.999, 1e-7, 1, vhat=both[:4])
    with pytest.raises(ValueError, match="momentum_buf overlaps velocity"):
        mod.rmsprop_update(p, g, m, 0.01, 0.9, 1e-7, momentum_buf=m, momentum=0.5)
    with pytest.raises(ValueError, match="average_grad overlaps"):
        mod.rmsprop_update(p, g, np.zeros(4), 0.01, 0.9, 1e-7, average_grad=p)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_scalars(backend):
    mod = BACKENDS[backend]
    p, g = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match="step must be >= 1"):
        mod.adam_update(p, g, np.zeros(3), np.zeros(3), 0.01, 0.9, 0.999, 1e-7, 0)
    with pytest.raises(ValueError, match="needs a momentum_buf"):
        mod.rmsprop_update(p, g, np.zeros(3), 0.01, 0.9, 1e-7, momentum=0.9)
    with pytest.raises(TypeError, match="a must be a numpy array"):
        mod.sum_squares([1.0, 2.0])
    with pytest.raises(TypeError, match="float32 or float64"):
        mod.sum_squares(np.arange(3))
