"""The gradient checker is tested too: it must fail on every kind of wrong backward."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import microgradnet as mg


def _x(values, requires_grad=True):
    return mg.tensor(values, dtype="float64", requires_grad=requires_grad)


class Square(mg.Function):
    """x ** 2 with a backward that tests below break on purpose."""

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, grad):
        return 2 * grad * self.a


class HalfSquare(Square):
    def backward(self, grad):
        return grad * self.a  # forgets the factor 2


class NoisySquare(Square):
    def backward(self, grad):
        return 2 * grad * self.a + np.random.default_rng().normal(0, 1e-3, self.a.shape)


class OffsetSquare(Square):
    def backward(self, grad):
        return 2 * grad * self.a + 1e-9 * (grad == 0)  # nonzero for a zero upstream gradient


class ReluWrongAtKink(mg.Function):
    def forward(self, a):
        self.a = a
        return np.maximum(a, 0)

    def backward(self, grad):
        return grad * np.where(self.a > 0, 1.0, np.where(self.a == 0, 2.0, 0.0))


def test_correct_backward_passes():
    assert mg.gradcheck(lambda t: Square.apply(t), [_x([0.5, -1.0, 2.0])])


def test_wrong_backward_fails_naming_output_and_input():
    with pytest.raises(mg.GradcheckError, match="output 0 with respect to input 1") as info:
        mg.gradcheck(lambda c, t: HalfSquare.apply(t) + c, [_x([1.0], False), _x([0.5, -1.0])])
    assert "numerical" in str(info.value) and "analytical" in str(info.value)


def test_wrong_backward_returns_false_without_raising():
    assert not mg.gradcheck(lambda t: HalfSquare.apply(t), [_x([1.0])], raise_exception=False)


def test_large_jacobian_reports_worst_entries():
    x = _x(np.linspace(0.1, 1, 50))
    with pytest.raises(mg.GradcheckError, match="50 of 2500 entries differ") as info:
        mg.gradcheck(lambda t: HalfSquare.apply(t), [x])
    assert "numerical:\n" not in str(info.value)  # too large to print whole


def test_second_output_is_named():
    def fn(t):
        return Square.apply(t), HalfSquare.apply(t)

    with pytest.raises(mg.GradcheckError, match="output 1 with respect to input 0"):
        mg.gradcheck(fn, [_x([1.0, 2.0])])


def test_non_reentrant_backward_fails():
    with pytest.raises(mg.GradcheckError, match="not reentrant"):
        mg.gradcheck(lambda t: NoisySquare.apply(t), [_x([1.0, 2.0])], atol=1e-2)


def test_nonzero_gradient_for_zero_upstream_fails():
    with pytest.raises(mg.GradcheckError, match="zero upstream gradient"):
        mg.gradcheck(lambda t: OffsetSquare.apply(t), [_x([1.0, 2.0])])


def test_subgradient_outside_the_one_sided_slopes_fails_at_a_kink():
    with pytest.raises(mg.GradcheckError, match=r"\[0, 1\] vs 2"):
        mg.gradcheck(lambda t: ReluWrongAtKink.apply(t), [_x([0.0, 1.0])])


def test_kink_rule_does_not_excuse_smooth_functions():
    # Away from kinks left and right slopes agree, so a wrong value cannot hide between them.
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda t: HalfSquare.apply(t), [_x([1e-3, 3.0])])


def test_float32_inputs_warn():
    with pytest.warns(UserWarning, match="float32"):
        mg.gradcheck(lambda t: t * 2, [mg.tensor([1.0], requires_grad=True)], atol=1e-2)


def test_inputs_are_left_unchanged():
    x = _x([[1.0, 2.0], [3.0, 4.0]])
    view = mg.Tensor(x.data.T, requires_grad=True, dtype="float64")  # non-contiguous data
    before = view.data.copy()
    mg.gradcheck(lambda t: mg.tanh(t) * 3, [view])
    np.testing.assert_array_equal(view.data, before)
    assert view.grad is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="requires_grad"):
        mg.gradcheck(lambda t: t, [_x([1.0], requires_grad=False)])
    with pytest.raises(TypeError, match="not a Tensor"):
        mg.gradcheck(lambda t: 1.0, [_x([1.0])])


@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]),
    data=st.data(),
)
def test_broadcasting_gradients(shapes, op, data):
    a_shape, b_shape = shapes.input_shapes
    values = st.floats(0.5, 2.0) if op == "div" else st.floats(-2.0, 2.0)
    a = data.draw(hnp.arrays(np.float64, a_shape, elements=values))
    b = data.draw(hnp.arrays(np.float64, b_shape, elements=values))
    fn = getattr(mg, op)
    ta, tb = _x(a), _x(b)
    out = fn(ta, tb)
    assert out.shape == shapes.result_shape
    assert mg.gradcheck(fn, [ta, tb])


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                 elements=st.floats(-3, 3)),
    data=st.data(),
)
def test_reductions_over_every_axis(x, data):
    axis = data.draw(st.sampled_from([None, *range(-x.ndim, x.ndim)]))
    keepdims = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["sum", "mean", "max", "min"]))
    t = _x(x)
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected)
    assert mg.gradcheck(lambda v: getattr(v, name)(axis=axis, keepdims=keepdims), [t])
