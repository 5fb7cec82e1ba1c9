"""Docs and pictures (issue 12, item 10): the README's sections, perceptron.py --pictures,
labelled decision-boundary plots."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _load import load_script

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"the README has no section {title!r}"
    return match.group(1)


def test_readme_shows_how_to_watch_your_own_net_learn():
    text = _section("Watch your own net learn")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)  # run by test_readme.py
    assert len(blocks) == 1
    for name in ("PredictionRecorder", "WeightRecorder", "animate_predictions", "plot_history",
                 "plot_weights", "GradientMonitor", "DeadUnitMonitor"):
        assert name in blocks[0]
    assert "plot_decision_boundary" in text and "animate_decision_boundary" in text
    assert "Watch your own net learn" in (ROOT / "examples" / "README.md").read_text()


def test_readme_says_what_each_habit_of_issue_12_does_here():
    text = _section("Coming from Keras / PyTorch / numpy")
    habits = [
        "pip install .",  # 1: running from the clone
        "np.random.seed(n)", "set_random_seed",  # 2
        'animation.writers["ffmpeg"]',  # 3
        "w -= lr * w.grad", "zero_()",  # 4
        "np.exp(t)", "np.mean(t)", "np.dot", "np.clip",  # 5
        "SGD(lr=0.1)", "mg.Sequential", "train_on_batch", "test_on_batch", "predict_on_batch",
        "get_layer", "steps_per_epoch", "to_json", "model_from_json", 'save("m.h5")',  # 6
        "25/25 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - accuracy: 0.8525 - loss: 0.6148",  # 7
        "damaged", "point at your `fit` call",  # 8
    ]
    missing = [h for h in habits if h not in text]
    assert not missing


def test_perceptron_writes_its_picture(tmp_path, capsys):
    module = load_script(ROOT / "examples" / "perceptron.py", "example_perceptron_pictures")
    quick = module.main(["--quick"])
    results = module.main(["--quick", "--pictures", str(tmp_path)])
    path = tmp_path / "perceptron_training.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {path}" in capsys.readouterr().out
    # Recording the run for the picture does not change it.
    np.testing.assert_array_equal(quick["sigmoid"][0], results["sigmoid"][0])
    np.testing.assert_array_equal(quick["tanh"][0], results["tanh"][0])


def test_perceptron_records_its_run_for_the_picture(tmp_path):
    module = load_script(ROOT / "examples" / "perceptron.py", "example_perceptron_figure")
    trace: list = []
    module.delta_rule(mg.sigmoid, module.seed_weights(1), 20, trace=trace)
    assert len(trace) == 20 and trace[0][1].shape == (3,)
    assert trace[-1][0] < trace[0][0]  # the error falls
    module.plot_training({"sigmoid": trace}, str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.fixture
def boundary_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)
    mg.manual_seed(0)
    model = Sequential([Dense(8, activation="tanh", input_dim=2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rec = mg.callbacks.WeightRecorder(every=1, unit="epoch")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[rec])
    return model, rec, x, y


def test_decision_boundary_has_axis_labels_and_a_colorbar(boundary_model):
    model, _, x, y = boundary_model
    fig = mg.viz.plot_decision_boundary(model, x, y, resolution=30)
    ax, bar = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[:, 0]", "x[:, 1]")
    assert bar.get_ylabel() == "P(class 1)"
    fig = mg.viz.plot_decision_boundary(model, x, y, resolution=30, xlabel="width",
                                        ylabel="height")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("width", "height")


def test_decision_boundary_of_several_classes_names_the_class_on_its_colorbar():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    mg.manual_seed(0)
    model = Sequential([Dense(3, activation="softmax", input_dim=2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    fig = mg.viz.plot_decision_boundary(model, x, y, resolution=20)
    assert fig.axes[1].get_ylabel() == "predicted class"


def test_animated_decision_boundary_keeps_labels_and_one_colorbar(boundary_model, tmp_path,
                                                                   monkeypatch):
    model, rec, x, y = boundary_model
    figures = []
    from microgradnet import viz

    real = viz._save_animation

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(viz, "_save_animation", keep)
    mg.viz.animate_decision_boundary(model, rec, x, y, tmp_path / "b.gif", resolution=20)
    (fig,) = figures
    ax, bar = fig.axes  # one colorbar, not one per frame
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[:, 0]", "x[:, 1]")
    assert bar.get_ylabel() == "P(class 1)"
