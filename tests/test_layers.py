"""Layers, initializers and regularizers: Keras defaults, layouts, statistics, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import initializers, regularizers
from microgradnet.activation_table import NAMES as ACTIVATION_NAMES
from microgradnet.layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    Input,
    get_activation,
)


def test_dense_defaults_and_keras_layout():
    mg.manual_seed(0)
    d = Dense(4, input_dim=3)
    assert d.activation == "linear" and d.use_bias
    assert isinstance(d.kernel_initializer, initializers.GlorotUniform)
    assert isinstance(d.bias_initializer, initializers.Zeros)
    out = d(mg.tensor(np.ones((2, 3))))
    kernel, bias = d.get_weights()
    assert kernel.shape == (3, 4) and bias.shape == (4,) and not bias.any()
    limit = np.sqrt(6 / (3 + 4))
    assert np.abs(kernel).max() <= limit
    np.testing.assert_allclose(out.numpy(), np.ones((2, 3)) @ kernel + bias, rtol=1e-6)
    assert d.weight_names == [f"{d.name}/kernel", f"{d.name}/bias"]
    assert [p.shape for p in d.parameters()] == [(3, 4), (4,)]
    assert d.count_params() == 16


def test_dense_applies_its_activation_and_takes_nd_input():
    d = Dense(2, activation="relu", input_shape=(3,))
    d.set_weights([-np.ones((3, 2)), np.zeros(2)])
    assert d(mg.tensor(np.ones((4, 3)))).numpy().max() == 0.0
    d2 = Dense(5)
    assert d2(mg.tensor(np.ones((2, 7, 3)))).shape == (2, 7, 5)


def test_gradients_flow_through_dense():
    d = Dense(3, activation="tanh", input_dim=2)
    x = mg.tensor(np.random.default_rng(0).normal(size=(4, 2)))
    d(x).sum().backward()
    kernel, bias = d.parameters()
    assert kernel.grad.shape == (2, 3) and bias.grad.shape == (3,)
    assert np.abs(kernel.grad.numpy()).sum() > 0


def test_set_weights_checks_shapes_and_changes_nothing_on_error():
    d = Dense(2, input_dim=3)
    d(mg.tensor(np.ones((1, 3))))
    before = d.get_weights()
    with pytest.raises(ValueError, match=r"'dense\w*/bias' has shape \(2,\).*\(3,\)"):
        d.set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match="has 2 weights, got 1"):
        d.set_weights([np.zeros((3, 2))])
    for b, a in zip(before, d.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad, error, match", [
    (np.full((3, 2), np.nan), ValueError, "NaN or infinite"),
    (np.full((3, 2), np.inf), ValueError, "NaN or infinite"),
    (np.full((3, 2), "a"), TypeError, "real numbers"),
    (np.ones((3, 2), dtype=complex), TypeError, "real numbers"),
    (np.ones((3, 2), dtype=bool), TypeError, "real numbers"),
])
def test_set_weights_checks_dtype_and_finiteness_before_assigning(bad, error, match):
    d = Dense(2, input_dim=3, name="checked")
    before = d.get_weights()
    # The bias is valid and comes second: it must not be assigned either.
    with pytest.raises(error, match=rf"'checked'.*'checked/kernel'.*{match}"):
        d.set_weights([bad, np.ones(2)])
    for b, a in zip(before, d.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    d.set_weights([np.ones((3, 2), dtype=np.int64), np.ones(2)])  # integers convert exactly
    assert d.kernel.dtype == np.float32 and d.get_weights()[0].sum() == 6


def test_layers_take_integer_and_float64_inputs_as_their_weights_dtype():
    d = Dense(2, input_dim=3, kernel_initializer="ones")
    out = d(np.ones((4, 3), dtype=np.int64))
    assert out.dtype == np.float32 and out.tolist() == [[3.0, 3.0]] * 4
    x = mg.tensor(np.ones((4, 3)), dtype="float64", requires_grad=True)
    out = d(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [[2.0] * 3] * 4
    assert Activation("relu")(np.array([[-1, 2]])).tolist() == [[0.0, 2.0]]
    assert Flatten()(np.ones((2, 1, 2), dtype=bool)).dtype == np.float32


def test_linear_with_mixed_dtypes_names_both():
    x = mg.tensor(np.ones((2, 3)), dtype="float64")
    w = mg.tensor(np.ones((3, 1)))
    with pytest.raises(TypeError, match="x is float64 but w is float32"):
        mg.linear(x, w)
    with pytest.raises(TypeError, match="x is float64 but b is float32"):
        mg.linear(x, mg.cast(w, "float64"), mg.tensor([0.0]))


def test_custom_activation_with_a_builtin_name_is_not_the_builtin():
    def sigmoid(t):  # the user's own "sigmoid": a scaled tanh
        return mg.tanh(t) * 2

    for layer in (Dense(1, activation=sigmoid, input_dim=1), Activation(sigmoid)):
        assert layer.output_activation() is None  # never fused with a loss as the built-in
        with pytest.raises(ValueError, match="custom callable"):
            layer.get_config()
    assert Dense(1, activation=mg.sigmoid).output_activation() == "sigmoid"
    assert Dense(1, activation=mg.sigmoid).get_config()["activation"] == "sigmoid"


def test_wrong_feature_count_names_the_layer_and_shapes():
    d = Dense(2, input_dim=3, name="first")
    with pytest.raises(ValueError, match=r"'first' expects inputs of shape \(None, 3\).*\(4, 5\)"):
        d(mg.tensor(np.ones((4, 5))))


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="units"):
        Dense(0)
    with pytest.raises(ValueError, match="unknown activation 'relux'; known: .*relu"):
        Dense(2, activation="relux")
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="unknown initializer 'glorot'; known: .*glorot_uniform"):
        Dense(2, kernel_initializer="glorot")
    with pytest.raises(ValueError, match="input_dim or input_shape"):
        Dense(2, input_dim=2, input_shape=(2,))


def test_activation_layer_by_name_and_callable():
    x = mg.tensor([[-1.0, 2.0]])
    assert Activation("relu")(x).tolist() == [[0.0, 2.0]]
    assert Activation(None)(x).tolist() == [[-1.0, 2.0]]
    assert Activation(lambda t: t * 3)(x).tolist() == [[-3.0, 6.0]]
    for name in (*ACTIVATION_NAMES, "softmax", "log_softmax", "linear"):
        assert get_activation(name)[0] == name


def test_dropout_only_in_training_and_reproducible():
    x = mg.tensor(np.ones((200, 50)))
    drop = Dropout(0.3)
    assert drop(x) is x
    mg.manual_seed(1)
    a = drop(x, training=True).numpy()
    mg.manual_seed(1)
    b = drop(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.unique(a), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((a == 0).mean() - 0.3) < 0.02


def test_batch_normalization_training_and_inference():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (256, 4)).astype(np.float32)
    bn = BatchNormalization(momentum=0.9)
    y = bn(mg.tensor(data), training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), data.var(axis=0) / (data.var(axis=0) + 1e-3),
                               rtol=1e-4)
    gamma, beta, mean, var = bn.get_weights()
    np.testing.assert_allclose(mean, 0.1 * data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(var, 0.9 + 0.1 * data.var(axis=0), rtol=1e-5)
    inference = bn(mg.tensor(data)).numpy()
    np.testing.assert_allclose(inference, (data - mean) / np.sqrt(var + 1e-3), rtol=1e-5)
    assert [p.shape for p in bn.parameters()] == [(4,), (4,)]
    assert len(bn.weights) == 4


def test_batch_normalization_gradient():
    bn = BatchNormalization()
    x = mg.tensor(np.random.default_rng(1).normal(size=(8, 3)), dtype="float64",
                  requires_grad=True)
    bn(x, training=True)  # build (float32 weights)
    for w in bn.weights:
        w.data = w.data.astype(np.float64)
    assert mg.gradcheck(lambda t: bn(t, training=True) * mg.tensor(np.arange(24.0).reshape(8, 3),
                                                                   dtype="float64"), [x])


def test_batch_normalization_checks_its_axis():
    with pytest.raises(TypeError, match="axis must be an int"):
        BatchNormalization(axis="features")
    with pytest.raises(ValueError, match=r"axis 5 is out of range for inputs of shape \(4, 3\)"):
        BatchNormalization(axis=5, name="bn5")(mg.tensor(np.ones((4, 3))))
    with pytest.raises(ValueError, match="batch axis"):
        BatchNormalization(axis=0)(mg.tensor(np.ones((4, 3))))
    assert BatchNormalization(axis=1)(mg.tensor(np.ones((4, 3)))).shape == (4, 3)


def test_flatten_and_input():
    assert Flatten()(mg.tensor(np.ones((2, 3, 4)))).shape == (2, 12)
    assert Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    inp = Input((5,))
    assert inp.input_shape == (None, 5)


# --------------------------------------------------------------------------- initializers


@pytest.mark.parametrize(
    "name,std",
    [
        ("glorot_uniform", np.sqrt(2 / (400 + 300))),
        ("glorot_normal", np.sqrt(2 / (400 + 300))),
        ("he_uniform", np.sqrt(2 / 400)),
        ("he_normal", np.sqrt(2 / 400)),
        ("lecun_uniform", np.sqrt(1 / 400)),
        ("lecun_normal", np.sqrt(1 / 400)),
        ("random_normal", 0.05),
        ("truncated_normal", 0.05 * 0.8796),
        ("random_uniform", 0.1 / np.sqrt(12)),
    ],
)
def test_initializer_statistics(name, std):
    mg.manual_seed(0)
    w = initializers.get(name)((400, 300))
    assert w.dtype == np.float32 and w.shape == (400, 300)
    assert abs(w.mean()) < 3 * std / np.sqrt(w.size) + 1e-4
    assert w.std() == pytest.approx(std, rel=0.02)


def test_truncated_normal_stays_within_two_stddev():
    w = initializers.TruncatedNormal(mean=1.0, stddev=0.5, seed=3)((10000,))
    assert w.min() >= 0.0 and w.max() <= 2.0


def test_constant_ones_zeros_and_seeds():
    assert initializers.get("ones")((2, 2)).sum() == 4
    assert not initializers.get("zeros")((3,)).any()
    assert initializers.Constant(2.5)((2,)).tolist() == [2.5, 2.5]
    a = initializers.RandomNormal(seed=7)((5,))
    b = initializers.RandomNormal(seed=7)((5,))
    np.testing.assert_array_equal(a, b)
    assert isinstance(initializers.get("HeNormal"), initializers.HeNormal)


def test_glorot_uniform_matches_the_reference_workload_draws():
    # WORKLOADS.md: uniform(-l, l, (fan_in, fan_out)) from default_rng(1234), layer by layer.
    mg.manual_seed(1234)
    w1 = initializers.get("glorot_uniform")((1, 60))
    w2 = initializers.get("glorot_uniform")((60, 1))
    rng = np.random.default_rng(1234)
    e1 = rng.uniform(-np.sqrt(6 / 61), np.sqrt(6 / 61), (1, 60))
    e2 = rng.uniform(-np.sqrt(6 / 61), np.sqrt(6 / 61), (60, 1))
    np.testing.assert_array_equal(w1, e1.astype(np.float32))
    np.testing.assert_array_equal(w2, e2.astype(np.float32))


# --------------------------------------------------------------------------- regularizers


def test_regularizers():
    w = mg.tensor([[1.0, -2.0], [0.5, 0.0]], requires_grad=True)
    assert regularizers.get("l1")(w).item() == pytest.approx(0.01 * 3.5)
    assert regularizers.get("l2")(w).item() == pytest.approx(0.01 * 5.25)
    assert regularizers.L1L2(l1=0.1, l2=0.2)(w).item() == pytest.approx(0.35 + 1.05)
    with pytest.raises(ValueError, match="known: l1, l1_l2, l2"):
        regularizers.get("l3")
    d = Dense(2, kernel_regularizer="l2", input_dim=2)
    d(mg.tensor(np.ones((1, 2))))
    kernel = d.get_weights()[0]
    assert d.regularization_loss().item() == pytest.approx(0.01 * (kernel**2).sum(), rel=1e-5)
