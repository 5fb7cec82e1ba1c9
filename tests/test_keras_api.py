"""The Keras names users reach for (issue 12, item 6): `lr`, the top-level names, the
one-batch methods, get_layer, steps_per_epoch, to_json/model_from_json, save's suffixes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential

RNG = np.random.default_rng(3)
X = RNG.normal(size=(40, 3)).astype(np.float32)
YC = (X[:, :1] - X[:, 1:2] > 0).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)


def classifier(jit: bool | str = "auto", **compile_args) -> Sequential:
    mg.manual_seed(7)
    model = Sequential([Dense(6, activation="relu", input_dim=3), Dense(1, activation="sigmoid")])
    model.compile(optimizer=mg.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy",
                  jit_compile=jit, **compile_args)
    return model


# --------------------------------------------------------------------------- lr=


@pytest.mark.parametrize("cls", [mg.optimizers.SGD, mg.optimizers.Adam, mg.optimizers.AdamW,
                                 mg.optimizers.RMSprop, mg.optimizers.Adagrad])
def test_lr_is_accepted_with_a_deprecation_warning(cls):
    with pytest.warns(DeprecationWarning, match="`lr` argument is deprecated") as got:
        opt = cls(lr=0.125)
    assert got[0].filename == __file__  # points at the caller's line
    assert opt.learning_rate == 0.125
    assert opt.get_config()["learning_rate"] == 0.125
    with pytest.warns(DeprecationWarning):
        assert opt.lr == 0.125
    with pytest.warns(DeprecationWarning):
        opt.lr = 0.5
    assert opt.learning_rate == 0.5
    with pytest.raises(TypeError, match="give one of them, not both"):
        cls(learning_rate=0.1, lr=0.1)
    with pytest.raises(TypeError, match="give one of them, not both"):
        cls(0.1, lr=0.1)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="learning_rate"):
        cls(lr=-1.0)  # still checked as learning_rate is


def test_lr_with_parameters_first_trains_as_learning_rate():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(DeprecationWarning):
        opt = mg.optimizers.SGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])


def test_learning_rate_alone_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.optimizers.SGD(learning_rate=0.1)
        mg.optimizers.SGD(0.1).learning_rate  # noqa: B018


# --------------------------------------------------------------------------- top level


def test_keras_names_at_the_top_level():
    assert mg.Sequential is Sequential
    assert mg.Input is mg.layers.Input
    for name in ("layers", "optimizers", "losses", "callbacks", "models", "metrics",
                 "initializers", "Sequential", "Input"):
        assert name in mg.__all__ and name in dir(mg)
    model = mg.Sequential([mg.Input((3,)), mg.layers.Dense(2, activation="relu"),
                           mg.layers.Dense(1)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.01),
                  loss=mg.losses.MeanSquaredError(), metrics=["mae"])
    assert model.predict(X).shape == (40, 1)
