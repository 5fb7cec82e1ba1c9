"""The Keras names users reach for (issue 12, item 6): `lr`, the top-level names, the
one-batch methods, get_layer, steps_per_epoch, to_json/model_from_json, save's suffixes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import models
from microgradnet.layers import Dense, Dropout
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
    with pytest.warns(DeprecationWarning) as got:
        assert opt.lr == 0.125
    assert got[0].filename == __file__
    with pytest.warns(DeprecationWarning) as got:
        opt.lr = 0.5
    assert got[0].filename == __file__
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


# --------------------------------------------------------------------------- on_batch


@pytest.mark.parametrize("jit", ["auto", False])
def test_train_on_batch_is_the_step_fit_takes(jit):
    by_fit, by_batch = classifier(jit), classifier(jit)
    history = by_fit.fit(X, YC, batch_size=len(X), epochs=3, shuffle=False, verbose=0)
    losses = [by_batch.train_on_batch(X, YC) for _ in range(3)]
    # The loss before each update. NOTE: the captured step may report a batch's loss one
    # float32 ulp off the eager one (its weights are the same bits).
    if jit is False:
        assert losses == history.batch_history["loss"]
    np.testing.assert_allclose(losses, history.batch_history["loss"], rtol=1e-6)
    for a, b in zip(by_fit.get_weights(), by_batch.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the same bits
    assert by_batch.optimizer.iterations == 3


def test_train_on_batch_between_fits_continues_the_same_training():
    a, b = classifier(), classifier()
    a.fit(X, YC, batch_size=len(X), epochs=3, shuffle=False, verbose=0)
    b.fit(X, YC, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    b.train_on_batch(X, YC)
    b.fit(X, YC, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_one_batch_methods_return_what_keras_returns():
    model = classifier(metrics=["accuracy"])
    out = model.train_on_batch(X, YC)
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(v, float) for v in out)
    logs = model.train_on_batch(X, YC, return_dict=True)
    assert sorted(logs) == ["accuracy", "loss"]
    evaluated = model.evaluate(X, YC, batch_size=len(X), return_dict=True)
    tested = model.test_on_batch(X, YC, return_dict=True)
    assert tested == evaluated
    assert model.test_on_batch(X, YC) == [evaluated["loss"], evaluated["accuracy"]]
    before = model.get_weights()
    model.test_on_batch(X, YC)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # no update
    np.testing.assert_array_equal(model.predict_on_batch(X), model.predict(X))
    assert model.predict_on_batch(X[:0]).shape == (0, 1)
    plain = classifier()
    assert isinstance(plain.train_on_batch(X, YC), float)
    assert isinstance(plain.test_on_batch(X, YC), float)


def test_train_on_batch_takes_sample_and_class_weights():
    a, b = classifier(), classifier()
    a.train_on_batch(X, YC, class_weight={0: 1.0, 1: 3.0})
    b.train_on_batch(X, YC, sample_weight=np.where(YC[:, 0] > 0, 3.0, 1.0))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    unweighted = classifier()
    unweighted.train_on_batch(X, YC)
    assert not np.array_equal(unweighted.get_weights()[0], a.get_weights()[0])


def test_one_batch_methods_check_their_input():
    model = Sequential([Dense(1, input_dim=3)])
    with pytest.raises(ValueError, match=r"compile the model before calling train_on_batch"):
        model.train_on_batch(X, Y)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="train_on_batch: y is missing"):
        model.train_on_batch(X)
    with pytest.raises(ValueError, match="x and y have different lengths"):
        model.train_on_batch(X, Y[:3])
    with pytest.raises(ValueError, match="train_on_batch: x has no samples"):
        model.train_on_batch(X[:0], Y[:0])
    with pytest.raises(ValueError, match="test_on_batch: y is missing"):
        model.test_on_batch(X)
    with pytest.raises(ValueError, match="NaN"):
        model.test_on_batch(np.full((2, 3), np.nan), Y[:2])
    with pytest.raises(ValueError, match=r"\(None, 3\)"):
        model.predict_on_batch(np.ones((2, 4)))


# --------------------------------------------------------------------------- get_layer


def test_get_layer_by_name_and_index():
    model = Sequential([Dense(4, input_dim=3, name="hidden"), Dropout(0.1), Dense(1, name="out")])
    assert model.get_layer("hidden") is model.layers[0]
    assert model.get_layer(name="out") is model.layers[2]
    assert model.get_layer(index=1) is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[2]
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*'hidden'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="no layer at index 3: the model has 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="not both"):
        model.get_layer("hidden", 0)
    with pytest.raises(ValueError, match="give a layer name or an index"):
        model.get_layer()
    with pytest.raises(TypeError, match="index must be an int"):
        model.get_layer(index="0")


# --------------------------------------------------------------------------- steps_per_epoch


def test_steps_per_epoch_without_batch_size_splits_a_pass_into_that_many_batches():
    model = classifier(jit=False)
    history = model.fit(X, YC, steps_per_epoch=4, epochs=2, verbose=0)
    assert len(history.batch_history["loss"]) == 8  # batches of ceil(40 / 4) = 10
    assert history.epoch_ends == [4, 8]


@pytest.mark.parametrize("jit", ["auto", False])
def test_steps_per_epoch_goes_on_through_the_pass_as_keras(jit):
    # 40 samples in batches of 5: a pass is 8 batches; epochs of 4 batches take its halves.
    chunked, whole = classifier(jit), classifier(jit)
    h = chunked.fit(X, YC, batch_size=5, steps_per_epoch=4, epochs=4, shuffle=False, verbose=0)
    whole.fit(X, YC, batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert h.epoch_ends == [4, 8, 12, 16]
    for a, b in zip(chunked.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_steps_per_epoch_shuffles_each_pass_once():
    chunked = classifier(jit=False)
    mg.manual_seed(11)
    h = chunked.fit(X, YC, batch_size=5, steps_per_epoch=4, epochs=4, verbose=0)
    whole = classifier(jit=False)
    mg.manual_seed(11)
    whole.fit(X, YC, batch_size=5, epochs=2, verbose=0)
    assert len(h.batch_history["loss"]) == 16
    for a, b in zip(chunked.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_steps_per_epoch_that_does_not_divide_a_pass_warns_and_ends_epochs_at_its_end():
    model = classifier(jit=False)
    with pytest.warns(UserWarning, match="does not divide the 8 batches") as got:
        h = model.fit(X, YC, batch_size=5, steps_per_epoch=3, epochs=4, verbose=0)
    assert got[0].filename == __file__
    assert h.epoch_ends == [3, 6, 8, 11]  # the third epoch ends with the pass


def test_steps_per_epoch_is_checked():
    model = classifier()
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="steps_per_epoch must be a positive int"):
            model.fit(X, YC, steps_per_epoch=bad, verbose=0)
    with pytest.raises(ValueError, match=r"steps_per_epoch=9 is more than the 8 batches of 5"):
        model.fit(X, YC, batch_size=5, steps_per_epoch=9, verbose=0)
    with pytest.raises(ValueError, match=r"steps_per_epoch=30 is more than the 20 batches of 2"):
        model.fit(X, YC, steps_per_epoch=30, verbose=0)


# --------------------------------------------------------------------------- to_json


def test_to_json_round_trip(tmp_path):
    model = Sequential([mg.Input((3,)), Dense(4, activation="tanh", name="h",
                                             kernel_initializer="he_normal"),
                        Dropout(0.25, seed=3), Dense(2, activation="softmax")], name="net")
    text = model.to_json()
    spec = json.loads(text)
    assert spec == {"class_name": "Sequential", "config": model.get_config()}
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    stored = json.loads(str(np.load(tmp_path / "m.npz")["__meta__"]))
    assert stored["model"] == spec["config"]  # the same description the file holds
    again = models.model_from_json(text)
    assert isinstance(again, Sequential) and again.name == "net"
    assert again.to_json() == text
    assert [type(a) for a in again.layers] == [type(b) for b in model.layers]
    assert again.built and again.optimizer is None  # architecture only
    assert json.loads(model.to_json(indent=2)) == spec
    unbuilt = Sequential([Dense(3), Dense(1)])
    assert not models.model_from_json(unbuilt.to_json()).built


def test_model_from_json_refuses_what_to_json_did_not_write():
    with pytest.raises(ValueError, match="not valid JSON"):
        models.model_from_json("{nope")
    with pytest.raises(TypeError, match="JSON string"):
        models.model_from_json({"class_name": "Sequential"})
    for bad in ('{"class_name": "Functional", "config": {"layers": []}}', "[1, 2]",
                '{"class_name": "Sequential", "config": {"layers": 3}}',
                '{"class_name": "Sequential"}'):
        with pytest.raises(ValueError, match=r"expected \{\"class_name\": \"Sequential\""):
            models.model_from_json(bad)
    bad_layer = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "Dense", "config": {"units": 2, "name": "d0"}},
        {"class_name": "Conv2D", "config": {"name": "c"}}]}}
    with pytest.raises(ValueError, match=r"model_from_json: layer 1 \('c'\).*unknown layer class"):
        models.model_from_json(json.dumps(bad_layer))
    with pytest.raises(ValueError, match="layer 0"):
        models.model_from_json('{"class_name": "Sequential", "config": {"layers": [[1]]}}')


# --------------------------------------------------------------------------- save suffixes


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "m.hdf5", "m.pt", "m.KERAS", "m.weights.h5"])
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_save_refuses_suffixes_it_cannot_write(tmp_path, name, method):
    model = classifier()
    with pytest.raises(ValueError, match=rf"{method}: cannot write a '.*' file.*formats it "
                                         r"writes: \.npz"):
        getattr(model, method)(tmp_path / name)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


@pytest.mark.parametrize("name", ["m.npz", "m.NPZ", "model"])
def test_save_keeps_writing_npz_and_plain_names(tmp_path, name):
    model = classifier()
    model.save(tmp_path / name)
    model.save_weights(str(tmp_path / f"w-{name}"))
    again = mg.models.load_model(tmp_path / name)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
