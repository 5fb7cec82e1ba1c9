"""In-place changes of tensors, as PyTorch has them: `-=`, `+=`, `*=`, `/=`, `zero_()` and
friends update the same tensor; the version counter catches a change to a value the graph
saved; a leaf that requires grad refuses in-place changes outside no_grad."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)


def _params():
    w = mg.tensor(RNG.normal(size=(3, 1)), requires_grad=True)
    b = mg.tensor(np.zeros(1), requires_grad=True)
    return w, b


# --------------------------------------------------------------------------- the idiom


def test_manual_sgd_idiom_trains_like_the_sgd_optimizer_bit_for_bit():
    w, b = _params()
    w2, b2 = mg.tensor(w.numpy(), requires_grad=True), mg.tensor(b.numpy(), requires_grad=True)
    opt = mg.optimizers.SGD([w2, b2], learning_rate=0.1)
    lr = 0.1
    ids = (id(w), id(b))
    for _ in range(25):
        loss = mg.mse_loss(mg.linear(mg.tensor(X), w, b), Y)
        loss.backward()
        with mg.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        # the same tensors: still leaves that require grad
        assert (id(w), id(b)) == ids
        assert w.requires_grad and w.is_leaf and b.requires_grad and b.is_leaf

        opt.zero_grad()
        mg.mse_loss(mg.linear(mg.tensor(X), w2, b2), Y).backward()
        opt.step()
    np.testing.assert_array_equal(w.numpy(), w2.numpy())
    np.testing.assert_array_equal(b.numpy(), b2.numpy())
    assert w._version == 25 and w2._version == 25  # the optimizer counts its changes too
    assert loss.item() < 0.5


def test_manual_sgd_on_model_parameters_with_grad_zero_():
    mg.manual_seed(0)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    params = model.parameters()
    first = [p.numpy().copy() for p in params]
    losses = []
    for _ in range(30):
        loss = mg.mse_loss(model(mg.tensor(X)), Y)
        losses.append(loss.item())
        loss.backward()
        with mg.no_grad():
            for p in params:
                p -= 0.05 * p.grad
                p.grad.zero_()  # PyTorch's other habit: zero the gradient in place
    assert model.parameters() == params
    assert all(p.requires_grad and p.is_leaf for p in params)
    assert losses[-1] < losses[0]
    assert all(not np.array_equal(a, p.numpy()) for a, p in zip(first, params, strict=True))


def test_grad_none_and_data_writes_keep_the_tensor():
    w, _ = _params()
    (w * 2).sum().backward()
    w.grad = None
    assert w.grad is None
    data = w.data
    w.data[...] = 1.0  # writes through .data, as PyTorch's .data: not counted
    assert w.data is data and np.all(w.numpy() == 1) and w._version == 0
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 1), 2, np.float32))


# --------------------------------------------------------------------------- each operator


@pytest.mark.parametrize("op, ref", [
    ("+=", np.add), ("-=", np.subtract), ("*=", np.multiply), ("/=", np.divide),
])
@pytest.mark.parametrize("other_kind", ["tensor", "array", "number"])
def test_each_operator_updates_the_same_tensor(op, ref, other_kind):
    start = np.array([[1.5, -2.0, 3.0]], np.float32)
    other = np.array([0.5, 4.0, -1.5], np.float32)
    value = {"tensor": mg.tensor(other), "array": other, "number": 0.75}[other_kind]
    t = mg.tensor(start)
    before = id(t)
    data = t.data
    namespace = {"t": t, "value": value}
    exec(f"t {op} value", namespace)
    t = namespace["t"]
    assert id(t) == before and t.data is data and t._version == 1
    expected = ref(start, other if other_kind != "number" else np.float32(0.75))
    np.testing.assert_array_equal(t.numpy(), expected)
    # the bits of the out-of-place op
    np.testing.assert_array_equal(t.numpy(),
                                  eval(f"s {op[0]} v", {"s": mg.tensor(start), "v": value}).numpy())


def test_inplace_methods():
    t = mg.tensor([1.0, 2.0, 3.0])
    assert t.add_(1.0) is t and t.tolist() == [2.0, 3.0, 4.0]
    assert t.sub_(mg.tensor([1.0, 1.0, 1.0]), alpha=2.0) is t and t.tolist() == [0.0, 1.0, 2.0]
    assert t.mul_(3.0) is t and t.tolist() == [0.0, 3.0, 6.0]
    assert t.div_(3.0) is t and t.tolist() == [0.0, 1.0, 2.0]
    assert t.copy_(np.array([5.0, 6.0, 7.0])) is t and t.tolist() == [5.0, 6.0, 7.0]
    assert t.fill_(2.5) is t and t.tolist() == [2.5, 2.5, 2.5]
    assert t.zero_() is t and t.tolist() == [0.0, 0.0, 0.0]
    assert t._version == 7 and t.dtype == np.float32


def test_inplace_bad_input_gives_clear_errors():
    t = mg.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"in-place add on a tensor of shape \(3,\)"):
        t += np.ones((2, 3))
    i = mg.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="in-place div on a int64 tensor"):
        i /= 2
    ro = mg.Tensor(np.frombuffer(np.ones(3, np.float32).tobytes(), np.float32))
    with pytest.raises(ValueError, match="read-only"):
        ro -= 1.0
    assert t._version == 0 and ro._version == 0  # nothing changed, nothing counted


# --------------------------------------------------------------------------- grad mode


def test_inplace_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    w, _ = _params()
    before = w.numpy().copy()
    for change in (lambda: w.__isub__(1.0), lambda: w.__iadd__(1.0), lambda: w.__imul__(2.0),
                   lambda: w.__itruediv__(2.0), w.zero_, lambda: w.add_(1.0),
                   lambda: w.copy_(before)):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad.*no_grad"):
            change()
    np.testing.assert_array_equal(w.numpy(), before)
    assert w._version == 0
    with mg.no_grad():
        w += 1.0  # allowed there
    assert w._version == 1 and w.requires_grad and w.is_leaf


def test_inplace_on_a_graph_tensor_is_recorded_on_the_same_tensor():
    w = mg.tensor([[0.5], [-1.0], [2.0]], dtype="float64", requires_grad=True)
    x = mg.tensor([[1.5], [0.25], [-0.5]], dtype="float64", requires_grad=True)
    h = w * 2.0
    alias = h
    before = h.sum()  # recorded before the change: its gradient reaches w through h's old node
    h += x
    h *= h  # mul reads both operands: the values before this change
    assert h is alias and h.requires_grad and not h.is_leaf and h._version == 2
    np.testing.assert_allclose(h.numpy(), (2 * w.numpy() + x.numpy()) ** 2)
    (before + h.sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 + 4 * (2 * w.numpy() + x.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * w.numpy() + x.numpy()))

    def f(w, x):
        h = w * 2.0
        s = h.sum()
        h += x
        h.mul_(h)
        h.sub_(x, alpha=0.5)
        h /= 3.0
        return s + h.sum()

    assert mg.gradcheck(f, [w, x])


def test_recorded_inplace_into_a_tensor_without_grad():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    acc = mg.zeros(2)
    same = acc
    for k in range(3):
        acc += w * float(k + 1)
    assert acc is same and acc.requires_grad and acc.tolist() == [6.0, 12.0]
    assert len(acc._hist) == 3
    acc.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])
    assert acc._hist is None  # the old nodes are freed with the graph


def test_recorded_inplace_after_a_saved_use_raises():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2.0
    p = h * h  # saves h
    h += 1.0
    with pytest.raises(RuntimeError, match="input 0 of 'mul'.*is at version 1; expected "
                       "version 0"):
        p.sum().backward()


def test_recorded_inplace_on_views_and_fills():
    w = mg.tensor([[1.0, 2.0]], requires_grad=True)
    h = w * 2.0
    v = h.reshape(2)
    v2 = v
    v += 1.0  # a view: recorded out of place, the name rebound
    assert v is not v2 and h.tolist() == [[2.0, 4.0]]
    with pytest.raises(RuntimeError, match="view"):
        v2.add_(1.0)
    with pytest.raises(RuntimeError, match="recorded graph"):
        (w * 2.0).zero_()


def test_no_grad_inplace_on_a_graph_tensor_changes_it_in_place():
    w, _ = _params()
    h = w * 2.0
    data = h.data
    with mg.no_grad():
        h += 1.0
    assert h.data is data and h.requires_grad and h._version == 1
    h.sum().backward()  # Mul saved w, not h: nothing needed changed
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 1), 2, np.float32))


# --------------------------------------------------------------------------- versions


def test_changing_a_weight_between_forward_and_backward_raises():
    w, b = _params()
    loss = mg.mse_loss(mg.linear(mg.tensor(X), w, b), Y)
    with mg.no_grad():
        w -= 0.1  # PyTorch raises here too: linear saved w for the input's gradient
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[float32 tensor "
                       r"of shape \(3, 1\)\], which is input 1 of 'linear', is at version 1; "
                       r"expected version 0 instead"):
        loss.backward()


def test_an_optimizer_step_between_forward_and_backward_raises():
    w, b = _params()
    opt = mg.optimizers.SGD([w, b], learning_rate=0.1)
    loss = mg.mse_loss(mg.linear(mg.tensor(X), w, b), Y)
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        loss.backward()


def test_a_modified_saved_output_raises():
    x = mg.tensor([0.5, 1.0], requires_grad=True)
    y = mg.exp(x)  # exp's backward reads its output
    with mg.no_grad():
        y *= 2.0
    with pytest.raises(RuntimeError, match="which is the output of 'exp', is at version 1"):
        y.sum().backward()


def test_a_modified_view_of_a_saved_tensor_raises():
    w, _ = _params()
    x = mg.tensor(np.ones((4, 3)))
    loss = (x @ w).sum()  # matmul saved x
    view = x.reshape(12)
    view += 1.0  # changes x's data too: x's version moves with it
    assert x._version == 1 and view._version == 1
    with pytest.raises(RuntimeError, match="input 0 of 'matmul'"):
        loss.backward()
    t = mg.tensor([[1.0, 2.0]])
    assert t.T._version == t.detach()._version == t[0]._version == 0
    t.detach().zero_()
    assert t._version == 1 and t.tolist() == [[0.0, 0.0]]


def test_changes_to_unsaved_tensors_do_not_raise():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    c = mg.tensor([3.0, 4.0])
    y = x + c  # add saves nothing
    c += 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    d = mg.tensor([3.0, 4.0])
    z = x * d
    d.zero_()  # mul saved d: x's gradient would silently be 0
    with pytest.raises(RuntimeError, match="input 1 of 'mul'"):
        z.sum().backward()


@pytest.mark.parametrize("jit", [False, "auto"])
def test_fit_counts_its_updates_on_both_paths(jit):
    mg.manual_seed(0)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
    assert jit is False or mg.fastpath.explain(model) is None  # "auto": the captured step
    history = model.fit(X, Y, epochs=3, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert [p._version for p in model.parameters()] == [12, 12]  # 4 steps an epoch
