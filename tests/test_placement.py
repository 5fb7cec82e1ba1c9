"""Every kernel gives the same bits wherever its arrays are in memory (issue 13, item 1).

The same values go to each eager kernel (activations forward and backward, the fused losses,
the optimizer updates, GEMM and the bias rows) in several placements: each array alone in a
buffer of its own, 64-byte aligned (the ordinary case, the reference); all packed one after
another inside one buffer, adjacent or a few elements apart, from odd offsets; and in place
where the contract allows it (`out` is one of the inputs; an optimizer's `grad` is its `param`).
Every placement must give the reference's bits, for float32 and float64, sizes 0 to 70, at
every SIMD level the CPU runs.

Why it can fail: gcc versions a loop on whether its output lies within a vector's width of an
input and runs a scalar copy where it does, and the FMA variants' scalar code contracts other
products than their vector code (csrc/vmath.h, VM_IVDEP): numpy places small arrays a few
elements apart, so eager training depended on where malloc put its arrays.

Last: the same seeded eager fit in fresh processes, each with another heap layout, gives the
same weights.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import microgradnet
from microgradnet._kernels import activations, elementwise, losses, matmul, optim
from microgradnet.activation_table import ACTIVATIONS

MODULES = (activations, losses, matmul, optim, elementwise)
DTYPES = (np.float32, np.float64)
SIZES = range(71)
# 2-D shapes of at most 70 elements (rows of a batch by units, or by classes)
SHAPES = [(0, 3), (3, 0), (1, 1), (1, 7), (2, 9), (3, 16), (4, 17), (5, 13), (7, 10), (10, 7),
          (16, 4), (35, 2), (70, 1), (1, 70)]




# --------------------------------------------------------------------------- cases
# A case: the arrays of one call (values; an output starts as zeros) and the call itself,
# which returns what to compare. `aliases` lists the pairs (i, j) the contract lets share
# memory: array j given as array i itself (j then holds i's values).


@dataclass
class Call:
    arrays: list[np.ndarray]
    run: Callable[[list[np.ndarray]], tuple]
    aliases: tuple[tuple[int, int], ...] = ()


def _values(shape, dtype, rng, positive=False):
    a = rng.standard_normal(shape) * 3
    if a.size > 3:
        a.flat[1] = 0.0
        a.flat[2] = -np.inf if not positive else 1e-30
    return np.asarray(np.abs(a) + 0.5 if positive else a, dtype)


def _zeros(shape, dtype):
    return np.zeros(shape, dtype)


def _activation_calls(spec):
    """name_forward (x, out) and name_backward (dy, saved, out), alpha passed if it has one."""
    fwd = getattr(activations, f"{spec.name}_forward")
    bwd = getattr(activations, f"{spec.name}_backward")
    kw = {} if spec.alpha is None else {"alpha": spec.alpha * 1.5}

    def forward(n, dtype, rng):
        return Call([_values(n, dtype, rng), _zeros(n, dtype)],
                    lambda a: (fwd(a[0], out=a[1], **kw),), ((0, 1),))

    def backward(n, dtype, rng):
        saved = _values(n, dtype, rng)
        if spec.saves == "y":  # an output of the forward, as training saves it
            saved = fwd(saved, **kw)
        return Call([_values(n, dtype, rng), saved, _zeros(n, dtype)],
                    lambda a: (bwd(a[0], a[1], out=a[2], **kw),), ((0, 2), (1, 2)))

    return {f"{spec.name}_forward": forward, f"{spec.name}_backward": backward}


def _binary(kernel):
    def make(n, dtype, rng):
        return Call([_values(n, dtype, rng), _values(n, dtype, rng), _zeros(n, dtype)],
                    lambda a: (kernel(a[0], a[1], out=a[2]),), ((0, 2), (1, 2)))
    return make


def _bce_forward(n, dtype, rng):
    t = np.asarray(rng.random(n), dtype)
    return Call([_values(n, dtype, rng), t, _zeros(n, dtype)],
                lambda a: (losses.sigmoid_binary_cross_entropy_forward(a[0], a[1], out=a[2]),),
                ((0, 2), (1, 2)))


def _bce_backward(n, dtype, rng):
    t = np.asarray(rng.random(n), dtype)
    return Call([_values(n, dtype, rng), _values(n, dtype, rng), t, _zeros(n, dtype)],
                lambda a: (losses.sigmoid_binary_cross_entropy_backward(a[0], a[1], a[2],
                                                                        out=a[3]),),
                ((0, 3), (1, 3), (2, 3)))


def _mse(n, dtype, rng):
    def run(a):
        return (losses.mse_forward(a[0], a[1]),
                losses.mse_backward(0.5, a[0], a[1], out=a[2]))
    return Call([_values(n, dtype, rng), _values(n, dtype, rng), _zeros(n, dtype)], run,
                ((0, 2), (1, 2)))


def _negative(n, dtype, rng):
    return Call([_values(n, dtype, rng), _zeros(n, dtype)],
                lambda a: (elementwise.negative(a[0], out=a[1]),), ((0, 1),))


def _sum_all(n, dtype, rng):
    return Call([_values(n, dtype, rng)], lambda a: (elementwise.sum_all(a[0]),))


def _sum_squares(n, dtype, rng):
    return Call([_values(n, dtype, rng)], lambda a: (optim.sum_squares(a[0]),))


def _update(name, states, *hyper, **kw):
    """An optimizer update: param, grad, its state arrays (written in place), returned all."""
    kernel = getattr(optim, name)
    extra = [k for k, v in kw.items() if v == "@"]

    def make(n, dtype, rng):
        arrays = [_values(n, dtype, rng), _values(n, dtype, rng)]
        arrays += [_values(n, dtype, rng, positive=True) for _ in range(states + len(extra))]

        def run(a):
            named = dict(zip(extra, a[2 + states:], strict=True))
            kernel(a[0], a[1], *a[2:2 + states], *hyper,
                   **{**{k: v for k, v in kw.items() if v != "@"}, **named})
            return tuple(a[0:1] + a[2:])

        return Call(arrays, run, ((0, 1),))  # grad may be param itself
    return make


def _along(kernel, backward, axis):
    def make(shape, dtype, rng):
        if backward:
            y = activations.softmax_forward(_values(shape, dtype, rng), axis=axis)
            return Call([_values(shape, dtype, rng), y, _zeros(shape, dtype)],
                        lambda a: (kernel(a[0], a[1], axis=axis, out=a[2]),), ((0, 2), (1, 2)))
        return Call([_values(shape, dtype, rng), _zeros(shape, dtype)],
                    lambda a: (kernel(a[0], axis=axis, out=a[1]),), ((0, 1),))
    return make


def _onehot(shape, dtype, rng):
    t = np.zeros(shape, dtype)
    if shape[1]:
        t[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1
    return t


def _xent_forward(shape, dtype, rng):
    return Call([_values(shape, dtype, rng), _onehot(shape, dtype, rng), _zeros(shape, dtype)],
                lambda a: losses.softmax_cross_entropy_forward(a[0], a[1], probs_out=a[2]))


def _xent_backward(shape, dtype, rng):
    p = activations.softmax_forward(_values(shape, dtype, rng))
    return Call([_values(shape[0], dtype, rng), p, _onehot(shape, dtype, rng),
                 _zeros(shape, dtype)],
                lambda a: (losses.softmax_cross_entropy_backward(a[0], a[1], a[2], out=a[3]),),
                ((1, 3), (2, 3)))


def _labels(shape, rng):
    return rng.integers(0, max(shape[1], 1), shape[0]) if shape[1] else np.zeros(0, np.int64)


def _sparse_forward(shape, dtype, rng):
    if shape[1] == 0 and shape[0]:
        shape = (shape[0], 1)
    labels = _labels(shape, rng)
    return Call([_values(shape, dtype, rng), _zeros(shape, dtype)],
                lambda a: losses.sparse_softmax_cross_entropy_forward(a[0], labels,
                                                                      probs_out=a[1]),
                ((0, 1),))


def _sparse_backward(shape, dtype, rng):
    if shape[1] == 0 and shape[0]:
        shape = (shape[0], 1)
    labels = _labels(shape, rng)
    p = activations.softmax_forward(_values(shape, dtype, rng))
    return Call([_values(shape[0], dtype, rng), p, _zeros(shape, dtype)],
                lambda a: (losses.sparse_softmax_cross_entropy_backward(a[0], a[1], labels,
                                                                        out=a[2]),),
                ((1, 2),))


def _bias_add(shape, dtype, rng):
    return Call([_values(shape, dtype, rng), _values(shape[1], dtype, rng), _zeros(shape, dtype)],
                lambda a: (matmul.bias_add(a[0], a[1], out=a[2]),), ((0, 2),))


def _bias_grad(shape, dtype, rng):
    return Call([_values(shape, dtype, rng), _zeros(shape[1], dtype)],
                lambda a: (matmul.bias_grad(a[0], out=a[1]),))


def _gemm(trans_a, trans_b, k):
    """out (m, n) := op(a) op(b), inner dimension k; the shapes (m, n) of SHAPES."""
    def make(shape, dtype, rng):
        m, n = shape
        a = _values((k, m) if trans_a else (m, k), dtype, rng)
        b = _values((n, k) if trans_b else (k, n), dtype, rng)
        a[np.isinf(a)] = 1.5  # inf * 0 in a sum: nan, whatever the order
        b[np.isinf(b)] = -2.5
        return Call([a, b, _zeros((m, n), dtype)],
                    lambda x: (matmul.gemm(x[0], x[1], out=x[2], trans_a=trans_a,
                                           trans_b=trans_b),))
    return make


ELEMENTWISE = {}
for _spec in ACTIVATIONS:
    ELEMENTWISE.update(_activation_calls(_spec))
ELEMENTWISE.update({
    "sigmoid_backward_from_x": _binary(activations.sigmoid_backward_from_x),
    "tanh_backward_from_x": _binary(activations.tanh_backward_from_x),
    "sigmoid_binary_cross_entropy_forward": _bce_forward,
    "sigmoid_binary_cross_entropy_backward": _bce_backward,
    "mse": _mse,
    "sum_squares": _sum_squares,
    "add": _binary(elementwise.add),
    "subtract": _binary(elementwise.subtract),
    "multiply": _binary(elementwise.multiply),
    "negative": _negative,
    "sum_all": _sum_all,
    "sgd_update": _update("sgd_update", 0, 0.1, weight_decay=0.01, clipvalue=2.0),
    "sgd_momentum_update": _update("sgd_momentum_update", 1, 0.1, 0.9),
    "sgd_momentum_update-nesterov": _update("sgd_momentum_update", 1, 0.1, 0.9, nesterov=True,
                                            grad_scale=0.5),
    "adam_update": _update("adam_update", 2, 0.01, 0.9, 0.999, 1e-7, 3),
    "adam_update-amsgrad": _update("adam_update", 2, 0.01, 0.9, 0.999, 1e-7, 2, vhat="@",
                                   weight_decay=0.004),
    "rmsprop_update": _update("rmsprop_update", 1, 0.01, 0.9, 1e-7),
    "rmsprop_update-momentum-centered": _update("rmsprop_update", 1, 0.01, 0.9, 1e-7,
                                                momentum_buf="@", momentum=0.5,
                                                average_grad="@"),
    "adagrad_update": _update("adagrad_update", 1, 0.01, 1e-7, clipvalue=0.5),
})
ROWS = {
    "softmax_forward": _along(activations.softmax_forward, False, -1),
    "softmax_forward-axis0": _along(activations.softmax_forward, False, 0),
    "softmax_backward": _along(activations.softmax_backward, True, -1),
    "log_softmax_forward": _along(activations.log_softmax_forward, False, -1),
    "log_softmax_forward-axis0": _along(activations.log_softmax_forward, False, 0),
    "log_softmax_backward": _along(activations.log_softmax_backward, True, -1),
    "log_softmax_backward-axis0": _along(activations.log_softmax_backward, True, 0),
    "softmax_cross_entropy_forward": _xent_forward,
    "softmax_cross_entropy_backward": _xent_backward,
    "sparse_softmax_cross_entropy_forward": _sparse_forward,
    "sparse_softmax_cross_entropy_backward": _sparse_backward,
    "bias_add": _bias_add,
    "bias_grad": _bias_grad,
    # a layer's forward, its weight gradient and its input gradient; k = 1 is the outer
    # product (vm_outer), small products are loops, the rest BLAS
    "gemm": _gemm(False, False, 3),
    "gemm-k1": _gemm(False, False, 1),
    "gemm-ta": _gemm(True, False, 9),
    "gemm-tb": _gemm(False, True, 5),
    # B copied transposed into gemm's stack buffer, by 8 x 8 tiles where it has them
    "gemm-tb16": _gemm(False, True, 16),
}


# --------------------------------------------------------------------------- placements

def _aligned(size, dtype, pad=64):
    """A 64-byte aligned view of `size` elements with `pad` elements either side."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(size + 2 * pad + 64 // item, dtype)
    skip = (-raw.ctypes.data % 64) // item
    return raw[skip + pad: skip + pad + size]


def _separate(values):
    placed = []
    for v in values:
        a = _aligned(v.size, v.dtype).reshape(v.shape)
        a[...] = v
        placed.append(a)
    return placed


def _packed(values, base, gap):
    """All arrays in one buffer: the first at element `base`, then `gap` elements apart."""
    total = base + sum(v.size + gap for v in values) + 8
    buf = _aligned(total, values[0].dtype, pad=8)
    placed, at = [], base
    for v in values:
        a = buf[at:at + v.size].reshape(v.shape)
        a[...] = v
        placed.append(a)
        at += v.size + gap
    return placed


# (base, gap): adjacent from an aligned and from an odd start; a few elements apart; 12 apart
# (numpy's 40-byte arrays sit 48 bytes apart), in the reverse order too
PACKINGS = [(0, 0), (1, 0), (3, 1), (1, 3), (5, 12)]


def _bits(results):
    """The results as bytes: arrays and scalars, nan's bits included."""
    return [np.ascontiguousarray(np.asarray(r)).tobytes() + str(np.asarray(r).shape).encode()
            for r in results]


def _placements(call):
    """(name, arrays, the reference's values) of every placement but the reference's."""
    vals = call.arrays
    for base, gap in PACKINGS:
        yield f"packed from {base}, {gap} apart", _packed(vals, base, gap), vals
        yield (f"packed from {base}, {gap} apart, reversed",
               _packed(vals[::-1], base, gap)[::-1], vals)
    for i, j in call.aliases:
        placed = _separate(vals)
        placed[j] = placed[i]
        # array j then holds array i's values: so does the reference's
        yield f"array {j} is array {i}", placed, [*vals[:j], vals[i], *vals[j + 1:]]


def _check(make, size, dtype):
    """Run the call in every placement; assert each gives the reference's bits. Returns the
    number of placements checked."""
    rng = np.random.default_rng([*np.atleast_1d(size), np.dtype(dtype).itemsize])
    call = make(size, dtype, rng)
    checks = 0
    for name, placed, values in _placements(call):
        want = _bits(call.run(_separate(values)))
        got = _bits(call.run(placed))
        assert got == want, f"size {size}, {np.dtype(dtype).name}: {name} differs"
        checks += 1
    return checks


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", sorted(ELEMENTWISE))
def test_elementwise_kernels_give_the_same_bits_wherever_their_arrays_are(
        kernel, dtype, simd_level):
    for n in SIZES:
        _check(ELEMENTWISE[kernel], n, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", sorted(ROWS))
def test_row_kernels_and_gemm_give_the_same_bits_wherever_their_arrays_are(kernel, dtype,
                                                                          simd_level):
    for shape in SHAPES:
        _check(ROWS[kernel], shape, dtype)


def test_every_kernel_of_the_contract_is_placed():
    """The tables above cover every kernel the modules export."""
    placed = {k.split("-")[0] for k in (*ELEMENTWISE, *ROWS)} | {"mse_forward", "mse_backward"}
    exported = {n for m in MODULES for n in dir(m)
                if not n.startswith("_") and callable(getattr(m, n))}
    assert exported - placed == set()


# --------------------------------------------------------------------------- a whole fit

_FIT = """
import hashlib, sys
import numpy as np
import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential

def fit(units, epochs, batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:2] > 0).astype(np.float32)
    mg.manual_seed(0)
    model = Sequential([Dense(units, activation="silu", input_dim=2),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=False)
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)
    return model

k = int(sys.argv[1])
if k:  # another heap layout in each process: a fit of other sizes first
    fit(k, 1, 7 + k)
model = fit(16, 3, 32)  # the last batch of each epoch has 8 rows
print(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
"""


@pytest.mark.slow
def test_a_seeded_eager_fit_gives_the_same_weights_in_fresh_processes():
    """An eager BCE fit like issue 13's (a last batch of 8 rows: the sizes where a vector loop
    and its scalar copy meet), in fresh processes whose heaps differ."""
    # the package under test, wherever it lives (the worktree, or the installed copy in CI)
    where = os.path.dirname(os.path.dirname(microgradnet.__file__))
    procs = [subprocess.Popen([sys.executable, "-c", _FIT, str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=where)
             for k in (0, 1, 2, 3, 5, 8)]
    digests = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        digests.append(out.strip())
    assert len(set(digests)) == 1, digests
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())
