"""Watching training: recorders, monitors and pictures (headless; files really written)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

import microgradnet as mg
from microgradnet import callbacks as cb
from microgradnet.initializers import Constant
from microgradnet.layers import Activation, Dense
from microgradnet.models import Sequential

X1 = np.linspace(0, 2, 200).reshape(-1, 1).astype(np.float32)
Y1 = (np.concatenate([np.zeros(100), X1[:100, 0]]) * 2).reshape(-1, 1).astype(np.float32)
RNG = np.random.default_rng(0)
X2 = RNG.normal(size=(200, 2)).astype(np.float32)
Y2 = (X2[:, :1] * X2[:, 1:] > 0).astype(np.float32)


def neuron(w=0.5, b=0.1) -> Sequential:
    model = Sequential([Dense(1, input_dim=1, kernel_initializer=Constant(w),
                              bias_initializer=Constant(b)), Activation("relu")])
    model.compile(optimizer="sgd", loss="mse")
    return model


def train_with(model, x, y, callbacks, epochs=20, batch_size=50):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                            callbacks=callbacks)
    return history, [w for w in caught if issubclass(w.category, cb.TrainingWarning)]


def _frames(path) -> list[np.ndarray]:
    im = Image.open(path)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    return frames


# --------------------------------------------------------------------------- recorders


def test_prediction_recorder_snapshots_and_losses():
    mg.manual_seed(0)
    rec = cb.PredictionRecorder(X1, every=10)
    train_with(neuron(), X1, Y1, [rec], epochs=20)  # 80 steps
    assert rec.steps == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert len(rec.predictions) == 9 and rec.predictions[0].shape == (200, 1)
    assert len(rec.losses) == 80
    assert not np.array_equal(rec.predictions[0], rec.predictions[-1])
    by_epoch = cb.PredictionRecorder(X1, every=5, unit="epoch")
    train_with(neuron(), X1, Y1, [by_epoch], epochs=10)
    assert by_epoch.steps == [0, 20, 40]


def test_weight_recorder():
    mg.manual_seed(0)
    rec = cb.WeightRecorder(every=2, unit="epoch")
    model = neuron()
    train_with(model, X1, Y1, [rec], epochs=4)
    assert rec.names == ["dense/kernel", "dense/bias"] or rec.names[0].endswith("/kernel")
    assert len(rec.weights) == 3 and rec.steps == [0, 8, 16]
    np.testing.assert_array_equal(rec.weights[-1][0], model.get_weights()[0])
    assert rec.weights[0][0][0, 0] == pytest.approx(0.5)


def test_bad_recorder_arguments():
    with pytest.raises(ValueError, match="every"):
        cb.PredictionRecorder(X1, every=0)
    with pytest.raises(ValueError, match="unit"):
        cb.WeightRecorder(unit="step")


# --------------------------------------------------------------------------- monitors


def test_dead_unit_monitor_catches_the_dying_relu_neuron():
    monitor = cb.DeadUnitMonitor()
    _, caught = train_with(neuron(w=-1.0, b=-0.5), X1, Y1, [monitor], epochs=3)
    assert [type(w.message) for w in caught] == [cb.DeadUnitWarning]
    message = str(caught[0].message)
    assert "100%" in message and "activation" in message
    assert "he_normal" in message and "leaky_relu" in message and "learning rate" in message
    assert list(monitor.fractions.values())[0] == [1.0, 1.0, 1.0]


def test_monitors_stay_silent_on_healthy_nets():
    mg.manual_seed(0)
    _, caught = train_with(neuron(), X1, Y1, [cb.DeadUnitMonitor(), cb.GradientMonitor()])
    assert caught == []
    mg.manual_seed(0)
    model = Sequential([Dense(16, activation="relu", input_dim=2), Dense(16, activation="relu"),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy")
    grads = cb.GradientMonitor()
    _, caught = train_with(model, X2, Y2, [cb.DeadUnitMonitor(), grads], epochs=10,
                           batch_size=20)
    assert caught == []
    assert sorted(grads.norms) == sorted(layer.name for layer in model.layers)
    assert all(len(v) == 100 for v in grads.norms.values())


def test_gradient_monitor_warns_on_a_deep_sigmoid_net():
    mg.manual_seed(0)
    layers = [Dense(16, activation="sigmoid", input_dim=2)]
    layers += [Dense(16, activation="sigmoid") for _ in range(8)]
    model = Sequential([*layers, Dense(1, activation="sigmoid")])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy")
    monitor = cb.GradientMonitor()
    _, caught = train_with(model, X2, Y2, [monitor], epochs=2, batch_size=20)
    vanishing = [w for w in caught if w.category is cb.VanishingGradientWarning]
    assert vanishing, "a 10-layer sigmoid net must trigger the vanishing-gradient warning"
    first = model.layers[0].name
    assert any(repr(first) in str(w.message) for w in vanishing)
    norms = monitor.norms
    assert np.median(norms[first]) < 1e-3 * np.median(norms[model.layers[-1].name])


def test_gradient_monitor_warns_on_exploding_gradients():
    mg.manual_seed(0)
    model = Sequential([Dense(8, activation="relu", input_dim=2), Dense(1)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.5), loss="mse")
    _, caught = train_with(model, X2 * 100, Y2 * 1000, [cb.GradientMonitor()], epochs=1,
                           batch_size=20)
    assert any(w.category is cb.ExplodingGradientWarning for w in caught)
    assert "clipnorm" in str(next(w for w in caught
                                  if w.category is cb.ExplodingGradientWarning).message)


# --------------------------------------------------------------------------- pictures


@pytest.fixture(scope="module")
def recorded():
    mg.manual_seed(0)
    model = neuron()
    rec = cb.PredictionRecorder(X1, every=40)
    weights = cb.WeightRecorder(every=40)
    grads = cb.GradientMonitor()
    history, _ = train_with(model, X1, Y1, [rec, weights, grads], epochs=50)  # 200 steps
    return model, rec, weights, grads, history


def test_animate_predictions_gif(recorded, tmp_path):
    _, rec, *_ = recorded
    path = mg.viz.animate_predictions(rec, X1, Y1, tmp_path / "n.gif", fps=10)
    frames = _frames(path)
    assert len(frames) == len(rec.predictions) == 6
    for frame in frames:
        assert frame.std() > 10  # not blank
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:], strict=False))


def test_animate_predictions_mp4(recorded, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    _, rec, *_ = recorded
    path = mg.viz.animate_predictions(rec, X1, Y1, str(tmp_path / "n.mp4"))
    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(path)
    assert frames == len(rec.predictions)


def test_animation_errors(recorded, tmp_path):
    _, rec, *_ = recorded
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        mg.viz.animate_predictions(rec, X1, Y1, tmp_path / "n.avi")
    with pytest.raises(ValueError, match="no predictions"):
        mg.viz.animate_predictions(cb.PredictionRecorder(X1), X1, Y1, tmp_path / "e.gif")


def test_plot_history_axes_and_lines(recorded):
    *_, history = recorded
    fig = mg.viz.plot_history(history)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["loss (batch)", "loss (epoch)"]
    assert len(ax.get_lines()[0].get_xdata()) == 200
    mg.manual_seed(0)
    model = Sequential([Dense(4, activation="relu", input_dim=2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(X2, Y2, epochs=3, verbose=0, validation_split=0.2)
    fig = mg.viz.plot_history(h)
    assert [ax.get_title() for ax in fig.axes] == ["training error", "accuracy"]
    assert "val_loss" in [line.get_label() for line in fig.axes[0].get_lines()]


def test_plot_history_puts_epoch_values_at_epoch_ends():
    class StopMidEpoch(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            if len(self.model.history.batch_history["loss"]) == 9:
                self.model.stop_training = True  # the third epoch ends after 1 of 4 batches

    mg.manual_seed(0)
    model = neuron()
    history = model.fit(X1, Y1, epochs=5, batch_size=50, verbose=0, shuffle=False,
                        validation_data=(X1, Y1), callbacks=[StopMidEpoch()])
    assert history.epoch_ends == [4, 8, 9]
    lines = {line.get_label(): line for line in mg.viz.plot_history(history).axes[0].get_lines()}
    for label in ("loss (epoch)", "val_loss"):
        np.testing.assert_array_equal(lines[label].get_xdata(), [4, 8, 9])
    # Plain dicts: a validation series shorter than the loss takes the last epochs' x.
    fig = mg.viz.plot_history({"loss": [3.0, 2.0, 1.0], "val_loss": [2.5, 1.5]})
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["val_loss"].get_xdata(), [2, 3])


def test_decision_boundary_plots(tmp_path):
    mg.manual_seed(0)
    model = Sequential([Dense(8, activation="tanh", input_dim=2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rec = cb.WeightRecorder(every=1, unit="epoch")
    model.fit(X2, Y2, epochs=3, verbose=0, callbacks=[rec])
    before = model.get_weights()
    fig = mg.viz.plot_decision_boundary(model, X2, Y2)
    assert len(fig.axes[0].collections) >= 2  # the filled regions and the data
    path = mg.viz.animate_decision_boundary(model, rec, X2, Y2, tmp_path / "b.gif")
    assert len(_frames(path)) == 4
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # weights put back
    with pytest.raises(ValueError, match="2 features"):
        mg.viz.plot_decision_boundary(model, np.zeros((3, 3)), np.zeros(3))


def test_comparison_grid_gradient_norms_and_weight_histograms(recorded):
    _, _, weights, grads, history = recorded
    runs = {("relu", "normal"): {"loss": [3, 2, 1], "accuracy": [0.5, 0.7, 0.9]},
            ("tanh", "normal"): {"loss": [3, 2.5, 2], "accuracy": [0.5, 0.6, 0.7]},
            ("relu", "zeros"): {"loss": [0.7, 0.7, 0.7], "accuracy": [0.5, 0.5, 0.5]}}
    fig = mg.viz.plot_comparison(runs)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["loss (normal)", "loss (zeros)",
                                                   "accuracy (normal)", "accuracy (zeros)"]
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[1].get_lines()) == 1
    fig = mg.viz.plot_gradient_norms(grads)
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].get_lines()) == 1
    fig = mg.viz.plot_weights(weights)
    assert len(fig.axes) == 2


def test_live_plot_redraws_every_n_epochs():
    mg.manual_seed(0)
    live = cb.LivePlot(every=2)
    train_with(neuron(), X1, Y1, [live], epochs=5)
    assert live.draws == 2
    assert live.figure is not None and live.figure.axes[0].get_title() == "training error"


def test_viz_is_imported_only_when_used(tmp_path):
    import subprocess
    import sys

    code = ("import sys, microgradnet as mg; print('microgradnet.viz' in sys.modules, "
            "'matplotlib' in sys.modules); mg.viz; print('microgradnet.viz' in sys.modules)")
    # From an empty folder, with the package under test (not a source tree) on the path.
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env).stdout.split()
    assert out == ["False", "False", "True"]


# --------------------------------------------------------------------------- sweeps


def _sweep_classifier(config):
    kernel = "zeros" if config["init"] == "zeros" else mg.initializers.RandomNormal(0.0, 1.0)
    model = Sequential([Dense(8, activation=config["activation"], input_dim=2,
                              kernel_initializer=kernel),
                        Dense(1, activation="sigmoid", kernel_initializer=kernel)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def _panel_pixels(fig, ax) -> np.ndarray:
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(np.int16)
    box = ax.get_window_extent()
    h = image.shape[0]
    return image[int(h - box.y1) + 2:int(h - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]


def test_plot_sweep_boundaries_curves_losses_heatmap(tmp_path):
    grid = mg.grid(activation=["relu", "tanh"], init=["random_normal", "zeros"])
    results = mg.sweep(_sweep_classifier, grid, X2, Y2, epochs=20, batch_size=32,
                       keep_weights=True, progress=False)
    fig = mg.viz.plot_sweep(results, row="activation", col="init", kind="boundary")
    panels = fig.axes[:4]
    assert [ax.get_title() for ax in panels] == [
        "activation=relu, init=random_normal", "activation=relu, init=zeros",
        "activation=tanh, init=random_normal", "activation=tanh, init=zeros"]
    assert all(len(ax.collections) >= 2 for ax in panels)  # regions and data
    # A net started from zeros answers the same everywhere: one flat colour under the
    # points; the trained one splits the plane.
    trained, flat = _panel_pixels(fig, panels[2]), _panel_pixels(fig, panels[3])
    colours = lambda px: len(np.unique(px.reshape(-1, 3) // 16, axis=0))  # noqa: E731
    assert colours(trained) > colours(flat) + 10
    fig.savefig(tmp_path / "boundary.png", dpi=50)
    assert Image.open(tmp_path / "boundary.png").size[0] > 100

    fig = mg.viz.plot_sweep(results, col="init", kind="loss", hue="activation")
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "activation=relu", "activation=tanh"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(),
                                  results[0].history["loss"])

    fig = mg.viz.plot_sweep(results, row="activation", col="init", kind="heatmap",
                            metric="accuracy")
    table = fig.axes[0].get_images()[0].get_array()
    assert table[1, 0] == results[2].metrics["accuracy"]
    assert table[0, 1] == results[1].metrics["accuracy"]

    x = np.linspace(-1, 1, 100, dtype=np.float32).reshape(-1, 1)
    y = np.sin(3 * x)

    def regressor(config):
        model = Sequential([Dense(config["units"], activation="tanh", input_dim=1), Dense(1)])
        model.compile(optimizer=config["optimizer"], loss="mse")
        return model

    curves = mg.sweep(regressor, mg.grid(units=[4, 16], optimizer=["sgd", "adam"]), x, y,
                      epochs=30, batch_size=20, keep_weights=True, progress=False)
    fig = mg.viz.plot_sweep(curves, row="units", col="optimizer", kind="curve")
    assert len(fig.axes) == 4
    model_line = fig.axes[3].get_lines()[0]
    mg.set_random_seed(0)
    rebuilt = regressor(curves[3].config)
    rebuilt.set_weights(curves[3].weights)
    grid_x = np.asarray(model_line.get_xdata(), dtype=np.float32).reshape(-1, 1)
    np.testing.assert_array_equal(model_line.get_ydata(), rebuilt.predict(grid_x)[:, 0])


def test_plot_sweep_says_what_is_missing(tmp_path):
    results = mg.sweep(_sweep_classifier, mg.grid(activation=["relu"], init=["zeros"]), X2, Y2,
                       epochs=1, progress=False)
    with pytest.raises(ValueError, match="keep_weights=True"):
        mg.viz.plot_sweep(results, row="activation", kind="boundary")
    with pytest.raises(ValueError, match="unknown kind 'bars'"):
        mg.viz.plot_sweep(results, kind="bars")
    with pytest.raises(ValueError, match="needs row= and col="):
        mg.viz.plot_sweep(results, kind="heatmap")
    with pytest.raises(ValueError, match="no run has config key 'lr'"):
        mg.viz.plot_sweep(results, row="lr")
    kept = mg.sweep(_sweep_classifier, mg.grid(activation=["relu"], init=["zeros"]), X2, Y2,
                    epochs=1, progress=False, keep_weights=True)
    kept.save(tmp_path / "r")
    with pytest.raises(ValueError, match=r"load\(path, build=build\)"):
        mg.viz.plot_sweep(mg.sweep.load(tmp_path / "r"), kind="boundary")
    fig = mg.viz.plot_sweep(mg.sweep.load(tmp_path / "r", build=_sweep_classifier),
                            kind="boundary")  # the data came back from the files too
    assert len(fig.axes[0].collections) >= 2
