"""Each loss and metric against its formula in numpy; fused and unfused paths agree."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import losses, metrics

RNG = np.random.default_rng(0)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


Z = RNG.normal(size=(6, 3)).astype(np.float64)
P = _softmax(Z)
T_ONEHOT = np.eye(3)[[0, 2, 1, 1, 0, 2]]
LABELS = np.array([0, 2, 1, 1, 0, 2])
ZB = RNG.normal(size=(6, 1))
TB = (RNG.random((6, 1)) > 0.5).astype(np.float64)
YP = RNG.normal(size=(6, 2))
YT = RNG.normal(size=(6, 2))


def _bce(t, p):
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))


CASES = [
    ("mse", YT, YP, np.mean((YP - YT) ** 2)),
    ("mean_squared_error", YT, YP, np.mean((YP - YT) ** 2)),
    ("mae", YT, YP, np.mean(np.abs(YP - YT))),
    ("huber", YT, YP * 3, np.mean(np.where(np.abs(3 * YP - YT) <= 1, 0.5 * (3 * YP - YT) ** 2,
                                           np.abs(3 * YP - YT) - 0.5))),
    ("binary_crossentropy", TB, _sigmoid(ZB), _bce(TB, _sigmoid(ZB))),
    ("categorical_crossentropy", T_ONEHOT, P, np.mean(-np.sum(T_ONEHOT * np.log(P), axis=1))),
    ("sparse_categorical_crossentropy", LABELS, P,
     np.mean(-np.log(P[np.arange(6), LABELS]))),
]


@pytest.mark.parametrize("name,t,p,expected", CASES, ids=[c[0] for c in CASES])
def test_loss_on_probabilities_matches_numpy(name, t, p, expected):
    value = losses.get(name)(t, mg.tensor(p, dtype="float64"))
    assert value.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "cls,t,z,expected",
    [
        (losses.BinaryCrossentropy, TB, ZB, _bce(TB, _sigmoid(ZB))),
        (losses.CategoricalCrossentropy, T_ONEHOT, Z,
         np.mean(-np.sum(T_ONEHOT * np.log(P), axis=1))),
        (losses.SparseCategoricalCrossentropy, LABELS, Z,
         np.mean(-np.log(P[np.arange(6), LABELS]))),
    ],
)
def test_from_logits_and_fusion_agree(cls, t, z, expected):
    zt = mg.tensor(z, dtype="float64", requires_grad=True)
    fused = cls(from_logits=True)(t, zt)
    act = mg.sigmoid if cls is losses.BinaryCrossentropy else mg.softmax
    through_graph = cls()(t, act(zt))  # takes the logits from the sigmoid/softmax op
    with mg.no_grad():
        clipped = cls()(t, act(zt))  # no graph: the probabilities, clipped
    for value in (fused, through_graph, clipped):
        assert value.item() == pytest.approx(expected, rel=1e-6)
    fused.backward()
    g_fused = zt.grad.numpy().copy()
    zt.grad = None
    through_graph.backward()
    np.testing.assert_allclose(zt.grad.numpy(), g_fused, rtol=1e-9)


def test_fused_binary_crossentropy_is_stable_for_saturated_outputs():
    z = mg.tensor([[40.0], [-40.0]], dtype="float64", requires_grad=True)
    loss = losses.BinaryCrossentropy()(np.array([[0.0], [1.0]]), mg.sigmoid(z))
    assert loss.item() == pytest.approx(40.0)  # no log(0)
    loss.backward()
    np.testing.assert_allclose(z.grad.numpy(), [[0.5], [-0.5]])


def test_sample_weights_and_reductions():
    w = np.array([1.0, 0.0, 2.0, 1.0, 1.0, 0.5])
    per = np.mean((YP - YT) ** 2, axis=1)
    mse = losses.MeanSquaredError()
    p = mg.tensor(YP, dtype="float64")
    assert mse(YT, p, sample_weight=w).item() == pytest.approx(np.sum(per * w) / 6)
    assert losses.MeanSquaredError(reduction="sum")(YT, p).item() == pytest.approx(per.sum())
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(YT, p).numpy(), per)


def test_target_shapes_are_fitted_or_rejected():
    p = mg.tensor(np.zeros((4, 1)))
    assert losses.get("mse")(np.ones(4), p).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"targets of shape \(4, 2\) do not fit .*\(4, 1\)"):
        losses.get("mse")(np.ones((4, 2)), p)
    with pytest.raises(ValueError, match="out of range"):
        losses.get("sparse_categorical_crossentropy")(np.array([0, 3]),
                                                      mg.tensor(np.zeros((2, 3))))


def test_loss_names_and_errors():
    assert isinstance(losses.get("MSE"), losses.MeanSquaredError)
    assert isinstance(losses.get("huber_loss"), losses.Huber)
    with pytest.raises(ValueError, match="unknown loss 'msq'; known: .*mean_squared_error"):
        losses.get("msq")


def test_metrics_against_numpy():
    p = np.array([[0.9], [0.2], [0.6], [0.4]])
    t = np.array([[1.0], [0.0], [0.0], [1.0]])
    np.testing.assert_array_equal(metrics.get("accuracy")[1](t, p), [1, 1, 0, 0])
    np.testing.assert_array_equal(metrics.binary_accuracy(t.ravel(), p), [1, 1, 0, 0])
    np.testing.assert_array_equal(metrics.accuracy(T_ONEHOT, P),
                                  (P.argmax(1) == T_ONEHOT.argmax(1)).astype(float))
    np.testing.assert_array_equal(metrics.accuracy(LABELS, P),
                                  (P.argmax(1) == LABELS).astype(float))
    np.testing.assert_allclose(metrics.get("mae")[1](YT, YP), np.abs(YP - YT).mean(axis=1))
    np.testing.assert_allclose(metrics.get("mse")[1](YT, YP), ((YP - YT) ** 2).mean(axis=1))
    with pytest.raises(ValueError, match="unknown metric 'acuracy'; known: .*accuracy"):
        metrics.get("acuracy")
