"""The wording and the place of messages: a damaged file says only that; the diagnostic
warnings point at the user's fit call, name the layer and what was measured, and give
advice that fits the layer's activation."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import callbacks as cb
from microgradnet.layers import Activation, Dense
from microgradnet.models import Sequential, load_model

RNG = np.random.default_rng(0)
X1 = np.linspace(0, 2, 200).reshape(-1, 1).astype(np.float32)
Y1 = (np.concatenate([np.zeros(100), X1[:100, 0]]) * 2).reshape(-1, 1).astype(np.float32)
X2 = RNG.normal(size=(200, 2)).astype(np.float32)
Y2 = (X2[:, :1] * X2[:, 1:] > 0).astype(np.float32)


# --------------------------------------------------------------------------- files


def _pickled_npz(path):
    with zipfile.ZipFile(path, "w") as z:
        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        z.writestr("__meta__.npy", buf.getvalue())


@pytest.mark.parametrize("kind", ["object array", "pickle file", "truncated", "text"])
def test_a_damaged_file_says_so_and_nothing_else(tmp_path, kind):
    path = tmp_path / "m.npz"
    if kind == "object array":
        _pickled_npz(path)
    elif kind == "pickle file":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "truncated":
        mg.manual_seed(0)
        model = Sequential([Dense(2, input_dim=3)])
        model.save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_text("hello")
    for load in (load_model, Sequential([Dense(2, input_dim=3)]).load_weights):
        with pytest.raises(ValueError) as info:
            load(path)
        message = str(info.value)
        assert message == f"{path} is damaged or is not a microgradnet file"
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert "pickle" not in message


# --------------------------------------------------------------------------- warnings


def _fit_and_catch(model, x, y, callbacks, epochs, batch_size):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                  callbacks=callbacks)  # the line the warnings must point at
    return [w for w in caught if issubclass(w.category, cb.TrainingWarning)]


def _fit_line():
    import inspect
    lines, start = inspect.getsourcelines(_fit_and_catch)
    return start + next(i for i, line in enumerate(lines) if "model.fit(" in line)


def test_dead_unit_warning_points_at_fit_and_names_what_was_measured():
    model = Sequential([Dense(1, input_dim=1, kernel_initializer=mg.initializers.Constant(-1.0),
                              bias_initializer=mg.initializers.Constant(-0.5)),
                        Activation("relu")])
    model.compile(optimizer="sgd", loss="mse")
    caught = _fit_and_catch(model, X1, Y1, [cb.DeadUnitMonitor()], epochs=2, batch_size=50)
    assert [w.category for w in caught] == [cb.DeadUnitWarning]
    w = caught[0]
    assert w.filename == __file__ and w.lineno == _fit_line()
    message = str(w.message)
    layer = model.layers[1].name
    assert f"layer {layer!r} (relu; 1 of 1)" in message
    assert "every one of the 200 samples checked" in message
    assert "leaky_relu" in message and "try relu" not in message.lower()


def test_vanishing_warning_on_a_sigmoid_net_advises_relu_and_points_at_fit():
    mg.manual_seed(0)
    layers = [Dense(16, activation="sigmoid", input_dim=2)]
    layers += [Dense(16, activation="sigmoid") for _ in range(8)]
    model = Sequential([*layers, Dense(1, activation="sigmoid")])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy")
    caught = _fit_and_catch(model, X2, Y2, [cb.GradientMonitor()], epochs=2, batch_size=20)
    vanishing = [w for w in caught if w.category is cb.VanishingGradientWarning]
    assert vanishing
    for w in vanishing:
        assert w.filename == __file__ and w.lineno == _fit_line()
    first = model.layers[0].name
    message = next(str(w.message) for w in vanishing if repr(first) in str(w.message))
    assert f"layer {first!r} (sigmoid)" in message
    assert "median norm of its weights' gradients" in message
    assert "sigmoid saturates" in message and "relu or leaky_relu" in message


def test_vanishing_warning_on_a_relu_net_does_not_advise_relu():
    mg.manual_seed(0)
    layers = [Dense(8, activation="relu", input_dim=2,
                    kernel_initializer=mg.initializers.RandomNormal(stddev=0.01))]
    layers += [Dense(8, activation="relu",
                     kernel_initializer=mg.initializers.RandomNormal(stddev=0.01))
               for _ in range(5)]
    model = Sequential([*layers, Dense(1)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.01), loss="mse")
    caught = _fit_and_catch(model, X2, Y2, [cb.GradientMonitor()], epochs=1, batch_size=20)
    vanishing = [str(w.message) for w in caught if w.category is cb.VanishingGradientWarning]
    assert vanishing, "tiny weights in a 7-layer relu net must make the first layers vanish"
    for message in vanishing:
        assert "(relu)" in message
        assert "leaky_relu or elu" in message and "lower learning rate" in message
        assert "try relu" not in message


def test_advice_by_activation():
    assert "try relu or leaky_relu" in cb._vanish_advice("tanh")
    assert "leaky_relu or elu" in cb._vanish_advice("relu")
    assert "relu" not in cb._vanish_advice("elu").replace("leaky_relu", "")
    assert "layers above it" in cb._vanish_advice("linear")
    layers = Sequential([Dense(4, input_dim=2), Activation("tanh"), Dense(1)]).layers
    assert cb._activation_of(layers, 0) == "tanh" and cb._activation_of(layers, 2) == "linear"


def test_exploding_warning_points_at_fit():
    mg.manual_seed(0)
    model = Sequential([Dense(8, activation="relu", input_dim=2), Dense(1)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.5), loss="mse")
    caught = _fit_and_catch(model, X2 * 100, Y2 * 1000, [cb.GradientMonitor()], epochs=1,
                            batch_size=20)
    exploding = [w for w in caught if w.category is cb.ExplodingGradientWarning]
    assert exploding and exploding[0].filename == __file__
    assert exploding[0].lineno == _fit_line()
    assert "(threshold 1000)" in str(exploding[0].message)
