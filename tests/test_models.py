"""Sequential: Keras behaviour, callbacks, History, saving, reproducibility and bad input."""

from __future__ import annotations

import csv
import os
import zipfile

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import callbacks as cb
from microgradnet.layers import Activation, Dense, Dropout
from microgradnet.models import Sequential, load_model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
YC = (X[:, :1] > 0).astype(np.float32)


def regressor(**dense) -> Sequential:
    model = Sequential([Dense(8, activation="tanh", input_dim=3, **dense), Dense(1)])
    model.compile(optimizer=mg.optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def classifier() -> Sequential:
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dropout(0.2),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


class Recorder(cb.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", self.model is not None))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_callback_order_counts_and_logs():
    mg.manual_seed(0)
    model = regressor()
    rec = Recorder()
    model.fit(X, Y, epochs=2, batch_size=30, verbose=0, callbacks=[rec], validation_split=0.25)
    steps = 2  # 48 training samples in batches of 30
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin"] + (["epoch_begin"] + ["batch_begin", "batch_end"] * steps
                                       + ["epoch_end"]) * 2 + ["train_end"]
    assert rec.calls[0] == ("train_begin", True)
    assert rec.calls[3] == ("batch_end", 0, ["loss", "mae"])
    assert rec.calls[6] == ("epoch_end", 0, ["loss", "mae", "val_loss", "val_mae"])


def test_history_per_epoch_and_per_batch():
    mg.manual_seed(0)
    model = regressor()
    history = model.fit(X, Y, epochs=3, batch_size=16, verbose=0,
                        validation_data=(X[:8], Y[:8]))
    assert history.epoch == [0, 1, 2]
    assert sorted(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 3 for v in history.history.values())
    assert len(history.batch_history["loss"]) == 3 * 4
    # The epoch loss is the sample-weighted mean of that epoch's batch losses.
    assert history.history["loss"][0] == pytest.approx(np.mean(history.batch_history["loss"][:4]))
    assert model.history is history


def test_training_reduces_the_loss_and_evaluate_predict_agree():
    mg.manual_seed(0)
    model = regressor()
    before = model.evaluate(X, Y)[0]
    model.fit(X, Y, epochs=60, batch_size=16, verbose=0)
    loss, mae = model.evaluate(X, Y)
    assert loss < before / 10
    pred = model.predict(X)
    assert pred.shape == (64, 1) and pred.dtype == np.float32
    assert loss == pytest.approx(float(np.mean((pred - Y) ** 2)), rel=1e-5)
    assert mae == pytest.approx(float(np.mean(np.abs(pred - Y))), rel=1e-5)
    assert model.evaluate(X, Y, return_dict=True).keys() == {"loss", "mae"}
    np.testing.assert_allclose(model(mg.tensor(X)).numpy(), pred, rtol=1e-6)


def test_fused_sigmoid_crossentropy_in_fit_matches_the_formula():
    mg.manual_seed(0)
    model = classifier()
    model.fit(X, YC, epochs=30, batch_size=16, verbose=0)
    loss, acc = model.evaluate(X, YC)
    p = np.clip(model.predict(X), 1e-7, 1 - 1e-7)
    expected = -np.mean(YC * np.log(p) + (1 - YC) * np.log(1 - p))
    assert loss == pytest.approx(expected, rel=1e-4)
    assert acc == pytest.approx(np.mean((p > 0.5) == (YC > 0.5)))
    assert acc > 0.9


def test_softmax_classifier_with_sparse_labels():
    mg.manual_seed(0)
    labels = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0).astype(np.int64)
    model = Sequential([Dense(16, activation="relu", input_dim=3),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, labels, epochs=80, batch_size=16, verbose=0)
    assert model.evaluate(X, labels)[1] > 0.9
    np.testing.assert_allclose(model.predict(X).sum(axis=1), 1, rtol=1e-5)


def test_seeded_runs_are_identical_to_the_bit():
    runs = []
    for _ in range(2):
        mg.manual_seed(42)
        model = classifier()  # glorot draws, dropout masks and shuffling all seeded
        model.fit(X, YC, epochs=3, batch_size=10, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_validation_split_takes_the_last_samples():
    mg.manual_seed(0)
    model = regressor()
    history = model.fit(X, Y, epochs=1, validation_split=0.25, verbose=0, shuffle=False)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(X[48:], Y[48:])[0], rel=1e-5)


def test_class_weight_equals_the_matching_sample_weight():
    weights = []
    for kw in ({"class_weight": {0: 1.0, 1: 3.0}}, {"sample_weight": np.where(YC[:, 0], 3.0, 1.0)}):
        mg.manual_seed(1)
        model = classifier()
        model.fit(X, YC, epochs=2, batch_size=16, verbose=0, **kw)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_initial_epoch_and_defaults():
    mg.manual_seed(0)
    model = regressor()
    history = model.fit(X, Y, epochs=3, initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]
    assert len(history.batch_history["loss"]) == 2 * 2  # default batch_size 32
    m = Sequential([Dense(1, input_dim=1)])
    m.compile(loss="mse")
    assert type(m.optimizer).__name__ == "RMSprop"


def test_progress_output(capsys):
    mg.manual_seed(0)
    model = regressor()
    model.fit(X, Y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 2 and "loss:" in out and "mae:" in out
    model.fit(X, Y, epochs=1, verbose=1)
    captured = capsys.readouterr()
    assert "Epoch" not in captured.out and "2/2" in captured.out  # one epoch: no header (Keras)
    model.fit(X, Y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_summary(capsys):
    model = regressor()
    model.summary()
    out = capsys.readouterr().out
    assert "(None, 8)" in out and "(None, 1)" in out
    assert "Total params: 41" in out and "Trainable params: 41" in out


# --------------------------------------------------------------------------- callbacks


def test_early_stopping_and_restore_best_weights():
    mg.manual_seed(0)
    model = regressor()
    losses = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])
    best = {}

    class FakeVal(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            if epoch == 1:
                best["weights"] = self.model.get_weights()

    stop = cb.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(X, Y, epochs=8, verbose=0, callbacks=[FakeVal(), stop])
    assert history.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3
    for a, b in zip(model.get_weights(), best["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_best_only(tmp_path):
    mg.manual_seed(0)
    model = regressor()
    path = str(tmp_path / "ckpt-{epoch:02d}.npz")
    model.fit(X, Y, epochs=3, verbose=0, validation_data=(X, Y),
              callbacks=[cb.ModelCheckpoint(path, save_best_only=True)])
    files = sorted(os.listdir(tmp_path))
    assert files == ["ckpt-01.npz", "ckpt-02.npz", "ckpt-03.npz"]  # val_loss fell each epoch
    restored = load_model(tmp_path / "ckpt-03.npz")
    for a, b in zip(restored.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_and_reduce_on_plateau():
    mg.manual_seed(0)
    model = regressor()
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[
        cb.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 / 3)

    stalls = cb.ReduceLROnPlateau(monitor="flat", factor=0.5, patience=1, min_lr=0.01)

    class Flat(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["flat"] = 1.0

    model.optimizer.learning_rate = 0.08
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[Flat(), stalls])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_terminate_on_nan_names_where_it_started(capsys):
    mg.manual_seed(0)
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=1e6), loss="mse")
    term = cb.TerminateOnNaN()
    history = model.fit(X * 100, Y, epochs=50, batch_size=8, verbose=0, callbacks=[term])
    assert term.reason is not None and "invalid loss" in term.reason
    assert "dense" in term.reason
    assert len(history.batch_history["loss"]) < 50 * 8
    assert not np.isfinite(history.batch_history["loss"][-1])


def test_csv_logger_and_lambda_callback(tmp_path):
    mg.manual_seed(0)
    model = regressor()
    seen = []
    path = tmp_path / "log.csv"
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[
        cb.CSVLogger(str(path)),
        cb.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(logs["loss"]))])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "mae"] and len(rows) == 3
    assert len(seen) == 4
    assert seen == model.history.batch_history["loss"]


# --------------------------------------------------------------------------- saving


def test_save_and_load_model_round_trip_to_the_bit(tmp_path):
    mg.manual_seed(0)
    model = classifier()
    model.fit(X, YC, epochs=2, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    assert [f for f in os.listdir(tmp_path) if f != "model.npz"] == []  # no temp file left
    restored = load_model(path)
    assert [type(layer).__name__ for layer in restored.layers] == ["Dense", "Dropout", "Dense"]
    for a, b in zip(restored.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert type(restored.optimizer).__name__ == "SGD"
    assert float(restored.optimizer.learning_rate) == pytest.approx(0.1)
    assert restored.evaluate(X, YC) == pytest.approx(model.evaluate(X, YC))
    restored.fit(X, YC, epochs=1, verbose=0)  # ready to train further


def test_save_and_load_weights(tmp_path):
    mg.manual_seed(0)
    a, b = regressor(), regressor()
    a.fit(X, Y, epochs=1, verbose=0)
    a.save_weights(tmp_path / "w.npz")
    b.load_weights(tmp_path / "w.npz")
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


def test_loading_another_architecture_fails_and_changes_nothing(tmp_path):
    mg.manual_seed(0)
    regressor().save_weights(tmp_path / "w.npz")
    other = Sequential([Dense(5, activation="tanh", input_dim=3), Dense(1)])
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"'dense\w*/kernel'.*\(3, 5\).*\(3, 8\)"):
        other.load_weights(tmp_path / "w.npz")
    for u, v in zip(before, other.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    deeper = Sequential([Dense(8, input_dim=3), Activation("tanh"), Dense(1)])
    with pytest.raises(ValueError, match="weights for 2 layers, the model has 3"):
        deeper.load_weights(tmp_path / "w.npz")


def test_damaged_and_foreign_files_give_clear_errors(tmp_path):
    mg.manual_seed(0)
    model = regressor()
    path = tmp_path / "m.npz"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged"):
        load_model(tmp_path / "cut.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a microgradnet file"):
        model.load_weights(tmp_path / "plain.npz")
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as z:  # an object array needs a pickle
        import io
        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        z.writestr("__meta__.npy", buf.getvalue())
    with pytest.raises(ValueError, match="damaged"):
        load_model(tmp_path / "evil.npz")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    model = regressor()
    with pytest.raises(ValueError, match="different lengths: 64 and 10"):
        model.fit(X, Y[:10], verbose=0)
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(64, 4\)"):
        model.fit(np.ones((64, 4)), Y, verbose=0)
    with pytest.raises(ValueError, match=r"y of shape \(64, 2\) does not fit .*\(None, 1\)"):
        model.fit(X, np.ones((64, 2)), verbose=0)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values .*row 5"):
        model.fit(bad, Y, verbose=0)
    with pytest.raises(TypeError):
        model.fit(np.array([["a", "b", "c"]]), Y[:1], verbose=0)
    fresh = Sequential([Dense(1, input_dim=3)])
    with pytest.raises(ValueError, match="compile the model before calling fit"):
        fresh.fit(X, Y)
    with pytest.raises(ValueError, match="unknown loss 'l2loss'; known:"):
        fresh.compile(loss="l2loss")
    with pytest.raises(ValueError, match="known names: .*adam.*sgd"):
        fresh.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="unknown metric"):
        fresh.compile(loss="mse", metrics=["acc2"])
    with pytest.raises(TypeError, match="Layer"):
        fresh.add("dense")


@pytest.mark.parametrize("metrics,key", [
    (["accuracy", "accuracy"], "accuracy"), (["mae", "mae"], "mae"),
    ([lambda t, p: np.abs(p - t).mean(axis=-1)] * 2, "<lambda>"),
])
def test_a_metric_given_twice_is_refused_rather_than_summed_twice(metrics, key):
    # Each metric logs under its name: a second one of a name summed into the same key and
    # reported twice the epoch's value.
    model = Sequential([Dense(1, activation="sigmoid", input_dim=2)])
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match=f"two metrics would log as '{key}'"):
        model.compile(loss="binary_crossentropy", metrics=metrics)
    assert [name for name, _ in model.metrics] == ["accuracy"]  # a refused compile changes nothing


def test_a_metric_named_loss_is_refused():
    def loss(t, p):
        return (p - t).mean(axis=-1)

    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(ValueError, match="the loss's own key"):
        model.compile(loss="mse", metrics=[loss])


# --------------------------------------------------------------------------- review fixes


def test_compile_takes_a_learning_rate_schedule(tmp_path):
    mg.manual_seed(0)
    model = Sequential([Dense(1, input_dim=3)])
    rates = []

    def schedule(step):
        rates.append(step)
        return 0.1 / (1 + step)

    model.compile(optimizer=mg.optimizers.SGD(learning_rate=schedule), loss="mse")
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    assert model.optimizer.iterations == 4 and rates[:4] == [0, 1, 2, 3]
    # A callable cannot be written as JSON: the model is saved without its compile state.
    with pytest.warns(UserWarning, match="without the compile settings.*callable"):
        model.save(tmp_path / "m.npz")
    restored = load_model(tmp_path / "m.npz")
    assert restored.optimizer is None
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def _early_stopping_run(values, **kwargs):
    mg.manual_seed(0)
    model = regressor()
    values = iter(values)
    snapshots = []

    class FakeVal(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)
            snapshots.append(self.model.get_weights())

    stop = cb.EarlyStopping(**kwargs)
    history = model.fit(X, Y, epochs=8, verbose=0, callbacks=[FakeVal(), stop])
    return model, stop, history, snapshots


def test_early_stopping_baseline_gates_the_wait_not_the_best():
    # Never below the baseline 0.1: stop after `patience` epochs, restoring the best epoch
    # seen (epoch 1), which the old code never recorded because the baseline started as best.
    model, stop, history, snaps = _early_stopping_run(
        [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1], patience=2, baseline=0.1,
        restore_best_weights=True)
    assert history.epoch == [0, 1, 2]
    assert stop.best == 0.5 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), snaps[1], strict=True):
        np.testing.assert_array_equal(a, b)
    # Epochs that improve but stay above the baseline do not reset the wait: at the first
    # epoch without improvement, patience has run out (without a baseline: 2 epochs later).
    values = [1.0, 0.9, 0.8, 0.85, 0.84, 0.83, 0.82, 0.81]
    _, stop, history, _ = _early_stopping_run(values, patience=3, baseline=0.1)
    assert history.epoch == [0, 1, 2, 3] and stop.best == 0.8
    _, stop, history, _ = _early_stopping_run(values, patience=3)
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    # Beating the baseline resets the wait as usual; mode "max" starts at -inf.
    _, stop, history, _ = _early_stopping_run(
        [0.05, 0.04, 0.03, 0.02, 0.01, 0.009, 0.008, 0.007], patience=1, baseline=0.1)
    assert history.epoch == list(range(8))
    _, stop, history, _ = _early_stopping_run(
        [-5.0, -4.0, -6.0, -7.0, 0, 0, 0, 0], patience=1, mode="max")
    assert stop.best == -4.0 and history.epoch == [0, 1, 2]


def test_validation_runs_for_an_epoch_stopped_mid_way():
    class StopAtSecondBatch(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    mg.manual_seed(0)
    model = regressor()
    rec = Recorder()
    history = model.fit(X, Y, epochs=3, batch_size=8, verbose=0, validation_data=(X, Y),
                        callbacks=[StopAtSecondBatch(), rec])
    assert history.epoch == [0]
    assert rec.calls[-2] == ("epoch_end", 0, ["loss", "mae", "val_loss", "val_mae"])
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(X, Y)[0])
    assert history.epoch_ends == [2]


def test_model_checkpoint_filepath_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.npz.*m\.h5'"):
        cb.ModelCheckpoint(str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        cb.ModelCheckpoint(tmp_path / "m.keras")
    model = regressor()
    ckpt = cb.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.npz"), monitor="loss")
    with pytest.raises(ValueError, match=r"cannot fill in .*'val_acc'.*: loss, mae"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[ckpt])


def test_model_set_weights_and_load_weights_check_values_first(tmp_path):
    mg.manual_seed(0)
    model = regressor()
    before = model.get_weights()
    bad = [w.copy() for w in before]
    bad[2] = np.full_like(bad[2], np.nan)  # the second layer's kernel; the first one is fine
    with pytest.raises(ValueError, match=r"layer 'dense\w*': weight 'dense\w*/kernel' has NaN"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="real numbers"):
        model.set_weights([*before[:3], np.array(["x"])])
    # A file whose arrays are not finite (or not numbers) is refused, naming file and layer.
    path = tmp_path / "w.npz"
    model.save_weights(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["layer1/0"] = np.full_like(arrays["layer1/0"], np.inf)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"w\.npz: layer 'dense\w*'.*NaN or infinite"):
        model.load_weights(path)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def _rewrite_meta(path, edit):
    import json

    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    edit(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(layers={"a": 1}), "'layers' must be a list"),
    (lambda m: m["layers"][1].pop("weights"), r"layer 1 \('dense\w*'\) needs a weight count"),
    (lambda m: m["layers"].__setitem__(0, 7), "layer 0 must be an object"),
    (lambda m: m["model"]["layers"][0].pop("class_name"),
     r"layer 0 \('dense\w*'\) needs a string class_name"),
    (lambda m: m["model"]["layers"][1]["config"].update(units="many"),
     r"layer 1 \('dense\w*'\) cannot be made from its config: .*units"),
    (lambda m: m["model"]["layers"][1]["config"].update(colour="red"),
     r"layer 1 \('dense\w*'\) cannot be made from its config: .*colour"),
    (lambda m: m["model"]["layers"][0].update(config=[1, 2]),
     r"the config of layer 0 \('dense\w*'\) must be an object"),
    (lambda m: m["model"]["layers"][0]["config"].pop("input_shape"), "cannot be built"),
    (lambda m: m["model"].update(layers=m["model"]["layers"][:1]),
     "the model has 1 layers, the weights are for 2"),
    (lambda m: m["compile"].update(optimizer="sgd"), "'optimizer' object"),
    (lambda m: m["compile"].update(metrics="mae"), "metrics must be a list"),
    (lambda m: m["compile"]["optimizer"]["config"].update(learning_rate="fast"),
     "malformed compile settings"),
])
def test_malformed_descriptions_give_value_errors_naming_file_and_layer(tmp_path, edit, match):
    path = tmp_path / "m.npz"
    regressor().save(path)
    _rewrite_meta(path, edit)
    with pytest.raises(ValueError, match=rf"m\.npz: .*{match}"):
        load_model(path)


def test_evaluate_and_predict_check_batch_size_and_empty_input():
    model = regressor()
    for bad in (0, -1, 2.5, "8", True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.predict(X, batch_size=bad)
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.evaluate(X, Y, batch_size=bad)
    empty = model.predict(np.zeros((0, 3), np.float32))
    assert empty.shape == (0, 1) and empty.dtype == np.float32
    with pytest.raises(ValueError, match="no samples"):
        model.evaluate(np.zeros((0, 3)), np.zeros((0, 1)))


def test_saving_a_custom_activation_named_like_a_builtin_fails(tmp_path):
    def relu(t):  # not the built-in relu: it would be loaded back as one
        return mg.tanh(t)

    model = Sequential([Dense(2, activation=relu, input_dim=3), Dense(1)])
    with pytest.raises(ValueError, match=r"activation 'relu' is a custom callable"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_lambda_callback_takes_the_keras3_batch_hook_names():
    mg.manual_seed(0)
    model = regressor()
    seen = []

    class Keras3Style(cb.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(("subclass begin", batch))

    lam = cb.LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(("begin", batch)),
                            on_train_batch_end=lambda batch, logs: seen.append(("end", batch)))
    model.fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[Keras3Style(), lam])
    assert seen == [("subclass begin", 0), ("begin", 0), ("end", 0),
                    ("subclass begin", 1), ("begin", 1), ("end", 1)]
    with pytest.raises(ValueError, match="not both"):
        cb.LambdaCallback(on_batch_end=print, on_train_batch_end=print)


def test_one_dimensional_x_for_a_one_feature_model():
    mg.manual_seed(0)
    x = np.linspace(-1, 1, 20, dtype=np.float32)
    model = Sequential([Dense(1, input_dim=1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, 2 * x, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.predict(x), model.predict(x.reshape(-1, 1)))
    assert model.evaluate(x, 2 * x) == model.evaluate(x.reshape(-1, 1), 2 * x)
    three = Sequential([Dense(1, input_dim=3)])
    with pytest.raises(ValueError, match=r"x is 1-D .*\(None, 3\).*x\.reshape\(1, -1\)"):
        three.predict(np.ones(3))
    unknown = Sequential([Dense(1)])
    with pytest.raises(ValueError, match="x is 1-D .*does not know its input shape"):
        unknown.predict(np.ones(3))


def test_fit_closes_files_and_resets_state_when_training_fails(tmp_path):
    class Boom(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("boom")

    model = regressor()
    logger = cb.CSVLogger(str(tmp_path / "log.csv"))
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(X, Y, epochs=3, verbose=1, callbacks=[logger, Boom()])
    assert logger._file is None
    assert model.train_inputs is None
    rows = list(csv.reader(open(tmp_path / "log.csv")))
    assert len(rows) == 3  # header, epochs 0 and 1


def test_saved_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        model = regressor()
        model.save(tmp_path / "m.npz")
        model.save_weights(tmp_path / "w.npz")
    finally:
        os.umask(old)
    for name in ("m.npz", "w.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o640


def test_metrics_of_a_fused_sigmoid_use_the_kernel():
    import warnings

    model = Sequential([Dense(1, activation="sigmoid", input_dim=1)])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    model.set_weights([np.array([[1000.0]]), np.array([0.0])])
    x, y = np.array([[-1.0], [1.0]]), np.array([[0.0], [1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 1 / (1 + exp(-z)) overflows at z = -1000
        loss, acc = model.evaluate(x, y)
    assert acc == 1.0 and loss == pytest.approx(0.0, abs=1e-6)


def test_sample_weight_is_one_value_per_sample():
    mg.manual_seed(0)
    weights = []
    for sw in (np.arange(64.0), np.arange(64.0).reshape(64, 1)):
        mg.manual_seed(0)
        model = regressor()
        model.fit(X, Y, epochs=1, verbose=0, sample_weight=sw)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for bad in (np.ones((1, 64)), np.ones((32, 2))):
        with pytest.raises(ValueError, match=r"sample_weight must have shape \(64,\) or \(64, 1\)"):
            regressor().fit(X, Y, verbose=0, sample_weight=bad)
