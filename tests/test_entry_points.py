"""Every entry point of every extension module refuses bad arguments (issue 13, item 7).

Each call below gives one entry point (the kernels of matmul, activations, losses and optim,
the trainer's Plan and its helpers, the modules' test hooks) one bad argument: a wrong type,
dtype, shape, size, layout, a read-only output, memory shared where it is forbidden, an
integer out of range. Each must raise ValueError or TypeError before any array is written:
the arrays given are compared before and after. The calls that used to crash the interpreter
or write past a buffer (an uninitialised Plan, a recording with a huge phase) are checked too,
the crashing ones in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import microgradnet
from microgradnet._kernels import activations, losses, matmul, optim, trainer

F32, F64 = np.float32, np.float64


def _a(*shape, dtype=F32, fill=0.5):
    return np.full(shape, fill, dtype)


def _readonly(a):
    a.flags.writeable = False
    return a


def _fortran(*shape):
    return np.asfortranarray(_a(*shape))


def _swapped(*shape):
    return _a(*shape).astype(">f4" if sys.byteorder == "little" else "<f4")


# --------------------------------------------------------------------------- kernels
# (id, call, expected error): the arrays in a call's closure are fresh for every run.

def _unary_cases(name, kernel):
    x = _a(4, 3)
    return [
        (f"{name}-x-list", lambda: kernel([[1.0, 2.0]]), TypeError),
        (f"{name}-x-int", lambda: kernel(np.ones((4, 3), np.int64)), TypeError),
        (f"{name}-x-byteswapped", lambda: kernel(_swapped(4, 3)), TypeError),
        (f"{name}-out-list", lambda: kernel(x, out=[0.0] * 12), TypeError),
        (f"{name}-out-dtype", lambda: kernel(x, out=_a(4, 3, dtype=F64)), TypeError),
        (f"{name}-out-shape", lambda: kernel(x, out=_a(3, 4)), ValueError),
        (f"{name}-out-size", lambda: kernel(x, out=_a(13)), ValueError),
        (f"{name}-out-fortran", lambda: kernel(x, out=_fortran(4, 3)), ValueError),
        (f"{name}-out-readonly", lambda: kernel(x, out=_readonly(_a(4, 3))), ValueError),
        (f"{name}-out-strided", lambda: kernel(x, out=_a(4, 6)[:, ::2]), ValueError),
    ]


def _binary_cases(name, kernel):
    dy, s = _a(4, 3), _a(4, 3)
    return [
        (f"{name}-dy-list", lambda: kernel([[1.0]], s[:1, :1]), TypeError),
        (f"{name}-saved-none", lambda: kernel(dy, None), TypeError),
        (f"{name}-mixed-dtypes", lambda: kernel(dy, s.astype(F64)), TypeError),
        (f"{name}-saved-int", lambda: kernel(dy, np.ones((4, 3), np.int32)), TypeError),
        (f"{name}-shapes", lambda: kernel(dy, _a(3, 4)), ValueError),
        (f"{name}-out-dtype", lambda: kernel(dy, s, out=_a(4, 3, dtype=F64)), TypeError),
        (f"{name}-out-shape", lambda: kernel(dy, s, out=_a(12)), ValueError),
        (f"{name}-out-readonly", lambda: kernel(dy, s, out=_readonly(_a(4, 3))), ValueError),
    ]


KERNEL_CASES = []
for _name in ("relu", "sigmoid", "tanh", "gelu", "silu", "softplus", "selu", "mish", "step"):
    KERNEL_CASES += _unary_cases(f"{_name}_forward", getattr(activations, f"{_name}_forward"))
    KERNEL_CASES += _binary_cases(f"{_name}_backward",
                                  getattr(activations, f"{_name}_backward"))
for _name in ("leaky_relu", "elu"):
    KERNEL_CASES += _unary_cases(f"{_name}_forward", getattr(activations, f"{_name}_forward"))
    KERNEL_CASES += _binary_cases(f"{_name}_backward",
                                  getattr(activations, f"{_name}_backward"))
    _k = getattr(activations, f"{_name}_forward")
    KERNEL_CASES.append((f"{_name}-alpha-str", lambda k=_k: k(_a(3), "a"), TypeError))
for _name in ("sigmoid_backward_from_x", "tanh_backward_from_x"):
    KERNEL_CASES += _binary_cases(_name, getattr(activations, _name))
for _name in ("softmax", "log_softmax"):
    _f = getattr(activations, f"{_name}_forward")
    _b = getattr(activations, f"{_name}_backward")
    KERNEL_CASES += _unary_cases(f"{_name}_forward", _f)
    KERNEL_CASES += _binary_cases(f"{_name}_backward", _b)
    KERNEL_CASES += [
        (f"{_name}-axis-range", lambda f=_f: f(_a(2, 3), axis=2), ValueError),
        (f"{_name}-axis-negative", lambda f=_f: f(_a(2, 3), axis=-3), ValueError),
        (f"{_name}-axis-float", lambda f=_f: f(_a(2, 3), axis=1.0), TypeError),
        (f"{_name}-axis-huge", lambda f=_f: f(_a(2, 3), axis=2**70), ValueError),
        (f"{_name}_backward-axis", lambda b=_b: b(_a(2, 3), _a(2, 3), axis=5), ValueError),
    ]
KERNEL_CASES += [
    ("_vmath-name", lambda: activations._vmath("cosh", _a(3)), ValueError),
    ("_vmath-erfc-f64", lambda: activations._vmath("erfc", _a(3, dtype=F64)), TypeError),
    ("_vmath-x", lambda: activations._vmath("exp", [1.0]), TypeError),
]

_Z, _T = _a(4, 3), _a(4, 3)
_LABELS = np.array([0, 1, 2, 0])
KERNEL_CASES += [
    ("xent_fwd-1d", lambda: losses.softmax_cross_entropy_forward(_a(3), _a(3)), ValueError),
    ("xent_fwd-target", lambda: losses.softmax_cross_entropy_forward(_Z, _a(4, 2)), ValueError),
    ("xent_fwd-dtypes", lambda: losses.softmax_cross_entropy_forward(_Z, _T.astype(F64)),
     TypeError),
    ("xent_fwd-probs_out", lambda: losses.softmax_cross_entropy_forward(
        _Z, _T, probs_out=_readonly(_a(4, 3))), ValueError),
    ("xent_bwd-dloss", lambda: losses.softmax_cross_entropy_backward(_a(3), _Z, _T),
     ValueError),
    ("xent_bwd-dloss-2d", lambda: losses.softmax_cross_entropy_backward(_a(4, 1), _Z, _T),
     ValueError),
    ("xent_bwd-out", lambda: losses.softmax_cross_entropy_backward(_a(4), _Z, _T,
                                                                   out=_a(4, 3, dtype=F64)),
     TypeError),
    ("sparse_fwd-labels-float", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, _LABELS.astype(F32)), TypeError),
    ("sparse_fwd-labels-range", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, np.array([0, 1, 3, 0])), ValueError),
    ("sparse_fwd-labels-negative", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, np.array([0, -1, 2, 0], np.int8)), ValueError),
    ("sparse_fwd-labels-uint64", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, np.array([0, 2**63, 2, 0], np.uint64)), ValueError),
    ("sparse_fwd-labels-shape", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, np.array([0, 1, 2])), ValueError),
    ("sparse_fwd-labels-list", lambda: losses.sparse_softmax_cross_entropy_forward(
        _Z, [0, 1, 2, 0]), TypeError),
    ("sparse_bwd-labels", lambda: losses.sparse_softmax_cross_entropy_backward(
        _a(4), _Z, np.array([0, 1, 5, 0])), ValueError),
    ("sparse_bwd-dloss", lambda: losses.sparse_softmax_cross_entropy_backward(
        _a(5), _Z, _LABELS), ValueError),
    ("bce_fwd-shapes", lambda: losses.sigmoid_binary_cross_entropy_forward(_Z, _a(3, 4)),
     ValueError),
    ("bce_fwd-out", lambda: losses.sigmoid_binary_cross_entropy_forward(_Z, _T, out=_a(4)),
     ValueError),
    ("bce_bwd-dloss", lambda: losses.sigmoid_binary_cross_entropy_backward(_a(4), _Z, _T),
     ValueError),
    ("bce_bwd-dtypes", lambda: losses.sigmoid_binary_cross_entropy_backward(
        _a(4, 3, dtype=F64), _Z, _T), TypeError),
    ("mse_fwd-shapes", lambda: losses.mse_forward(_a(3), _a(4)), ValueError),
    ("mse_fwd-list", lambda: losses.mse_forward([1.0], _a(1)), TypeError),
    ("mse_bwd-dloss-array", lambda: losses.mse_backward(_a(3), _a(3), _a(3)), TypeError),
    ("mse_bwd-out", lambda: losses.mse_backward(1.0, _a(3), _a(3), out=_readonly(_a(3))),
     ValueError),
    ("gemm-1d", lambda: matmul.gemm(_a(3), _a(3)), ValueError),
    ("gemm-inner", lambda: matmul.gemm(_a(2, 3), _a(2, 3)), ValueError),
    ("gemm-dtypes", lambda: matmul.gemm(_a(2, 3), _a(3, 2, dtype=F64)), TypeError),
    ("gemm-int", lambda: matmul.gemm(np.ones((2, 3), int), _a(3, 2)), TypeError),
    ("gemm-beta-no-out", lambda: matmul.gemm(_a(2, 3), _a(3, 2), beta=1.0), ValueError),
    ("gemm-out-shape", lambda: matmul.gemm(_a(2, 3), _a(3, 2), out=_a(3, 3)), ValueError),
    ("gemm-out-fortran", lambda: matmul.gemm(_a(2, 3), _a(3, 2), out=_fortran(2, 2)),
     ValueError),
    ("gemm-alpha-str", lambda: matmul.gemm(_a(2, 3), _a(3, 2), alpha="2"), TypeError),
    ("gemm-big", lambda: matmul.gemm(
        np.lib.stride_tricks.as_strided(_a(1), (1, 2**31), (0, 0)),
        np.lib.stride_tricks.as_strided(_a(1), (2**31, 1), (0, 0))), ValueError),
    ("bias_add-shapes", lambda: matmul.bias_add(_a(4, 3), _a(4)), ValueError),
    ("bias_add-1d", lambda: matmul.bias_add(_a(3), _a(3)), ValueError),
    ("bias_add-out", lambda: matmul.bias_add(_a(4, 3), _a(3), out=_readonly(_a(4, 3))),
     ValueError),
    ("bias_grad-1d", lambda: matmul.bias_grad(_a(3)), ValueError),
    ("bias_grad-out", lambda: matmul.bias_grad(_a(4, 3), out=_a(4)), ValueError),
    ("sum_squares-list", lambda: optim.sum_squares([1.0]), TypeError),
]


def _twice(call):
    """call(a) with one fresh array a, which the call passes as two of its arguments."""
    return call(_a(3))


def _overlapping(call, states):
    """An update whose first state array overlaps its parameter."""
    b = _a(8)
    return call(param=b[:5], state=[b[3:]] + [_a(5)] * (states - 1))


def _opt_cases():
    p = _a(5)
    cases = []
    for name, states, hyper in (
            ("sgd_update", 0, (0.1,)), ("sgd_momentum_update", 1, (0.1, 0.9)),
            ("adam_update", 2, (0.01, 0.9, 0.999, 1e-7, 1)),
            ("rmsprop_update", 1, (0.01, 0.9, 1e-7)), ("adagrad_update", 1, (0.01, 1e-7))):
        k = getattr(optim, name)

        def call(param=None, grad=None, state=None, hyper=hyper, k=k, states=states):
            param = _a(5) if param is None else param
            st = [_a(5, fill=1.0) for _ in range(states)] if state is None else state
            return k(param, _a(5) if grad is None else grad, *st, *hyper)

        cases += [
            (f"{name}-param-readonly", lambda c=call: c(param=_readonly(_a(5))), ValueError),
            (f"{name}-param-strided", lambda c=call: c(param=_a(10)[::2]), ValueError),
            (f"{name}-param-int", lambda c=call: c(param=np.ones(5, int)), TypeError),
            (f"{name}-param-list", lambda c=call: c(param=[0.5] * 5), TypeError),
            (f"{name}-grad-shape", lambda c=call: c(grad=_a(4)), ValueError),
            (f"{name}-grad-dtype", lambda c=call: c(grad=_a(5, dtype=F64)), TypeError),
        ]
        if states:
            cases += [
                (f"{name}-state-shape", lambda c=call, n=states: c(
                    state=[_a(4)] + [_a(5)] * (n - 1)), ValueError),
                (f"{name}-state-dtype", lambda c=call, n=states: c(
                    state=[_a(5, dtype=F64)] + [_a(5)] * (n - 1)), TypeError),
                (f"{name}-state-readonly", lambda c=call, n=states: c(
                    state=[_readonly(_a(5))] + [_a(5)] * (n - 1)), ValueError),
                (f"{name}-state-is-param", lambda c=call, n=states: c(
                    param=p, state=[p] + [_a(5)] * (n - 1)), ValueError),
                (f"{name}-state-overlaps-param", lambda c=call, n=states: _overlapping(c, n),
                 ValueError),
            ]
    cases += [
        ("adam-step-0", lambda: optim.adam_update(_a(3), _a(3), _a(3), _a(3), 0.1, 0.9, 0.99,
                                                  1e-7, 0), ValueError),
        ("adam-m-is-v", lambda: _twice(lambda m: optim.adam_update(
            _a(3), _a(3), m, m, 0.1, 0.9, 0.99, 1e-7, 1)), ValueError),
        ("adam-vhat-is-m", lambda: _twice(lambda m: optim.adam_update(
            _a(3), _a(3), m, _a(3), 0.1, 0.9, 0.99, 1e-7, 1, vhat=m)), ValueError),
        ("rmsprop-momentum-no-buffer", lambda: optim.rmsprop_update(
            _a(3), _a(3), _a(3), 0.1, 0.9, 1e-7, momentum=0.5), ValueError),
        ("rmsprop-average-is-velocity", lambda: _twice(lambda v: optim.rmsprop_update(
            _a(3), _a(3), v, 0.1, 0.9, 1e-7, average_grad=v)), ValueError),
    ]
    return cases


KERNEL_CASES += _opt_cases()
KERNEL_CASES += [
    (f"{m.__name__.rsplit('.', 1)[1]}-{hook}-{arg!r}", lambda m=m, h=hook, a=arg: getattr(m, h)(a),
     TypeError)
    for m in (activations, losses, matmul) for hook, arg in (
        ("_simd_level", "2"), ("_set_num_threads", "2"), ("_set_threshold", "big"),
        ("_threads_used", 1.5))
] + [("optim-_simd_level-str", lambda: optim._simd_level("x"), TypeError),
     ("trainer-_simd_level-str", lambda: trainer._simd_level("x"), TypeError),
     ("trainer-_set_num_threads-str", lambda: trainer._set_num_threads("x"), TypeError)]


@pytest.mark.parametrize("call,error", [(c, e) for _, c, e in KERNEL_CASES],
                         ids=[i for i, _, _ in KERNEL_CASES])
def test_kernels_and_hooks_refuse_bad_arguments(call, error):
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------- trainer


def _plan(dtype=F32, loss="mse", dropout=False, batch=4):
    top = (3, 1, "linear", 0.0, True)
    if loss == "sparse_softmax_xent":
        top = (3, 3, "linear", 0.0, True)
    first = (2, 3, "relu", 0.0, True, 0.5) if dropout else (2, 3, "relu", 0.0, True)
    return trainer.Plan(dtype, [first, top], loss, batch)


def _run_args(dtype=F32, n=10, batch=4, loss="mse"):
    """A plan and the keyword arguments of a good run of one epoch."""
    plan = _plan(dtype, loss, batch=batch)
    rng = np.random.default_rng(0)
    out = 3 if loss == "sparse_softmax_xent" else 1
    params = [rng.normal(size=s).astype(dtype) for s in ((2, 3), (3,), (3, out), (out,))]
    x = rng.normal(size=(n, 2)).astype(dtype)
    y = rng.normal(size=(n, 1)).astype(dtype)
    per_epoch = -(-n // batch)
    args = dict(x=x, y=y, labels=None, orders=None, first=0, last=per_epoch,
                per_epoch=per_epoch, params=params, states=[()] * 4, optimizer="sgd",
                hyper={"lr": 0.1}, iteration=0, losses=np.empty(per_epoch))
    if loss == "sparse_softmax_xent":
        args.update(y=None, labels=np.arange(n, dtype=np.int64) % 3)
    return plan, args


def _shared(n_extra, dtype=F32):
    """Two views that share memory: a (2, 3) parameter and what follows it."""
    buf = np.zeros(6 + n_extra, dtype)
    return buf[:6].reshape(2, 3), buf[3:]


def _adam_states():
    return [tuple(np.zeros(s, F32) for _ in range(2)) for s in ((2, 3), (3,), (3, 1), (1,))]


def _rows():
    return np.zeros((2, 2), F32)


PLAN_CASES = [
    # data
    ("x-list", dict(x=[[0.0, 0.0]] * 10), TypeError),
    ("x-int", dict(x=np.zeros((10, 2), np.int64)), TypeError),
    ("x-dtype", dict(x=np.zeros((10, 2), F64)), TypeError),
    ("x-shape", dict(x=np.zeros((10, 3), F32)), ValueError),
    ("x-1d", dict(x=np.zeros(10, F32)), ValueError),
    ("x-fortran", dict(x=np.asfortranarray(np.zeros((10, 2), F32))), ValueError),
    ("y-shape", dict(y=np.zeros((10, 2), F32)), ValueError),
    ("y-rows", dict(y=np.zeros((9, 1), F32)), ValueError),
    ("y-none", dict(y=None), TypeError),
    ("no-samples", dict(x=np.zeros((0, 2), F32), y=np.zeros((0, 1), F32), per_epoch=0),
     ValueError),
    # steps
    ("first-after-last", dict(first=3, last=2, losses=np.empty(0)), ValueError),
    ("first-negative", dict(first=-1, losses=np.empty(4)), ValueError),
    ("per_epoch", dict(per_epoch=2), ValueError),
    ("per_epoch-str", dict(per_epoch="3"), TypeError),
    ("losses-size", dict(losses=np.empty(2)), ValueError),
    ("losses-f32", dict(losses=np.empty(3, F32)), ValueError),
    ("losses-list", dict(losses=[0.0] * 3), TypeError),
    ("iteration-negative", dict(iteration=-1), ValueError),
    ("iteration-str", dict(iteration="0"), TypeError),
    # orders and shuffling
    ("orders-int32", dict(orders=np.zeros((1, 10), np.int32)), TypeError),
    ("orders-range", dict(orders=np.full((1, 10), 10, np.int64)), ValueError),
    ("orders-negative", dict(orders=np.full((1, 10), -1, np.int64)), ValueError),
    ("orders-epochs", dict(orders=np.zeros((0, 10), np.int64)), ValueError),
    ("orders-shape", dict(orders=np.zeros((1, 9), np.int64)), TypeError),
    ("shuffle_with-seed", dict(shuffle_with=3), TypeError),
    ("shuffle_with-randomstate", dict(shuffle_with=np.random.RandomState(0)), TypeError),
    ("shuffle_with-and-orders", dict(shuffle_with=np.random.default_rng(0),
                                     orders=np.zeros((1, 10), np.int64)), ValueError),
    # the optimizer
    ("optimizer-unknown", dict(optimizer="lbfgs"), ValueError),
    ("optimizer-no-state", dict(optimizer="adam"), ValueError),
    ("hyper-no-lr", dict(hyper={}), ValueError),
    ("hyper-unknown", dict(hyper={"lr": 0.1, "momentum": 0.9}), ValueError),
    ("hyper-lr-str", dict(hyper={"lr": "0.1"}), TypeError),
    ("states-list", dict(states=[[]] * 4), TypeError),
    ("states-count", dict(states=[()] * 3), ValueError),
    ("state-shape", dict(optimizer="adagrad", hyper={"lr": 0.1, "epsilon": 1e-7},
                         states=[(np.zeros((3, 2), F32),), (np.zeros(3, F32),),
                                 (np.zeros((3, 1), F32),), (np.zeros(1, F32),)]), ValueError),
    # parameters
    ("params-count", dict(params=[np.zeros((2, 3), F32)]), ValueError),
    ("param-shape", dict(params=[np.zeros((3, 2), F32), np.zeros(3, F32),
                                 np.zeros((3, 1), F32), np.zeros(1, F32)]), ValueError),
    ("param-dtype", dict(params=[np.zeros((2, 3), F64), np.zeros(3, F32),
                                 np.zeros((3, 1), F32), np.zeros(1, F32)]), TypeError),
    ("param-readonly", dict(params=[_readonly(np.zeros((2, 3), F32)), np.zeros(3, F32),
                                    np.zeros((3, 1), F32), np.zeros(1, F32)]), ValueError),
    ("param-missing-bias", dict(params=[np.zeros((2, 3), F32), None,
                                        np.zeros((3, 1), F32), np.zeros(1, F32)]), ValueError),
    # memory shared where the run writes
    ("param-overlaps-param", "overlap-params", ValueError),
    ("state-is-param", "state-is-param", ValueError),
    ("state-is-state", "state-is-state", ValueError),
    ("x-overlaps-param", "x-overlaps-param", ValueError),
    ("param-is-gradient-buffer", "gradient-buffer", ValueError),
    ("losses-overlap-param", "losses-overlap-param", ValueError),
    ("record-out-overlaps-param", "record-overlaps-param", ValueError),
    # recording
    ("record-list", dict(record=[_rows(), 1, 0, np.zeros((3, 2, 1), F32)]), TypeError),
    ("record-items", dict(record=(_rows(), 1, 0)), ValueError),
    ("record-every-0", dict(record=(_rows(), 0, 0, np.zeros((3, 2, 1), F32))), ValueError),
    ("record-every-huge", dict(record=(_rows(), 2**64, 0, np.zeros((0, 2, 1), F32))),
     ValueError),
    ("record-every-float", dict(record=(_rows(), 1.0, 0, np.zeros((3, 2, 1), F32))),
     ValueError),
    ("record-phase-negative", dict(record=(_rows(), 1, -1, np.zeros((3, 2, 1), F32))),
     ValueError),
    ("record-phase-huge", dict(record=(_rows(), 2, 2**63, np.zeros((1, 2, 1), F32))),
     ValueError),
    ("record-rows", dict(record=(np.zeros((2, 3), F32), 1, 0, np.zeros((3, 2, 1), F32))),
     ValueError),
    ("record-rows-empty", dict(record=(np.zeros((0, 2), F32), 1, 0, np.zeros((3, 0, 1), F32))),
     ValueError),
    ("record-out-small", dict(record=(_rows(), 1, 0, np.zeros((2, 2, 1), F32))), ValueError),
    ("record-out-large", dict(record=(_rows(), 1, 0, np.zeros((4, 2, 1), F32))), ValueError),
    ("record-out-huge-phase", dict(record=(_rows(), 6, 2**63 - 1, np.zeros((2, 2, 1), F32)),
                                   last=9, losses=np.empty(9), per_epoch=3,
                                   orders=np.zeros((3, 10), np.int64)), ValueError),
    ("record_weights-items", dict(record_weights=(1, 0)), ValueError),
    ("record_weights-every", dict(record_weights=(0, 0, [None] * 4)), ValueError),
    ("record_weights-every-huge", dict(record_weights=(2**63, 0, [None] * 4)), ValueError),
    ("record_weights-outs", dict(record_weights=(1, 0, [None] * 4)), TypeError),
    ("record_weights-outs-count", dict(record_weights=(1, 0, [None] * 3)), ValueError),
    ("record_weights-bias", dict(record_weights=(1, 0, [
        np.zeros((3, 2, 3), F32), None, np.zeros((3, 3, 1), F32), np.zeros((3, 1), F32)])),
     TypeError),
    ("record_weights-no-bias", "weights-no-bias", ValueError),
    # schedules and dropout
    ("lrs-size", dict(lrs=np.full(2, 0.1)), TypeError),
    ("lrs-negative", dict(lrs=np.full(3, -0.1)), ValueError),
    ("lrs-nan", dict(lrs=np.full(3, np.nan)), ValueError),
    ("dropout_rngs-count", dict(dropout_rngs=[None]), ValueError),
    ("dropout_rngs-without-dropout", dict(dropout_rngs=[np.random.default_rng(0), None]),
     ValueError),
]


def _special(kind, plan, args):
    """The arguments of the memory-sharing cases."""
    params = args["params"]
    if kind == "overlap-params":
        w, b = _shared(0)
        args["params"] = [w, b, params[2], params[3]]
    elif kind == "state-is-param":
        states = _adam_states()
        states[0] = (params[0], states[0][1])
        args.update(optimizer="adam", states=states,
                    hyper={"lr": 0.1, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7})
    elif kind == "state-is-state":
        states = _adam_states()
        states[1] = (states[1][0], states[1][0])
        args.update(optimizer="adam", states=states,
                    hyper={"lr": 0.1, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7})
    elif kind == "x-overlaps-param":
        buf = np.zeros(24, F32)
        args["x"] = buf[:20].reshape(10, 2)
        args["params"] = [buf[18:].reshape(2, 3), *params[1:]]
    elif kind == "weights-no-bias":  # a layer without a bias records None for it
        plan = trainer.Plan(F32, [(2, 3, "relu", 0.0, False), (3, 1, "linear", 0.0, True)],
                            "mse", 4)
        args["params"] = [params[0], None, *params[2:]]
        args["record_weights"] = (1, 0, [np.zeros((3, 2, 3), F32), np.zeros((3, 3), F32),
                                         np.zeros((3, 3, 1), F32), np.zeros((3, 1), F32)])
    elif kind == "gradient-buffer":
        args["params"] = [plan.gradients()[0], *params[1:]]
    elif kind == "losses-overlap-param":
        plan, args = _run_args(F64)
        buf = np.zeros(8)
        args["losses"] = buf[:3]
        args["params"] = [buf[2:].reshape(2, 3), *args["params"][1:]]
    elif kind == "record-overlaps-param":
        buf = np.zeros(11, F32)
        args["record"] = (_rows(), 1, 0, buf[:6].reshape(3, 2, 1))
        args["params"] = [buf[5:].reshape(2, 3), *params[1:]]
    return plan, args


@pytest.mark.parametrize("change,error", [(c, e) for _, c, e in PLAN_CASES],
                         ids=[i for i, _, _ in PLAN_CASES])
def test_plan_run_refuses_bad_arguments_before_it_writes(change, error):
    plan, args = _run_args()
    if isinstance(change, str):
        plan, args = _special(change, plan, args)
    else:
        args.update(change)
    arrays = [a for a in (*args["params"], *(s for st in args["states"] for s in st),
                          *plan.gradients()) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(error):
        plan.run(**args)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_good_run_of_these_cases_trains():
    """The base of PLAN_CASES is a good run (so each case fails for its one change)."""
    plan, args = _run_args()
    w = args["params"][0].copy()
    plan.run(**args, record=(_rows(), 1, 0, np.zeros((3, 2, 1), F32)),
             record_weights=(1, 0, [np.zeros((3, *p.shape), F32) for p in args["params"]]))
    assert not np.array_equal(w, args["params"][0])
    plan, args = _run_args(loss="sparse_softmax_xent")
    plan.run(**args)


@pytest.mark.parametrize("bad,error", [
    (dict(dtype=np.int32), TypeError),
    (dict(layers=[]), ValueError),
    (dict(layers=[(2, 3, "relu", 0.0)]), ValueError),
    (dict(layers=[(2, 0, "relu", 0.0, True)]), ValueError),
    (dict(layers=[(-2, 3, "relu", 0.0, True)]), ValueError),
    (dict(layers=[(2.5, 3, "relu", 0.0, True)]), TypeError),
    (dict(layers=[(2, 3, "cosh", 0.0, True)]), ValueError),
    (dict(layers=[(2, 3, "relu", "a", True)]), TypeError),
    (dict(layers=[(2, 3, "relu", 0.0, True, 1.5)]), ValueError),
    (dict(layers=[(2, 3, "relu", 0.0, True), (4, 1, "relu", 0.0, True)]), ValueError),
    (dict(layers=((2, 3, "relu", 0.0, True),)), TypeError),
    (dict(loss="hinge"), ValueError),
    (dict(batch=0), ValueError),
    (dict(batch="4"), TypeError),
])
def test_plan_construction_refuses_bad_arguments(bad, error):
    args = dict(dtype=F32, layers=[(2, 3, "relu", 0.0, True)], loss="mse", batch=4)
    args.update(bad)
    with pytest.raises(error):
        trainer.Plan(args["dtype"], args["layers"], args["loss"], args["batch"])


def test_plan_helpers_refuse_bad_arguments():
    plan = _plan()
    with pytest.raises(ValueError):
        plan.output(5)
    with pytest.raises(ValueError):
        plan.output(-1)
    with pytest.raises(TypeError):
        trainer.permutation(3, 4)
    with pytest.raises(TypeError):
        trainer.permutation(np.random.RandomState(0), 4)
    with pytest.raises(ValueError):
        trainer.permutation(np.random.default_rng(0), -1)
    with pytest.raises(ValueError):
        trainer._ftz_leave(1 << 16)
    with pytest.raises(TypeError):
        trainer._ftz_leave("0")


# --------------------------------------------------------------------------- recording


@pytest.mark.parametrize("weights", [False, True], ids=["outputs", "weights"])
@pytest.mark.parametrize("every,phase,steps", [
    (6, 2**63 - 1, 9), (6, 2**63 - 1, 12), (7, 2**63 - 2, 9), (2**63 - 1, 2**63 - 2, 3),
    (3, 2**62 + 1, 10), (4, 5, 9), (1, 0, 7)])
def test_a_recording_writes_exactly_the_snapshots_it_sized(weights, every, phase, steps):
    """The snapshots of a run counted by one rule at the check and in the loop: with a huge
    phase the loop's (phase + step) % every wrapped around and wrote past `out` (issue 13,
    item 7); a phase counts as phase % every."""
    plan, args = _run_args()
    orders = np.tile(np.arange(10), (4, 1)).astype(np.int64)
    args.update(orders=orders, last=steps, losses=np.empty(steps))
    first = every - phase % every
    want = 0 if first > steps else 1 + (steps - first) // every
    guard = 4  # snapshots' room past the end, which must stay untouched
    if weights:
        bufs = [np.full((want + guard, *p.shape), 7.0, F32) for p in args["params"]]
        args["record_weights"] = (every, phase, [b[:want] for b in bufs])
    else:
        bufs = [np.full((want + guard, 2, 1), 7.0, F32)]
        args["record"] = (_rows(), every, phase, bufs[0][:want])
    got = plan.run(**args)
    if not weights:
        assert got == want
    for b in bufs:
        assert (b[want:] == 7.0).all(), "written past the snapshots the run was given room for"
        if want:
            assert (b[want - 1] != 7.0).any(), "the last snapshot was not written"
    # the same snapshots as with the phase reduced
    plan2, args2 = _run_args()
    args2.update(orders=orders, last=steps, losses=np.empty(steps))
    if weights:
        bufs2 = [np.zeros((want, *p.shape), F32) for p in args2["params"]]
        args2["record_weights"] = (every, phase % every, bufs2)
    else:
        bufs2 = [np.zeros((want, 2, 1), F32)]
        args2["record"] = (_rows(), every, phase % every, bufs2[0])
    plan2.run(**args2)
    for b, b2 in zip(bufs, bufs2, strict=True):
        np.testing.assert_array_equal(b[:want], b2)


_CRASHERS = """
import numpy as np
from microgradnet._kernels import trainer

def attempt(name, call):
    try:
        call()
    except (RuntimeError, ValueError, TypeError) as e:
        print(name, type(e).__name__, flush=True)
    else:
        print(name, "returned", flush=True)

x = np.zeros((8, 2), np.float32)
y = np.zeros((8, 1), np.float32)
args = (x, y, None, None, 0, 2, 2, [], [], "sgd", {"lr": 0.1}, 0, np.empty(2))
attempt("new", lambda: trainer.Plan.__new__(trainer.Plan).run(*args))
attempt("new-output", lambda: trainer.Plan.__new__(trainer.Plan).output(1))
attempt("new-gradients", lambda: trainer.Plan.__new__(trainer.Plan).gradients())
half = trainer.Plan.__new__(trainer.Plan)
try:  # the second layer is bad: __init__ raises half way
    half.__init__(np.float32, [(2, 3, "relu", 0.0, True), (4, 1, "cosh", 0.0, True)], "mse", 4)
except ValueError:
    pass
attempt("half", lambda: half.run(*args))
attempt("ftz", lambda: trainer._ftz_leave(0xFFFFFFFF))
"""


def test_calls_that_crashed_the_interpreter_raise():
    """An uninitialised (or half-initialised) Plan ran on NULL descriptors; _ftz_leave set
    MXCSR's reserved bits (a general-protection fault). In a fresh interpreter: on the code
    before the fix these killed it."""
    # the package under test, wherever it lives (the worktree, or the installed copy in CI)
    where = os.path.dirname(os.path.dirname(microgradnet.__file__))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(_CRASHERS)], cwd=where,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines == {"new": "RuntimeError", "new-output": "RuntimeError",
                     "new-gradients": "RuntimeError", "half": "RuntimeError",
                     "ftz": "ValueError"}
