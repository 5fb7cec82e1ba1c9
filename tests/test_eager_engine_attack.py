"""Regressions found by attacking the eager engine (issue 16): each failed on its first cut."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.autograd import Function


class _SavesAFloat(Function):
    """An op written in Python that keeps a plain number in `self.saved`."""

    def forward(self, a):
        self.saved = 2.0
        return a * 2.0

    def backward(self, grad):
        return grad * self.saved


class _SavesAnArray(Function):
    """An op written in Python that keeps one array in `self.saved` and hands it back."""

    def forward(self, a):
        self.saved = np.full_like(a, 3.0)
        return a.copy()

    def backward(self, grad):
        return self.saved


@pytest.mark.parametrize("shape", [(), (2,)])
def test_an_op_written_in_python_may_keep_a_number_in_saved(shape):
    x = mg.tensor(np.ones(shape), requires_grad=True)
    _SavesAFloat.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(shape, 2.0, np.float32))


@pytest.mark.parametrize("shape", [(), (2,), (2, 3)])
def test_a_leaf_never_keeps_the_array_an_op_written_in_python_saved(shape):
    x = mg.tensor(np.ones(shape), requires_grad=True)
    y = _SavesAnArray.apply(x)
    y.backward(np.ones(shape, np.float32), retain_graph=True)
    assert not np.shares_memory(x.grad.data, y._ctx.saved)
    x.grad.data[...] = 0  # what an in-place zero_grad does
    assert (y._ctx.saved == 3.0).all()


def _fortran_pair(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((33, 7)).astype(dtype)
    b = rng.standard_normal((33, 7)).astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "neg"])
def test_elementwise_ops_on_transposed_tensors_keep_numpys_layout_and_bits(op, dtype):
    # x.T is a Fortran-ordered view; numpy lays a + b of two such arrays out in Fortran
    # order too, and a full sum then adds in that memory order: the eager path must give
    # the bits of the same math in numpy.
    a, b = _fortran_pair(dtype)
    x = mg.tensor(a, requires_grad=True, dtype=dtype)
    y = mg.tensor(b, requires_grad=True, dtype=dtype)
    fns = {"add": (lambda u, v: u + v), "sub": (lambda u, v: u - v),
           "mul": (lambda u, v: u * v), "neg": (lambda u, v: -u)}
    fn = fns[op]
    out = fn(x.T, y.T)
    expected = fn(a.T, b.T)
    assert out.data.flags.f_contiguous == expected.flags.f_contiguous
    assert out.sum().data.tobytes() == np.add.reduce(expected, axis=None).tobytes()
    assert out.sum(axis=1).data.tobytes() == np.add.reduce(expected, axis=1).tobytes()
