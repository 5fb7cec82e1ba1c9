"""One table of ops drives the forward, gradient and backend-parity tests.

Each case names the registered Function it exercises (`functional.REGISTRY`), a Tensor-level
call, an independent numpy expression of the forward, and how to draw its inputs (values
sampled in the op's domain). A test below fails if a registered op has no case.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from scipy.special import erf

import microgradnet as mg
from microgradnet.autograd import Function
from microgradnet.functional import REGISTRY


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class Case:
    op: str  # the registered Function's name
    fn: Callable[..., Any]  # on Tensors
    ref: Callable[..., Any]  # on numpy arrays
    shapes: list  # one shape per input
    low: float = -2.0
    high: float = 2.0
    grad: bool = True  # differentiable
    consts: list = field(default_factory=list)  # indices of inputs that never require grad
    id: str = ""

    def __post_init__(self):
        self.id = self.id or self.op


def _away_from_zero(x):
    # Keeps samples off relu/abs kinks (the kink tests below put them there on purpose).
    return np.where(np.abs(x) < 0.1, x + np.sign(x + 1e-12) * 0.2, x)


CASES = [
    # arithmetic, with broadcasting
    Case("add", lambda a, b: a + b, np.add, [(3, 4), (4,)]),
    Case("add", lambda a, b: a + b, np.add, [(2, 1, 3), (4, 1)], id="add_broadcast_both"),
    Case("add", lambda a: a + 2.5, lambda a: a + 2.5, [(3,)], id="add_scalar"),
    Case("add", lambda a: 1 + a, lambda a: 1 + a, [(2, 2)], id="radd_scalar"),
    Case("sub", lambda a, b: a - b, np.subtract, [(3, 1), (1, 4)]),
    Case("sub", lambda a: 3.0 - a, lambda a: 3.0 - a, [(5,)], id="rsub_scalar"),
    Case("mul", lambda a, b: a * b, np.multiply, [(2, 3, 4), (3, 1)]),
    Case("mul", lambda a, b: a * b, np.multiply, [(), (3,)], id="mul_0d"),
    Case("div", lambda a, b: a / b, np.divide, [(3, 4), (4,)], low=0.5, high=2.0),
    Case("div", lambda a: 2.0 / a, lambda a: 2.0 / a, [(4,)], low=0.5, high=2.0, id="rdiv"),
    Case("pow", lambda a: a**2, lambda a: a**2, [(3, 3)], id="pow_scalar"),
    Case("pow", lambda a, b: a**b, np.power, [(3, 2), (2,)], low=0.5, high=2.0),
    Case("pow", lambda a: 2.0**a, lambda a: 2.0**a, [(4,)], id="rpow"),
    Case("neg", lambda a: -a, np.negative, [(2, 3)]),
    Case("maximum", mg.maximum, np.maximum, [(3, 4), (4,)]),
    Case("minimum", mg.minimum, np.minimum, [(3, 4), (3, 1)]),
    Case(
        "where",
        lambda a, b: mg.where(np.arange(12).reshape(3, 4) % 3 == 0, a, b),
        lambda a, b: np.where(np.arange(12).reshape(3, 4) % 3 == 0, a, b),
        [(3, 4), (4,)],
    ),
    # unary math
    Case("exp", mg.exp, np.exp, [(3, 4)]),
    Case("log", mg.log, np.log, [(3, 4)], low=0.2, high=3.0),
    Case("sqrt", mg.sqrt, np.sqrt, [(5,)], low=0.2, high=3.0),
    Case("abs", mg.abs, np.abs, [(7,)]),
    Case("clip", lambda a: mg.clip(a, -0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0), [(4, 5)]),
    Case("clip", lambda a: a.clip(min=0.3), lambda a: np.clip(a, 0.3, None), [(9,)],
         id="clip_low_only"),
    Case("cast", lambda a: mg.cast(a, "float32") * 2, lambda a: a.astype(np.float32) * 2,
         [(3,)], grad=False),
    # reductions
    Case("sum", lambda a: a.sum(), np.sum, [(3, 4)]),
    Case("sum", lambda a: a.sum(axis=0), lambda a: a.sum(axis=0), [(3, 4)], id="sum_axis0"),
    Case("sum", lambda a: a.sum(axis=-1, keepdims=True),
         lambda a: a.sum(axis=-1, keepdims=True), [(2, 3, 4)], id="sum_keepdims"),
    Case("sum", lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(axis=(0, 2)), [(2, 3, 4)],
         id="sum_axes_tuple"),
    Case("mean", lambda a: a.mean(), np.mean, [(3, 4)]),
    Case("mean", lambda a: a.mean(axis=1), lambda a: a.mean(axis=1), [(3, 4, 2)],
         id="mean_axis1"),
    Case("mean", lambda a: a.mean(axis=(0, 1), keepdims=True),
         lambda a: a.mean(axis=(0, 1), keepdims=True), [(3, 4, 2)], id="mean_keepdims"),
    Case("max", lambda a: a.max(), np.max, [(3, 4)]),
    Case("max", lambda a: a.max(axis=0), lambda a: a.max(axis=0), [(3, 4)], id="max_axis0"),
    Case("max", lambda a: a.max(axis=-1, keepdims=True),
         lambda a: a.max(axis=-1, keepdims=True), [(2, 3, 4)], id="max_keepdims"),
    Case("min", lambda a: a.min(axis=1), lambda a: a.min(axis=1), [(3, 4)]),
    Case("min", lambda a: a.min(), np.min, [(5,)], id="min_all"),
    # shapes and indexing
    Case("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [(3, 4)]),
    Case("reshape", lambda a: a.reshape(-1), lambda a: a.reshape(-1), [(2, 3, 2)],
         id="reshape_flat"),
    Case("transpose", lambda a: a.T, lambda a: a.T, [(3, 4)]),
    Case("transpose", lambda a: a.transpose(1, 2, 0), lambda a: a.transpose(1, 2, 0),
         [(2, 3, 4)], id="transpose_axes"),
    Case("getitem", lambda a: a[1], lambda a: a[1], [(3, 4)]),
    Case("getitem", lambda a: a[:, 1:3], lambda a: a[:, 1:3], [(3, 4)], id="getitem_slice"),
    Case("getitem", lambda a: a[::2, ..., None], lambda a: a[::2, ..., None], [(5, 2)],
         id="getitem_step_newaxis"),
    Case("getitem", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [(3, 2)],
         id="getitem_repeated_int_array"),
    Case("getitem", lambda a: a[np.array([1, 1]), np.array([0, 0])],
         lambda a: a[np.array([1, 1]), np.array([0, 0])], [(3, 2)], id="getitem_pairs"),
    Case("getitem", lambda a: a[np.array([True, False, True])],
         lambda a: a[np.array([True, False, True])], [(3, 2)], id="getitem_bool_mask"),
    Case("concatenate", lambda a, b: mg.concatenate([a, b], axis=1),
         lambda a, b: np.concatenate([a, b], axis=1), [(2, 3), (2, 2)]),
    Case("concatenate", lambda a, b, c: mg.concatenate([a, b, c]),
         lambda a, b, c: np.concatenate([a, b, c]), [(1,), (3,), (2,)], id="concatenate_3"),
    Case("stack", lambda a, b: mg.stack([a, b], axis=-1),
         lambda a, b: np.stack([a, b], axis=-1), [(2, 3), (2, 3)]),
    Case("stack", lambda a, b: mg.stack([a, b]), lambda a, b: np.stack([a, b]), [(4,), (4,)],
         id="stack_axis0"),
    # matmul in every shape combination
    Case("matmul", lambda a, b: a @ b, np.matmul, [(3, 4), (4, 5)]),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(4,), (4, 5)], id="matmul_vec_mat"),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(3, 4), (4,)], id="matmul_mat_vec"),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(4,), (4,)], id="matmul_dot"),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (4, 2)], id="matmul_batched"),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(2, 1, 3, 4), (3, 4, 2)],
         id="matmul_batch_broadcast"),
    Case("matmul", lambda a, b: a.T @ b, lambda a, b: a.T @ b, [(4, 3), (4, 2)],
         id="matmul_transposed_view"),
    Case("matmul", lambda a, b: a @ b, np.matmul, [(1, 1), (1, 7)], id="matmul_one_row"),
    Case("linear", lambda x, w, b: mg.linear(x, w, b), lambda x, w, b: x @ w + b,
         [(5, 3), (3, 4), (4,)]),
    Case("linear", lambda x, w: mg.linear(x, w), lambda x, w: x @ w, [(2, 3), (3, 1)],
         id="linear_no_bias"),
    # activations (kernels)
    Case("relu", mg.relu, lambda x: np.maximum(x, 0), [(4, 5)]),
    Case("leaky_relu", mg.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), [(4, 5)]),
    Case("leaky_relu", lambda x: mg.leaky_relu(x, alpha=0.3),
         lambda x: np.where(x > 0, x, 0.3 * x), [(6,)], id="leaky_relu_alpha"),
    Case("elu", mg.elu, lambda x: np.where(x > 0, x, np.expm1(x)), [(4, 5)]),
    Case("elu", lambda x: mg.elu(x, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
         [(6,)], id="elu_alpha"),
    Case("sigmoid", mg.sigmoid, _sigmoid, [(4, 5)], low=-6, high=6),
    Case("tanh", mg.tanh, np.tanh, [(4, 5)], low=-3, high=3),
    Case("softplus", mg.softplus, lambda x: np.log1p(np.exp(x)), [(4, 5)], low=-5, high=5),
    Case("gelu", mg.gelu, lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), [(4, 5)], low=-4,
         high=4),
    Case("silu", mg.silu, lambda x: x * _sigmoid(x), [(4, 5)], low=-5, high=5),
    Case("step", mg.step, lambda x: (x >= 0).astype(x.dtype), [(4, 5)]),
    Case("selu", mg.selu, lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
         [(4, 5)], low=-4, high=4),
    Case("mish", mg.mish, lambda x: x * np.tanh(np.logaddexp(x, 0)), [(4, 5)], low=-5, high=5),
    Case("softmax", mg.softmax, lambda x: _softmax(x, -1), [(3, 5)]),
    Case("softmax", lambda x: mg.softmax(x, axis=0), lambda x: _softmax(x, 0), [(3, 2, 2)],
         id="softmax_axis0"),
    Case("log_softmax", mg.log_softmax, lambda x: np.log(_softmax(x, -1)), [(3, 5)]),
    Case("log_softmax", lambda x: mg.log_softmax(x, axis=1), lambda x: np.log(_softmax(x, 1)),
         [(2, 3, 2)], id="log_softmax_axis1"),
    # losses (fused kernels)
    Case("mse_loss", mg.mse_loss, lambda p, t: np.mean((p - t) ** 2), [(6, 2), (6, 2)]),
    Case("sigmoid_binary_cross_entropy", mg.sigmoid_binary_cross_entropy,
         lambda z, t: np.mean(-t * np.log(_sigmoid(z)) - (1 - t) * np.log(1 - _sigmoid(z))),
         [(5, 1), (5, 1)], low=-3, high=3),
    Case("softmax_cross_entropy",
         lambda z, t: mg.softmax_cross_entropy(z, mg.softmax(t)),
         lambda z, t: np.mean(-np.sum(_softmax(t, 1) * np.log(_softmax(z, 1)), axis=1)),
         [(4, 3), (4, 3)]),
    Case("sparse_softmax_cross_entropy",
         lambda z: mg.softmax_cross_entropy(z, np.array([0, 2, 1, 2]), reduction="sum"),
         lambda z: -np.sum(np.log(_softmax(z, 1))[np.arange(4), [0, 2, 1, 2]]),
         [(4, 3)]),
]


def _inputs(case: Case, dtype, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in case.shapes:
        x = rng.uniform(case.low, case.high, size=shape)
        if case.op in ("relu", "abs", "leaky_relu", "elu", "selu", "step", "max", "min", "maximum",
                       "minimum", "clip"):
            x = _away_from_zero(x)
        arrays.append(np.asarray(x, dtype=dtype))
    return arrays


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_matches_numpy(case: Case, dtype, backend):
    arrays = _inputs(case, dtype)
    with mg.use_backend(backend):
        out = case.fn(*[mg.tensor(a, dtype=dtype) for a in arrays])
    expected = np.asarray(case.ref(*[a.astype(np.float64) for a in arrays]))
    assert out.shape == expected.shape
    want_dtype = np.float32 if case.op == "cast" else dtype
    assert out.dtype == want_dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=lambda c: c.id)
def test_gradcheck_float64(case: Case, backend):
    arrays = _inputs(case, np.float64, seed=1)
    inputs = [mg.tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    with mg.use_backend(backend):
        assert mg.gradcheck(case.fn, inputs)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=lambda c: c.id)
def test_backends_agree_on_gradients(case: Case):
    arrays = _inputs(case, np.float32, seed=2)
    grads = {}
    for backend in ("cython", "numpy"):
        inputs = [mg.tensor(a, requires_grad=True) for a in arrays]
        with mg.use_backend(backend):
            out = case.fn(*inputs)
            out.backward(np.ones(out.shape, dtype=out.dtype))
        grads[backend] = [t.grad.numpy() for t in inputs]
    for c, n in zip(grads["cython"], grads["numpy"], strict=True):
        np.testing.assert_allclose(c, n, rtol=1e-5, atol=1e-6)


def test_every_registered_op_has_a_case():
    covered = {c.op for c in CASES}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"ops without a test case: {missing}"
    unknown = sorted(covered - set(REGISTRY))
    assert not unknown, f"cases naming ops that are not registered: {unknown}"


# --------------------------------------------------------------------------- kinks


KINKS = [
    ("relu at 0", mg.relu, [0.0, -1.0, 2.0]),
    ("abs at 0", mg.abs, [0.0, 1.5]),
    ("leaky_relu at 0", lambda x: mg.leaky_relu(x, 0.2), [0.0, 3.0]),
    ("elu at 0", lambda x: mg.elu(x, 0.5), [0.0, 1.0]),
    ("max at a tie", lambda x: x.max(), [2.0, 2.0, -1.0]),
    ("min at a tie along an axis", lambda x: x.reshape(2, 2).min(axis=1), [1.0, 1.0, 0.0, 3.0]),
    ("maximum at a tie", lambda x: mg.maximum(x, 1.0), [1.0, 0.0, 2.0]),
    ("clip at its bounds", lambda x: mg.clip(x, -1.0, 1.0), [-1.0, 1.0, 0.0]),
    ("relu within eps of 0", mg.relu, [3e-7, -4e-7]),
]


@pytest.mark.parametrize("name,fn,values", KINKS, ids=[k[0] for k in KINKS])
def test_gradcheck_accepts_subgradients_at_kinks(name, fn, values):
    x = mg.tensor(values, dtype="float64", requires_grad=True)
    assert mg.gradcheck(fn, [x])


# --------------------------------------------------------------------------- engine


def test_backward_through_a_deep_chain():
    x = mg.tensor([1.0], dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-9)


def test_gradients_accumulate_across_backward_calls():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_a_tensor_used_twice_gets_both_gradients():
    x = mg.tensor([2.0], requires_grad=True)
    y = x * x + x
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0])


class _BackwardInside(Function):
    """Passes its gradient on, after running another backward (through the tensor in
    _INSIDE) from inside its own."""

    name = "backward_inside"

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        (_INSIDE[0] * 3).sum().backward(retain_graph=True)
        return grad


_INSIDE: list = []


def test_a_backward_inside_a_backward_keeps_both_walks_gradients():
    # The outer walk reaches the op after h*5 gave h its gradient and before h's own
    # backward: the inner walk through h must neither take nor reset what the outer one
    # gathered there.
    w = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = w * 2
    _INSIDE[:] = [h]
    ((h * 5).sum() + _BackwardInside.apply(h).sum()).backward()
    # inner: 3 * 2; outer: (5 + 1) * 2
    np.testing.assert_array_equal(w.grad.numpy(), [18.0, 18.0])
    _INSIDE.clear()


def test_a_failed_backward_leaves_the_next_one_right():
    w = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = w * 2
    with pytest.raises(ValueError, match="returned 1 gradients"):
        ((h * 5).sum() + _OneGradForTwo.apply(h, w).sum()).backward()
    assert w.grad is None
    (h * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])


def test_second_backward_through_freed_graph_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.sigmoid(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (mg.tanh(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)


def test_saved_arrays_are_released_after_backward():
    x = mg.tensor(np.ones((4, 4)), requires_grad=True)
    h = mg.sigmoid(x)
    m = h * x
    y = m.sum()
    y.backward()
    for node in (h, m, y):
        ctx = node._ctx
        assert ctx.released
        assert ctx.saved is None, f"{type(ctx).__name__} kept {ctx.saved} after backward"
        # an op written in Python keeps what it saves in its instance attributes
        saved = set(getattr(ctx, "__dict__", {}))
        assert not saved, f"{type(ctx).__name__} kept {saved} after backward"


def test_an_op_written_in_python_has_its_attributes_released_after_backward():
    y = mg.tensor([1.0, 2.0], requires_grad=True)
    out = _ReturnsSaved.apply(y)
    assert vars(out._ctx)
    out.backward(np.ones(2, dtype=np.float32))
    assert out._ctx.released and not vars(out._ctx)


def test_backward_frees_the_intermediate_tensors():
    x = mg.tensor(np.ones((4, 4)), requires_grad=True)
    h = mg.sigmoid(x)
    alive = weakref.ref(h)
    y = (h * x).sum()
    del h
    y.backward()
    assert alive() is None, "the loss still holds the graph's intermediates after backward"
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_pow_zero_has_zero_gradient_at_zero():
    x = mg.tensor([0.0, 2.0], requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x = mg.tensor([0.0, 2.0], requires_grad=True)
    (x ** mg.tensor([0.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 12.0])


def test_non_scalar_backward_needs_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="one-element"):
        y.backward()
    y.backward(grad=np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_seed_of_wrong_shape_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2).backward(grad=np.ones(3))


def test_backward_without_requires_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_no_grad_as_context_and_decorator():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None

    @mg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert (x * 2).requires_grad


def test_no_grad_is_per_thread():
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def train():
        inside.wait()  # the main thread is under no_grad now
        x = mg.tensor([1.0], requires_grad=True)
        seen["enabled"], seen["recorded"] = mg.is_grad_enabled(), (x * 2).requires_grad
        outside.set()

    worker = threading.Thread(target=train)
    worker.start()
    with mg.no_grad():
        inside.set()
        outside.wait(10)
        assert not (mg.tensor([1.0], requires_grad=True) * 2).requires_grad
    worker.join()
    assert seen == {"enabled": True, "recorded": True}
    assert (mg.tensor([1.0], requires_grad=True) * 2).requires_grad


def test_detach_cuts_the_graph_and_shares_data():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (d * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_leaf_gradient_is_not_aliased_between_leaves():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 5
    assert b.grad.item() == 1.0


class _ReturnsSaved(Function):
    def forward(self, a):
        self.ones = np.ones_like(a)
        return a.copy()

    def backward(self, grad):
        return self.ones  # d(a)/d(a) * an upstream gradient of ones: the saved array itself


def test_leaf_gradient_never_aliases_the_seed_or_saved_arrays():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    seed = np.ones(2, dtype=np.float32)
    (x + 0.0).backward(seed)
    seed[0] = 7
    assert x.grad.tolist() == [1.0, 1.0]
    y = mg.tensor([1.0, 2.0], requires_grad=True)
    out = _ReturnsSaved.apply(y)
    out.backward(np.ones(2, dtype=np.float32), retain_graph=True)
    y.grad.data[0] = 9
    assert out._ctx.ones.tolist() == [1.0, 1.0]


def test_saved_array_passed_on_to_a_leaf_is_copied():
    # The engine looks at an op's saved arrays only for leaves: an op between (add) that
    # passes the saved array on to the leaf must still make the leaf copy it.
    y = mg.tensor([1.0, 2.0], requires_grad=True)
    out = _ReturnsSaved.apply(y + 0.0)
    out.backward(np.ones(2, dtype=np.float32), retain_graph=True)
    y.grad.data[0] = 9
    assert out._ctx.ones.tolist() == [1.0, 1.0]


class _OneGradForTwo(Function):
    name = "one_grad_for_two"

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return (grad,)


def test_backward_with_too_few_gradients_names_the_op():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"'one_grad_for_two'.backward returned 1 gradients "
                                         r"for 2 inputs"):
        _OneGradForTwo.apply(a, b).sum().backward()


_MADE: list = []


class _FreshGrad(Function):
    def forward(self, a):
        return a * 2

    def backward(self, grad):
        _MADE.append(grad * 2)
        return _MADE[-1]


def test_leaf_takes_a_fresh_gradient_without_copying():
    x = mg.tensor(np.ones(8), requires_grad=True)
    _FreshGrad.apply(x).backward(np.ones(8, dtype=np.float32))
    assert x.grad.data is _MADE[-1]


def test_repeated_integer_indices_accumulate():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_grad_dtype_follows_each_input():
    a = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = mg.tensor([3.0, 4.0], dtype="float64", requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_constants_keep_the_tensor_dtype():
    x = mg.tensor([1.0, 2.0])
    assert (x * 2.5).dtype == np.float32
    assert (x + np.array([1.0, 2.0])).dtype == np.float32
    assert (np.array([1.0, 2.0]) + x).dtype == np.float32
    x64 = mg.tensor([1.0], dtype=np.float64)
    assert (x64 + np.float32(1.0)).dtype == np.float64


def test_nan_and_inf_propagate():
    x = mg.tensor([np.nan, np.inf, -np.inf, 0.0])
    assert np.isnan(mg.relu(x).numpy()[0])
    assert mg.relu(x).numpy()[1] == np.inf
    assert np.isnan(mg.sigmoid(x).numpy()[0])
    np.testing.assert_array_equal(mg.sigmoid(x).numpy()[1:], [1.0, 0.0, 0.5])
    assert np.isnan(mg.tanh(x).numpy()[0])
    assert np.isnan((x * 2).numpy()[0]) and np.isnan(mg.exp(x).numpy()[0])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data,match",
    [("abc", "str"), ([1 + 2j], "complex"), ([object()], "Python objects"),
     ([[1.0], [1.0, 2.0]], "tensor")],
)
def test_bad_tensor_data_raises_type_error(data, match):
    with pytest.raises(TypeError, match=match):
        mg.tensor(data)


def test_bad_operands_raise_type_error():
    x = mg.tensor([1.0])
    with pytest.raises(TypeError, match="str"):
        x + "a"
    with pytest.raises(TypeError, match="complex"):
        x * np.array([1j])


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        mg.tensor([1, 2], requires_grad=True)
    labels = mg.tensor([1, 2])
    assert labels.dtype == np.int64


def test_activations_need_floats():
    with pytest.raises(TypeError, match="relu needs a float32 or float64 tensor, got int64"):
        mg.relu(mg.tensor([1, 2]))


def test_shape_mismatches_name_both_shapes():
    a, b = mg.tensor(np.ones((2, 3))), mg.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,5\)"):
        a + b
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 3\)"):
        mg.mse_loss(a, mg.tensor(np.ones((3, 3))))
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        mg.linear(a, mg.tensor(np.ones((3, 4))), mg.tensor(np.ones(5)))


def test_bad_labels_raise():
    z = mg.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="out of range"):
        mg.softmax_cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        mg.softmax_cross_entropy(z, np.array([0, 1, 2]))


def test_bad_dtype_and_backend_names():
    with pytest.raises(TypeError, match="complex64"):
        mg.tensor([1.0], dtype="complex64")
    with pytest.raises(ValueError, match="cython, numpy"):
        mg.set_backend("fortran")
