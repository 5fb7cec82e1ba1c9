"""Accuracy inside the captured run (trainer_accuracy.pxi): fit and fit_many stay in C with
metrics=["accuracy"] and its kin, and give the metrics, the weights and the History the
batch-by-batch paths give, bit for bit; other metrics keep the batch-by-batch path."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import fastpath
from microgradnet import metrics as metrics_module
from microgradnet.callbacks import PredictionRecorder, WeightRecorder
from microgradnet.fastpath import batch_key, fit_many
from microgradnet.fastpath.step import CapturedStep
from microgradnet.layers import Dense
from microgradnet.losses import SparseCategoricalCrossentropy
from microgradnet.models import Sequential

trainer = pytest.importorskip("microgradnet._kernels.trainer")
opts = mg.optimizers


def _data(n, outputs, kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(dtype)
    if kind == "binary":
        y = (x[:, :1] * x[:, -1:] > 0).astype(dtype)
    elif kind == "onehot":
        y = np.eye(outputs, dtype=dtype)[np.argmax(x @ rng.normal(size=(3, outputs)), axis=1)]
    elif kind == "labels":
        y = np.argmax(x @ rng.normal(size=(3, outputs)), axis=1)
    else:
        y = (x[:, :outputs] > 0).astype(dtype)  # 0/1 targets of a regression (mse)
    return x, y


# name: (output units, output activation, loss, data kind, metrics)
CASES = {
    "binary": (1, "sigmoid", "binary_crossentropy", "binary", ["accuracy"]),
    "binary-names": (1, "sigmoid", "binary_crossentropy", "binary",
                     ["binary_accuracy", "acc"]),
    "binary-mse": (1, None, "mse", "regression", ["binary_accuracy"]),
    "categorical": (3, "softmax", "categorical_crossentropy", "onehot",
                    ["accuracy", "categorical_accuracy"]),
    "sparse-logits": (4, None, SparseCategoricalCrossentropy(from_logits=True), "labels",
                      ["sparse_categorical_accuracy", "accuracy"]),
}


def _model(case, dtype, jit="auto", seed=5):
    units, activation, loss, _, names = CASES[case]
    model = Sequential([Dense(6, activation="tanh", input_dim=3),
                        Dense(units, activation=activation)])
    model.build((None, 3))
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data = rng.uniform(-0.9, 0.9, p.data.shape).astype(dtype)
    model.compile(optimizer=opts.SGD(learning_rate=0.3, momentum=0.5), loss=loss,
                  metrics=names, jit_compile=jit)
    return model


@pytest.fixture
def step_runs(monkeypatch):
    """The number of calls into the captured step (one per batch on the per-batch path)."""
    calls = []
    run = CapturedStep.run

    def counting(self, *args, **kwargs):
        calls.append(1)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(CapturedStep, "run", counting)
    return calls


def _fit(model, x, y, seed=0, **fit):
    # FITS' steps_per_epoch does not divide a pass (on purpose: an epoch then ends a pass
    # early), which fit says as Keras does.
    said = (pytest.warns(UserWarning, match="does not divide") if "steps_per_epoch" in fit
            else contextlib.nullcontext())
    with said, mg.random.using_generator(np.random.default_rng(seed)):
        return model.fit(x, y, verbose=0, **fit)


def _assert_weights_same(a, b):
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        assert u.dtype == v.dtype and u.tobytes() == v.tobytes()


def _assert_history_same(eager, fast, names):
    """Every epoch and batch value (loss, metrics, val_*): the same floats, to the bit."""
    assert list(fast.history) == list(eager.history)
    assert list(fast.batch_history) == ["loss", *names] == list(eager.batch_history)
    assert all(k.removeprefix("val_") in names for k in eager.history if "loss" not in k)
    for logs_f, logs_e in ((fast.history, eager.history),
                           (fast.batch_history, eager.batch_history)):
        for k, values in logs_e.items():
            assert all(type(v) is float for v in logs_f[k]), k
            assert np.array(logs_f[k]).tobytes() == np.array(values).tobytes(), k
    assert fast.epoch == eager.epoch and fast.epoch_ends == eager.epoch_ends


FITS = {
    "shuffled": {"epochs": 3, "batch_size": 8},  # 37 samples: a short last batch
    "in-order": {"epochs": 2, "batch_size": 5, "shuffle": False},
    "one-batch": {"epochs": 2, "batch_size": 64},
    "steps-per-epoch": {"epochs": 4, "batch_size": 6, "steps_per_epoch": 4},
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fit", list(FITS))
@pytest.mark.parametrize("case", list(CASES))
def test_fit_counts_the_accuracies_in_c_with_the_eager_bits(case, fit, dtype, step_runs):
    x, y = _data(37, CASES[case][0], CASES[case][3], dtype)
    names = CASES[case][4]
    eager = _model(case, dtype, jit=False)
    he = _fit(eager, x, y, **FITS[fit])
    assert not step_runs
    fast = _model(case, dtype)
    assert fastpath.explain(fast) is None
    hf = _fit(fast, x, y, **FITS[fit])
    # one call into C for the whole run (one per epoch with steps_per_epoch), not per batch
    assert len(step_runs) == (FITS[fit]["epochs"] if "steps_per_epoch" in FITS[fit] else 1)
    _assert_weights_same(eager, fast)
    _assert_history_same(he, hf, names)


@pytest.mark.parametrize("case", ["binary", "sparse-logits"])
def test_validation_data_is_scored_by_evaluate_and_training_stays_per_epoch(case, step_runs):
    x, y = _data(45, CASES[case][0], CASES[case][3], np.float32)
    val = (x[37:], y[37:])
    eager = _model(case, np.float32, jit=False)
    he = _fit(eager, x[:37], y[:37], epochs=3, batch_size=8, validation_data=val)
    fast = _model(case, np.float32)
    hf = _fit(fast, x[:37], y[:37], epochs=3, batch_size=8, validation_data=val)
    assert len(step_runs) == 3
    assert "val_" + CASES[case][4][0] in hf.history
    _assert_weights_same(eager, fast)
    _assert_history_same(he, hf, CASES[case][4])


class _StopAtThirdSnapshot(PredictionRecorder):
    """Follows captured runs in Python (a subclass: not recorded in C); stops fit within an
    epoch at its third snapshot (14 batches)."""

    def snapshot(self):
        super().snapshot()
        if len(self.steps) == 3:  # the first is taken at the start
            self.model.stop_training = True


@pytest.mark.parametrize("case", ["binary", "categorical"])
def test_callbacks_that_follow_captured_runs_see_the_eager_logs(case, step_runs):
    x, y = _data(37, CASES[case][0], CASES[case][3], np.float32)
    runs = []
    for jit in (False, "auto"):
        model = _model(case, np.float32, jit=jit)
        recorders = [PredictionRecorder(x[:5], every=3), WeightRecorder(every=4),
                     _StopAtThirdSnapshot(x[:4], every=7)]
        h = _fit(model, x, y, epochs=3, batch_size=8, callbacks=recorders)
        runs.append((model, h, recorders))
    (eager, he, re), (fast, hf, rf) = runs
    assert len(step_runs) == 2  # live only where a recorder in Python looks at the model
    assert hf.epoch_ends == [5, 10, 14]  # stopped within the third epoch
    _assert_weights_same(eager, fast)
    _assert_history_same(he, hf, CASES[case][4])
    for a, b in zip(re[1].weights, rf[1].weights, strict=True):
        assert all(u.tobytes() == v.tobytes() for u, v in zip(a, b, strict=True))
    assert re[0].steps == rf[0].steps


def test_the_live_batch_logs_carry_the_metrics(step_runs):
    x, y = _data(37, 1, "binary", np.float64)
    seen = []
    for jit in (False, "auto"):
        model = _model("binary", np.float64, jit=jit)

        class Watch(PredictionRecorder):
            """Follows captured runs: sees the logs of the batches where it looks."""

            path = jit

            def _batch_logs(self, logs):
                self.live = dict(logs)

            def _batch_logs_bulk(self, losses):
                self.live = None

            live = None

            def snapshot(self):
                if self.live is not None:  # not at the start
                    seen.append((self.path, self.live))

        assert Watch(x, every=3).follows_captured_runs()
        _fit(model, x, y, epochs=2, batch_size=8, callbacks=[Watch(x, every=3)])
    eager = [logs for jit, logs in seen if jit is False]
    fast = [logs for jit, logs in seen if jit == "auto"]
    assert len(step_runs) == 4  # 10 batches: runs to 3, 6, 9 and 10
    assert len(fast) == 3 and all(set(logs) == {"loss", "accuracy"} for logs in fast)
    assert [logs["accuracy"] for logs in eager] == [logs["accuracy"] for logs in fast]


@pytest.mark.parametrize("metrics, why", [
    (["mae"], "metric 'mae'"),
    (["accuracy", "mse"], "metric 'mse'"),
    ([lambda t, p: np.ones(len(t))], "metric '<lambda>'"),
])
def test_other_metrics_keep_the_batch_by_batch_path(metrics, why, step_runs):
    x, y = _data(37, 1, "binary", np.float32)
    runs = []
    for jit in (False, "auto"):
        model = _model("binary", np.float32, jit=jit)
        model.compile(optimizer=opts.SGD(learning_rate=0.3), loss="binary_crossentropy",
                      metrics=metrics, jit_compile=jit)
        runs.append((model, _fit(model, x, y, epochs=2, batch_size=8)))
    assert len(step_runs) == 2 * 5  # one call per batch, as before
    (eager, he), (fast, hf) = runs
    assert fastpath.explain(fast) is None
    assert fastpath.counted_metrics(fast, fast._captured) is None
    got = fastpath.capture.counted_accuracies(fast.metrics, "sigmoid_bce", 1)
    assert isinstance(got, str) and why in got
    _assert_weights_same(eager, fast)
    names = list(dict.fromkeys(name for name, _ in fast.metrics))
    _assert_history_same(he, hf, names)
    key = batch_key(fast, x, y, {"epochs": 2, "batch_size": 8})
    assert key is None


def test_mae_still_trains_a_regressor_per_batch(step_runs):
    x, y = _data(40, 1, "regression", np.float32)
    model = _model("binary-mse", np.float32)
    model.compile(optimizer=opts.SGD(learning_rate=0.1), loss="mse", metrics=["mae"])
    h = _fit(model, x, y, epochs=20, batch_size=10)
    assert len(step_runs) == 20 * 4
    assert h.history["mae"][-1] < h.history["mae"][0]
    assert len(h.batch_history["mae"]) == 80
    pred = model.predict(x)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0, return_dict=True)["mae"],
                               np.abs(pred - y).mean(), rtol=1e-5)


@pytest.mark.parametrize("names, loss, units, kinds", [
    (["accuracy"], "sigmoid_bce", 1, ("binary",)),
    (["accuracy"], "mse", 3, ("categorical",)),
    (["accuracy"], "sparse_softmax_xent", 3, ("sparse_categorical",)),
    (["accuracy"], "sparse_softmax_xent", 1, ("binary",)),
    (["binary_accuracy", "categorical_accuracy"], "softmax_xent", 1,
     ("binary", "categorical")),
])
def test_counted_accuracies_resolve_accuracy_as_the_metric_does(names, loss, units, kinds):
    metrics = [metrics_module.get(n) for n in names]
    assert fastpath.capture.counted_accuracies(metrics, loss, units) == kinds


@pytest.mark.parametrize("names, loss, units", [
    (["binary_accuracy"], "mse", 2),  # a mean over columns, not 0 or 1
    (["categorical_accuracy"], "sparse_softmax_xent", 3),
    (["sparse_categorical_accuracy"], "softmax_xent", 3),
    (["accuracy"] * 9, "sigmoid_bce", 1),
])
def test_metrics_that_are_not_counted(names, loss, units):
    metrics = [metrics_module.get(n) for n in names]
    assert isinstance(fastpath.capture.counted_accuracies(metrics, loss, units), str)


# ---------------------------------------------------------------- the kernel itself
_PLAN_CASES = {
    # kind: (loss, units, top activation, output_logits, y kind)
    "binary": ("sigmoid_bce", 1, "linear", False, "binary"),
    "binary-mse": ("mse", 1, "sigmoid", False, "binary"),
    "binary-labels": ("sparse_softmax_xent", 1, "linear", False, "labels"),
    "categorical": ("softmax_xent", 4, "linear", False, "onehot"),
    "categorical-logits": ("softmax_xent", 4, "linear", True, "onehot"),
    "sparse_categorical": ("sparse_softmax_xent", 5, "linear", False, "labels"),
}
_REFERENCE = {"binary": metrics_module.binary_accuracy,
              "categorical": metrics_module.categorical_accuracy,
              "sparse_categorical": metrics_module.sparse_categorical_accuracy}


def _plan_run(name, dtype, n, batch, weights="random", steps=None):
    loss, units, top, logits, ykind = _PLAN_CASES[name]
    kind = name.split("-")[0]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 3)).astype(dtype)
    if ykind == "labels":
        y = rng.integers(0, units, n).astype(np.int64)
    elif ykind == "onehot":
        y = np.eye(units, dtype=dtype)[rng.integers(0, units, n)]
        y[::3] = 0  # rows of no class: argmax 0, as numpy's
    else:
        y = (rng.random((n, 1)) > 0.4).astype(dtype)
    plan = trainer.Plan(dtype, [(3, 5, "relu", 0.0, True), (5, units, top, 0.0, True)],
                        loss, batch, output_logits=logits)
    params = [rng.normal(size=s).astype(dtype) for s in [(3, 5), (5,), (5, units), (units,)]]
    if weights == "zero":  # every output row ties (argmax: the first) or sits at 0.5
        params[2][:] = 0
        params[3][:] = 0
    elif weights == "nan":
        params[2][0, 0] = np.nan
    per_epoch = -(-n // batch)
    steps = steps or 2 * per_epoch
    counts = np.zeros((steps, 1), np.int64)
    expected = []
    sparse = loss == "sparse_softmax_xent"
    for s in range(steps):  # step by step, to compare each step's output with numpy
        plan.run(x, None if sparse else y, y if sparse else None, None, s, s + 1, per_epoch,
                 params, [()] * 4, "sgd", {"lr": 0.0 if weights != "random" else 0.1}, 0,
                 np.empty(1), accuracy=((kind,), counts[s:s + 1]))
        k = s % per_epoch
        yb = y[k * batch:(k + 1) * batch]
        values = _REFERENCE[kind](yb, plan.output(len(yb)))
        expected.append(values.sum())
    return counts[:, 0], np.array(expected)


@pytest.mark.parametrize("weights", ["random", "zero", "nan"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(_PLAN_CASES))
def test_counts_match_the_numpy_metrics_step_by_step(name, dtype, weights):
    counts, expected = _plan_run(name, dtype, n=23, batch=7, weights=weights)
    assert counts.tolist() == expected.tolist()


@pytest.mark.parametrize("name", ["binary", "sparse_categorical"])
def test_counts_of_one_run_equal_those_of_runs_of_one_step(name):
    loss, units, top, logits, _ = _PLAN_CASES[name]
    n, batch = 29, 6
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 3))
    sparse = loss == "sparse_softmax_xent"
    y = rng.integers(0, units, n) if sparse else (rng.random((n, 1)) > 0.5) * 1.0
    layers = [(3, 5, "tanh", 0.0, True), (5, units, top, 0.0, True)]
    per_epoch = -(-n // batch)
    steps = 3 * per_epoch
    orders = np.stack([rng.permutation(n) for _ in range(3)])
    results = []
    for split in (False, True):
        plan = trainer.Plan(np.float64, layers, loss, batch)
        params = [np.random.default_rng(1).normal(size=s)
                  for s in [(3, 5), (5,), (5, units), (units,)]]
        counts = np.zeros((steps, 2), np.int64)
        bounds = [(s, s + 1) for s in range(steps)] if split else [(0, steps)]
        for a, b in bounds:
            plan.run(x, None if sparse else y, y if sparse else None, orders, a, b, per_epoch,
                     params, [()] * 4, "sgd", {"lr": 0.2}, a, np.empty(b - a),
                     accuracy=((name, name), counts[a:b]))
        results.append(counts)
    assert results[0].tolist() == results[1].tolist()
    assert results[0][:, 0].tolist() == results[0][:, 1].tolist()
    assert results[0].sum() > 0


def _one_plan(loss="sigmoid_bce", units=1):
    plan = trainer.Plan(np.float32, [(2, 3, "relu", 0.0, True), (3, units, "linear", 0.0, True)],
                        loss, 4)
    params = [np.ones(s, np.float32) for s in [(2, 3), (3,), (3, units), (units,)]]
    x = np.ones((8, 2), np.float32)
    y = np.ones((8, units), np.float32)
    return plan, params, x, y


@pytest.mark.parametrize("accuracy, error, match", [
    (("binary",), ValueError, "must be \\(kinds, counts\\)"),
    ((["binary"], np.zeros((2, 1), np.int64)), ValueError, "kinds must be a tuple"),
    (((), np.zeros((2, 0), np.int64)), ValueError, "kinds must be a tuple"),
    ((("top5",), np.zeros((2, 1), np.int64)), ValueError, "unknown kind 'top5'"),
    ((("sparse_categorical",), np.zeros((2, 1), np.int64)), ValueError, "integer labels"),
    ((("binary",), np.zeros((2, 1), np.int32)), TypeError, "int64 array of shape \\(2, 1\\)"),
    ((("binary",), np.zeros((3, 1), np.int64)), TypeError, "shape \\(2, 1\\)"),
    ((("binary",), np.zeros((2, 2), np.int64)[:, :1]), TypeError, "C-contiguous"),
    ((("binary",), np.zeros((2, 1), np.int64).view()), None, None),
    ((("binary",) * 9, np.zeros((2, 9), np.int64)), ValueError, "1 to 8"),
])
def test_plan_checks_the_accuracy_argument(accuracy, error, match):
    plan, params, x, y = _one_plan()
    args = (x, y, None, None, 0, 2, 2, params, [()] * 4, "sgd", {"lr": 0.1}, 0, np.empty(2))
    if error is None:
        plan.run(*args, accuracy=accuracy)
        assert accuracy[1].tolist() == [[4], [4]]
        return
    before = [p.copy() for p in params]
    with pytest.raises(error, match=match):
        plan.run(*args, accuracy=accuracy)
    assert all(np.array_equal(a, b) for a, b in zip(before, params, strict=True))


def test_plan_refuses_read_only_or_overlapping_counts_and_binary_on_columns():
    plan, params, x, y = _one_plan()
    args = (x, y, None, None, 0, 2, 2, params, [()] * 4, "sgd", {"lr": 0.1}, 0)
    counts = np.zeros((2, 1), np.int64)
    counts.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        plan.run(*args, np.empty(2), accuracy=(("binary",), counts))
    shared = np.zeros(4, np.float64)  # the losses and the counts in one buffer
    with pytest.raises(ValueError, match="accuracy: counts overlaps losses|losses overlaps "
                                         "accuracy: counts"):
        plan.run(*args, shared[:2], accuracy=(("binary",), shared[1:3].view(np.int64)
                                               .reshape(2, 1)))
    wide, params, x, y = _one_plan("softmax_xent", 3)
    with pytest.raises(ValueError, match="binary counts one output column, the plan has 3"):
        wide.run(x, y, None, None, 0, 2, 2, params, [()] * 4, "sgd", {"lr": 0.1}, 0,
                 np.empty(2), accuracy=(("binary",), np.zeros((2, 1), np.int64)))
    # a later run without accuracy counts nothing and writes no counts
    wide.run(x, y, None, None, 0, 2, 2, params, [()] * 4, "sgd", {"lr": 0.1}, 0, np.empty(2))


def test_batched_plan_checks_each_nets_accuracy():
    plan = trainer.BatchedPlan(np.float32, [(2, 3, "relu", 0.0, True),
                                            (3, 1, "linear", 0.0, True)], "sigmoid_bce", 4, 2)
    x = np.ones((8, 2), np.float32)
    y = np.ones((8, 1), np.float32)
    nets = []
    for _ in range(2):
        params = [np.ones(s, np.float32) for s in [(2, 3), (3,), (3, 1), (1,)]]
        nets.append((params, [()] * 4, "sgd", {"lr": 0.1}, 0, np.empty(2), None, None,
                     (("binary",), np.zeros((2, 1), np.int64))))
    bad = list(nets)
    bad[1] = (*nets[1][:8], (("binary",), np.zeros((2, 1), np.float64)))
    with pytest.raises(TypeError, match="net 1: accuracy: counts"):
        plan.run(x, y, None, 0, 2, 2, bad)
    clash = list(nets)
    clash[1] = (*nets[1][:8], nets[0][8])  # two nets writing one counts array
    with pytest.raises(ValueError, match="overlaps"):
        plan.run(x, y, None, 0, 2, 2, clash)
    plan.run(x, y, None, 0, 2, 2, nets)
    assert nets[0][8][1].tolist() == nets[1][8][1].tolist() == [[4], [4]]


# ---------------------------------------------------------------- fit_many
def _w3_like(k, dtype=np.float32, metrics=("accuracy",)):
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dense(8, activation="relu"),
                        Dense(1, activation="sigmoid")])
    model.build((None, 3))
    rng = np.random.default_rng(100 + k)
    for p in model.parameters():
        p.data = rng.uniform(-0.8, 0.8, p.data.shape).astype(dtype)
    model.compile(optimizer=opts.SGD(learning_rate=0.05 + 0.05 * k), loss="binary_crossentropy",
                  metrics=list(metrics) or None)
    return model


def _history(model, h):
    return ([w.tobytes() for w in model.get_weights()], h.history, h.batch_history, h.epoch,
            h.epoch_ends, model.optimizer.iterations)


@pytest.mark.parametrize("dtype, shuffle", [(np.float32, True), (np.float64, False)])
def test_fit_many_with_accuracy_gives_each_net_its_own_fit(dtype, shuffle, step_runs):
    x, y = _data(37, 1, "binary", dtype)
    fit = {"epochs": 3, "batch_size": 8, "shuffle": shuffle}
    solo = []
    for k in range(3):
        model = _w3_like(k, dtype, metrics=("accuracy", "binary_accuracy"))
        solo.append(_history(model, _fit(model, x, y, seed=k, **fit)))
    assert len(step_runs) == 3  # each solo fit: one run in C
    eager = _w3_like(1, dtype, metrics=("accuracy", "binary_accuracy"))
    eager.compile(optimizer=opts.SGD(learning_rate=0.1), loss="binary_crossentropy",
                  metrics=["accuracy", "binary_accuracy"], jit_compile=False)
    he = _fit(eager, x, y, seed=1, **fit)
    assert _history(eager, he)[:5] == solo[1][:5]  # the solo fit: the eager path's bits
    models = [_w3_like(k, dtype, metrics=("accuracy", "binary_accuracy")) for k in (2, 0, 1)]
    keys = {batch_key(m, x, y, fit) for m in models}
    assert len(keys) == 1 and None not in keys
    hs = fit_many(models, x, y, generators=[np.random.default_rng(k) for k in (2, 0, 1)],
                  verbose=0, **fit)
    for k, model, h in zip((2, 0, 1), models, hs, strict=True):
        assert _history(model, h) == solo[k]
        assert list(h.history) == ["loss", "accuracy", "binary_accuracy"]


def test_batch_key_holds_the_metrics():
    x, y = _data(20, 1, "binary", np.float32)
    fit = {"epochs": 1, "batch_size": 8}
    plain, acc, both = (_w3_like(0, metrics=m) for m in ((), ("accuracy",),
                                                          ("accuracy", "binary_accuracy")))
    keys = [batch_key(m, x, y, fit) for m in (plain, acc, both)]
    assert None not in keys and len(set(keys)) == 3
    with pytest.raises(ValueError, match="differs from model 0 in metrics"):
        fit_many([acc, both], x, y, generators=[np.random.default_rng(0)] * 2, **fit)
    mae = _w3_like(0, metrics=("mae",))
    with pytest.raises(ValueError, match="model 0 cannot be batched: metric 'mae'"):
        fit_many([mae], x, y, **fit)


def test_sweep_batches_runs_whose_build_compiles_accuracy():
    x, y = _data(48, 1, "binary", np.float32)

    def build(config):
        model = mg.Sequential([Dense(4, activation=config["activation"], input_dim=3),
                               Dense(1, activation="sigmoid")])
        model.compile(optimizer=opts.SGD(learning_rate=0.2), loss="binary_crossentropy",
                      metrics=["accuracy"])
        return model

    grid = mg.grid(activation=["relu", "tanh"], seed=[0, 1])
    fit = {"epochs": 3, "batch_size": 16, "progress": False}
    many = mg.sweep(build, grid, x, y, keep_weights=True, **fit)
    fits = mg.sweep(build, grid, x, y, keep_weights=True, batched=False, **fit)
    assert {r.engine for r in many} == {"batched"}
    assert {r.engine for r in fits} == {"fit"}
    for a, b in zip(many, fits, strict=True):
        assert a.history == b.history and a.batch_losses.tobytes() == b.batch_losses.tobytes()
        assert all(u.tobytes() == v.tobytes() for u, v in zip(a.weights, b.weights, strict=True))
        assert "accuracy" in a.metrics
