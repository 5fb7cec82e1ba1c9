"""numpy functions on tensors: ufuncs and the common array functions dispatch to the
microgradnet op of the same meaning (a Tensor in the graph, gradients flow); the others
raise a TypeError naming what to use; np.asarray(t) still gives the data."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg

RNG = np.random.default_rng(0)


def _t(*shape, low=-2.0, high=2.0, grad=True):
    return mg.tensor(RNG.uniform(low, high, size=shape), dtype="float64", requires_grad=grad)


A = RNG.uniform(0.5, 2.0, size=(3, 4))
B = RNG.uniform(0.5, 2.0, size=(3, 4))
M = RNG.uniform(-1.0, 1.0, size=(4, 2))

# (numpy call on tensors, the same on arrays, inputs (as arrays), positive inputs only)
UFUNC_CASES = {
    "add": (lambda a, b: np.add(a, b), 2), "subtract": (lambda a, b: np.subtract(a, b), 2),
    "multiply": (lambda a, b: np.multiply(a, b), 2), "divide": (lambda a, b: np.divide(a, b), 2),
    "true_divide": (lambda a, b: np.true_divide(a, b), 2),
    "power": (lambda a, b: np.power(a, b), 2), "maximum": (lambda a, b: np.maximum(a, b), 2),
    "minimum": (lambda a, b: np.minimum(a, b), 2), "negative": (lambda a: np.negative(a), 1),
    "positive": (lambda a: np.positive(a), 1), "exp": (lambda a: np.exp(a), 1),
    "log": (lambda a: np.log(a), 1), "sqrt": (lambda a: np.sqrt(a), 1),
    "abs": (lambda a: np.abs(a), 1), "absolute": (lambda a: np.absolute(a), 1),
    "tanh": (lambda a: np.tanh(a), 1),
}


@pytest.mark.parametrize("name", sorted(UFUNC_CASES))
def test_ufuncs_dispatch_to_ops_in_the_graph(name):
    fn, arity = UFUNC_CASES[name]
    arrays = [A, B][:arity]
    ts = [mg.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    out = fn(*ts)
    assert isinstance(out, mg.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.numpy(), fn(*arrays), rtol=1e-12)
    assert mg.gradcheck(lambda *xs: fn(*xs).sum(), ts)


def test_binary_ufuncs_mix_arrays_and_tensors():
    t = mg.tensor(A, dtype="float64", requires_grad=True)
    for out in (np.multiply(B, t), B * t, np.add(t, 2.0), np.float64(2.0) * t, B - t):
        assert isinstance(out, mg.Tensor) and out.requires_grad
    out = np.multiply(B, t)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), B)


def test_matmul_dot_and_friends_stay_in_the_graph():
    x, w = _t(3, 4), _t(4, 2)
    for f in (lambda a, b: np.matmul(a, b), lambda a, b: np.dot(a, b), lambda a, b: a @ b):
        out = f(x, w)
        assert isinstance(out, mg.Tensor) and out.requires_grad
        np.testing.assert_allclose(out.numpy(), x.numpy() @ w.numpy(), rtol=1e-12)
        assert mg.gradcheck(lambda a, b, f=f: f(a, b).sum(), [x, w])
    v = _t(4)
    assert mg.gradcheck(lambda a, b: np.dot(a, b), [v, _t(4)])  # 1-D dot 1-D: a scalar
    assert mg.gradcheck(lambda a: np.dot(a, 3.0).sum(), [v])
    with pytest.raises(TypeError, match="mg.matmul"):
        np.dot(_t(2, 3, 4), _t(4, 2))


REDUCTIONS = {
    "sum": lambda t: np.sum(t, axis=1), "mean": lambda t: np.mean(t),
    "mean_keepdims": lambda t: np.mean(t, axis=0, keepdims=True),
    "max": lambda t: np.max(t, axis=0), "min": lambda t: np.min(t),
    "amax": lambda t: np.amax(t, axis=1), "amin": lambda t: np.amin(t, axis=1),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_dispatch(name):
    fn = REDUCTIONS[name]
    t = _t(3, 4)
    out = fn(t)
    assert isinstance(out, mg.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.numpy(), fn(t.numpy()), rtol=1e-12)
    assert mg.gradcheck(lambda x: fn(x).sum(), [t])


SHAPES = {
    "clip": lambda t: np.clip(t, -0.5, 0.5), "clip_kw": lambda t: np.clip(t, min=-0.5),
    "reshape": lambda t: np.reshape(t, (4, 3)), "transpose": lambda t: np.transpose(t),
    "transpose_axes": lambda t: np.transpose(t, (1, 0)),
    "concatenate": lambda t: np.concatenate([t, t * 2], axis=1),
    "stack": lambda t: np.stack([t, t], axis=0),
    "where": lambda t: np.where(t.numpy() > 0, t, t * 3),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_array_functions_dispatch(name):
    fn = SHAPES[name]
    t = _t(3, 4)
    out = fn(t)
    assert isinstance(out, mg.Tensor) and out.requires_grad
    expected = {"clip_kw": lambda a: np.maximum(a, -0.5),
                "where": lambda a: np.where(a > 0, a, a * 3)}.get(name, fn)
    np.testing.assert_allclose(out.numpy(), expected(t.numpy()), rtol=1e-12)
    assert mg.gradcheck(lambda x: (fn(x) * 1.5).sum(), [t])


def test_np_clip_no_longer_drops_out_of_the_graph():
    t = mg.tensor([[-2.0, 0.0, 2.0]], requires_grad=True)
    out = np.clip(t, -1, 1)
    assert isinstance(out, mg.Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [[0.0, 1.0, 0.0]])


def test_queries_without_a_gradient_give_numpy_values():
    t = mg.tensor([[1.0, np.nan, 3.0]])
    assert np.shape(t) == (1, 3) and np.ndim(t) == 2 and np.size(t) == 3
    np.testing.assert_array_equal(np.isnan(t), [[False, True, False]])
    assert np.isnan(t).any() and not np.all(np.isfinite(t))
    assert int(np.argmax(mg.tensor([1.0, 5.0, 2.0]))) == 1
    assert np.allclose(mg.tensor([1.0, 2.0]), [1.0, 2.0])
    assert np.array_equal(mg.tensor([1, 2]), np.array([1, 2]))
    np.testing.assert_array_equal(np.where(mg.tensor([0.0, 1.0]) > 0)[0], [1])
    np.testing.assert_allclose(mg.tensor([1.0, 2.0]), [1.0, 2.0])
    counts, _ = np.histogram(mg.tensor([0.1, 0.2, 0.9]), bins=2, range=(0, 1))
    assert counts.tolist() == [2, 1]


def test_asarray_still_gives_the_data():
    t = mg.tensor([[1.0, 2.0]], requires_grad=True)
    assert np.asarray(t) is t.data
    assert np.array(t).dtype == np.float32 and np.array(t) is not t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("call, match", [
    (lambda t: np.square(t), r"np.square has no microgradnet op: use t \*\* 2"),
    (lambda t: np.sin(t), r"np.sin has no microgradnet op.*t.numpy\(\)"),
    (lambda t: np.log1p(t), r"use mg.log\(1 \+ t\)"),
    (lambda t: np.add.reduce(t), r"np.add.reduce has no microgradnet op: use mg.sum"),
    (lambda t: np.multiply.outer(t, t), r"np.multiply.outer has no microgradnet op"),
    (lambda t: np.exp(t, dtype=np.float32), r"takes no dtype="),
    (lambda t: np.ravel(t), r"np.ravel has no microgradnet op: use t.reshape\(-1\)"),
    (lambda t: np.squeeze(t), r"np.squeeze has no microgradnet op"),
    (lambda t: np.median(t), r"np.median has no microgradnet op.*t.numpy\(\)"),
    (lambda t: np.linalg.norm(t), r"np.linalg.norm has no microgradnet op: use mg.sqrt"),
    (lambda t: np.mean(t, dtype=np.float64), r"np.mean on tensors takes no dtype="),
    (lambda t: np.sum(t, out=np.zeros(())), r"np.sum on tensors takes no out="),
    (lambda t: np.concatenate([t, t], axis=None), r"axis=None"),
    (lambda t: np.where(t.numpy() > 0, t), r"both x and y"),
])
def test_functions_without_an_op_raise_naming_what_to_use(call, match):
    t = _t(3, 4)
    with pytest.raises(TypeError, match=match):
        call(t)


def test_out_arguments():
    # numpy arrays as out: the values, outside the graph (e.g. array += tensor)
    acc = np.zeros(3, np.float32)
    acc += mg.tensor([1.0, 2.0, 3.0])
    assert type(acc) is np.ndarray and acc.tolist() == [1.0, 2.0, 3.0]
    t = mg.tensor([1.0, 2.0, 3.0])
    assert np.multiply(t, 2.0, out=t) is t and t.tolist() == [2.0, 4.0, 6.0] and t._version == 1
    w = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match="would write around the graph"):
        np.add(w, 1.0, out=np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="would write around the graph"):
        acc += w
    with mg.no_grad():
        np.add(w, 1.0, out=w)
    assert w.tolist() == [2.0, 3.0, 4.0] and w._version == 1
