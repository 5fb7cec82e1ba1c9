"""The captured training step (microgradnet.fastpath, csrc/trainer.pyx) against the eager
path: same weights, losses and optimizer state after training, for every layer, activation,
loss and optimizer it captures; clear errors for what it does not; no crash on bad input."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import fastpath
from microgradnet.callbacks import EarlyStopping, LambdaCallback
from microgradnet.layers import Activation, Dense, Dropout, Input
from microgradnet.models import Sequential
from microgradnet.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

trainer = pytest.importorskip("microgradnet._kernels.trainer")

HIDDEN = [a for a in trainer.ACTIVATIONS if a != "linear"]


def _data(n=37, features=3, outputs=1, kind="regression", dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(dtype)
    if kind == "regression":
        y = rng.normal(size=(n, outputs)).astype(dtype)
    elif kind == "binary":
        y = (rng.random((n, outputs)) > 0.5).astype(dtype)
    elif kind == "onehot":
        y = np.eye(outputs, dtype=dtype)[rng.integers(0, outputs, n)]
    else:
        y = rng.integers(0, outputs, n)
    return x, y


def _model(hidden, output, sizes, dtype=np.float32, use_bias=True, split_activation=False):
    layers = [Input((sizes[0],))]
    for i, units in enumerate(sizes[1:]):
        act = output if i == len(sizes) - 2 else hidden
        if split_activation:
            layers += [Dense(units, use_bias=use_bias), Activation(act)]
        else:
            layers.append(Dense(units, activation=act, use_bias=use_bias))
    model = Sequential(layers)
    model.build((None, sizes[0]))
    rng = np.random.default_rng(42)
    for p in model.parameters():  # set_weights would keep float32 (it writes in place)
        p.data = rng.uniform(-0.7, 0.7, p.data.shape).astype(dtype)
    return model


def _train_both(make_model, make_opt, loss, x, y, jit=True, **fit):
    """Train the same model eagerly and captured from the same start; return both."""
    results = []
    for mode in (False, jit):
        model = make_model()
        model.compile(optimizer=make_opt(), loss=loss, jit_compile=mode)
        mg.manual_seed(7)
        history = model.fit(x, y, verbose=0, **fit)
        results.append((model, history))
    return results


def _assert_same(eager, fast, rtol=1e-6):
    (m0, h0), (m1, h1) = eager, fast
    for a, b in zip(m0.get_weights(), m1.get_weights(), strict=True):
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(h1.batch_history["loss"], h0.batch_history["loss"])
    assert h1.history.keys() == h0.history.keys()
    for key in h0.history:
        np.testing.assert_array_equal(h1.history[key], h0.history[key])
    assert m1.optimizer.iterations == m0.optimizer.iterations
    assert h1.epoch == h0.epoch and h1.epoch_ends == h0.epoch_ends


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_activation_matches_eager(hidden, dtype):
    x, y = _data(dtype=dtype)
    eager, fast = _train_both(lambda: _model(hidden, "linear", [3, 5, 4, 1], dtype),
                              lambda: SGD(learning_rate=0.05), "mse", x, y, batch_size=8,
                              epochs=4)
    assert fastpath.explain(fast[0]) is None
    _assert_same(eager, fast)


@pytest.mark.parametrize("loss,output,kind,outputs", [
    ("mse", "sigmoid", "regression", 2),
    ("mse", "tanh", "regression", 1),
    ("binary_crossentropy", "sigmoid", "binary", 1),
    ("binary_crossentropy", "sigmoid", "binary", 3),
    (mg.losses.BinaryCrossentropy(from_logits=True), "linear", "binary", 1),
    ("categorical_crossentropy", "softmax", "onehot", 4),
    (mg.losses.CategoricalCrossentropy(from_logits=True), "linear", "onehot", 4),
    ("sparse_categorical_crossentropy", "softmax", "labels", 5),
    (mg.losses.SparseCategoricalCrossentropy(from_logits=True), "linear", "labels", 3),
])
def test_every_loss_matches_eager(loss, output, kind, outputs):
    x, y = _data(outputs=outputs, kind=kind)
    eager, fast = _train_both(lambda: _model("relu", output, [3, 6, outputs]),
                              lambda: Adam(learning_rate=0.01), loss, x, y, batch_size=5,
                              epochs=3)
    assert fastpath.explain(fast[0]) is None
    _assert_same(eager, fast)


@pytest.mark.parametrize("make_opt", [
    lambda: SGD(learning_rate=0.1),
    lambda: SGD(learning_rate=0.05, momentum=0.9),
    lambda: SGD(learning_rate=0.05, momentum=0.8, nesterov=True),
    lambda: SGD(learning_rate=0.1, clipvalue=0.01),
    lambda: Adam(learning_rate=0.02),
    lambda: Adam(learning_rate=0.02, amsgrad=True, beta_1=0.5),
    lambda: AdamW(learning_rate=0.02, weight_decay=0.1),
    lambda: RMSprop(learning_rate=0.01),
    lambda: RMSprop(learning_rate=0.01, momentum=0.9),
    lambda: RMSprop(learning_rate=0.01, centered=True, rho=0.8),
    lambda: RMSprop(learning_rate=0.01, momentum=0.5, centered=True, weight_decay=0.05),
    lambda: Adagrad(learning_rate=0.1),
    lambda: Adagrad(learning_rate=0.1, initial_accumulator_value=0.5, clipvalue=0.05),
    lambda: SGD(learning_rate=0.1, clipnorm=0.05),
    lambda: Adam(learning_rate=0.02, clipnorm=0.01),
    lambda: SGD(learning_rate=0.1, momentum=0.5, global_clipnorm=0.05),
    lambda: RMSprop(learning_rate=0.01, global_clipnorm=0.01),
], ids=["sgd", "momentum", "nesterov", "clipvalue", "adam", "amsgrad", "adamw", "rmsprop",
        "rmsprop_momentum", "rmsprop_centered", "rmsprop_all", "adagrad", "adagrad_clip",
        "clipnorm", "adam_clipnorm", "global_clipnorm", "rmsprop_global_clipnorm"])
def test_every_optimizer_matches_eager(make_opt):
    x, y = _data(outputs=2)
    eager, fast = _train_both(lambda: _model("tanh", "linear", [3, 7, 2]), make_opt, "mse", x,
                              y, batch_size=6, epochs=5)
    assert fastpath.explain(fast[0]) is None
    _assert_same(eager, fast)
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)  # the same loops in the same order: the same bits
    for s0, s1 in zip(eager[0].optimizer._states, fast[0].optimizer._states, strict=True):
        for a, b in zip(s0, s1, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("variant", ["no_bias", "split_activation", "no_shuffle", "one_batch",
                                     "batch_of_one", "initial_epoch"])
def test_layouts_and_fit_options_match_eager(variant):
    x, y = _data(n=23)
    make = {
        "no_bias": lambda: _model("elu", "linear", [3, 4, 1], use_bias=False),
        "split_activation": lambda: _model("gelu", "sigmoid", [3, 4, 1],
                                           split_activation=True),
    }.get(variant, lambda: _model("silu", "linear", [3, 4, 1]))
    fit = {"batch_size": 4, "epochs": 3}
    if variant == "no_shuffle":
        fit["shuffle"] = False
    if variant == "one_batch":
        fit["batch_size"] = 100
    if variant == "batch_of_one":
        fit["batch_size"] = 1
    if variant == "initial_epoch":
        fit["initial_epoch"] = 2
        fit["epochs"] = 5
    eager, fast = _train_both(make, lambda: SGD(learning_rate=0.05), "mse", x, y, **fit)
    assert fastpath.explain(fast[0]) is None
    _assert_same(eager, fast)


def test_metrics_and_batch_callbacks_run_step_by_step_with_the_same_results():
    x, y = _data(n=40, kind="binary")
    seen = []
    cb = LambdaCallback(on_batch_end=lambda batch, logs: seen.append(logs["loss"]))
    eager, fast = _train_both(lambda: _model("relu", "sigmoid", [3, 8, 1]),
                              lambda: SGD(learning_rate=0.2), "binary_crossentropy", x, y,
                              batch_size=8, epochs=3, callbacks=[cb])
    assert len(seen) == 2 * 15
    np.testing.assert_array_equal(seen[15:], seen[:15])
    results = []
    for mode in (False, True):
        model = _model("relu", "sigmoid", [3, 8, 1])
        model.compile(optimizer=SGD(learning_rate=0.2), loss="binary_crossentropy",
                      metrics=["accuracy"], jit_compile=mode)
        mg.manual_seed(3)
        results.append((model, model.fit(x, y, batch_size=8, epochs=3, verbose=0)))
    _assert_same(*results)
    assert "accuracy" in results[1][1].history


def test_epoch_callbacks_and_validation_keep_working():
    x, y = _data(n=50)
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    eager, fast = _train_both(lambda: _model("tanh", "linear", [3, 4, 1]),
                              lambda: SGD(learning_rate=0.01), "mse", x, y, batch_size=10,
                              epochs=20, validation_split=0.2, callbacks=[stop])
    assert len(fast[1].history["loss"]) == 2  # stopped after patience 0
    _assert_same(eager, fast)


def test_gradients_are_visible_after_a_captured_fit():
    x, y = _data(n=16)
    eager, fast = _train_both(lambda: _model("relu", "linear", [3, 4, 1]),
                              lambda: SGD(learning_rate=0.1), "mse", x, y, batch_size=16,
                              epochs=2)
    for p0, p1 in zip(eager[0].parameters(), fast[0].parameters(), strict=True):
        np.testing.assert_array_equal(p1.grad.numpy(), p0.grad.numpy())


def test_set_weights_between_fits_is_seen_by_the_captured_step():
    x, y = _data()
    model = _model("relu", "linear", [3, 4, 1])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", jit_compile=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    fresh = [np.zeros_like(w) for w in model.get_weights()]
    model.set_weights(fresh)
    model.fit(x, y, batch_size=8, epochs=0, verbose=0)
    assert all(np.all(w == 0) for w in model.get_weights())
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    # all-zero weights: relu'(0) = 0 and the kernel grads are zero; only the last bias moves
    w = model.get_weights()
    assert np.all(w[0] == 0) and np.all(w[2] == 0) and w[3][0] != 0


class _DoubledL2(mg.regularizers.L2):
    """A subclass of a built-in regularizer with its own penalty: not captured."""

    def __call__(self, weight):
        return super().__call__(weight) * 2.0


def _regularized_model(kernel, bias, dtype, zeros=False, dropout=None):
    """A 3-6-5-1 tanh net with the given kernel and bias regularizers on each Dense (and a
    Dropout of that seed after the first); zeros: some kernel and bias values exactly 0."""
    layers = [Input((3,)), Dense(6, activation="tanh", kernel_regularizer=kernel,
                                 bias_regularizer=bias)]
    if dropout is not None:
        layers.append(Dropout(0.3, seed=dropout))
    layers += [Dense(5, activation="relu", kernel_regularizer=kernel, bias_regularizer=bias),
               Dense(1, kernel_regularizer=kernel)]
    model = Sequential(layers)
    model.build((None, 3))
    rng = np.random.default_rng(42)
    weights = [rng.uniform(-0.7, 0.7, w.shape).astype(dtype) for w in model.get_weights()]
    if zeros:  # sign(0) = 0: an L1 kernel value at 0 gets no pull from its penalty
        weights[0][0, :3] = 0
        weights[0][1, 0] = -0.0
        weights[1][:2] = 0
    model.set_weights(weights)
    return model


_L1L2 = lambda: mg.regularizers.L1L2(l1=0.003, l2=0.02)  # noqa: E731


@pytest.mark.parametrize("kernel,bias,zeros,dropout,make_opt", [
    (lambda: mg.regularizers.L1(0.01), None, True, None, lambda: SGD(learning_rate=0.05)),
    (lambda: mg.regularizers.L1(0.01), None, True, None, lambda: Adam(learning_rate=0.02)),
    (lambda: mg.regularizers.L2(0.05), None, False, None, lambda: SGD(learning_rate=0.05)),
    (lambda: "l2", lambda: "l1", True, None, lambda: Adam(learning_rate=0.02)),
    (_L1L2, _L1L2, True, None, lambda: SGD(learning_rate=0.05, momentum=0.9)),
    (_L1L2, None, False, 5, lambda: Adam(learning_rate=0.02)),
    (lambda: mg.regularizers.L1(0.0), lambda: mg.regularizers.L1L2(), True, None,
     lambda: SGD(learning_rate=0.05)),
    (_L1L2, _L1L2, True, None, lambda: SGD(learning_rate=0.05, global_clipnorm=0.5)),
], ids=["l1_sgd", "l1_adam", "l2_sgd", "l2_l1bias_adam", "l1l2_momentum", "l1l2_dropout",
        "zero_factors", "l1l2_global_clipnorm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regularizers_are_captured_to_the_bit(kernel, bias, zeros, dropout, make_opt, dtype):
    x, y = _data(n=29, dtype=dtype)
    make = lambda: _regularized_model(kernel(), bias and bias(), dtype, zeros, dropout)  # noqa: E731
    eager, fast = _train_both(make, make_opt, "mse", x, y, batch_size=6, epochs=4)
    assert fastpath.explain(fast[0]) is None
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
    # the loss of each step with the penalties added, as eager adds them
    np.testing.assert_array_equal(fast[1].batch_history["loss"], eager[1].batch_history["loss"])
    np.testing.assert_array_equal(fast[1].history["loss"], eager[1].history["loss"])
    _assert_same(eager, fast)


def test_a_regularizer_changed_between_fits_is_seen_by_the_captured_step():
    x, y = _data(n=20)
    results = []
    for mode in (False, True):
        model = _regularized_model(mg.regularizers.L2(0.01), None, np.float32)
        model.compile(optimizer=SGD(learning_rate=0.05), loss="mse", jit_compile=mode)
        mg.manual_seed(3)
        model.fit(x, y, batch_size=5, epochs=1, verbose=0)
        for layer in model.layers:
            if isinstance(layer, Dense):
                layer.kernel_regularizer.l2 = 0.5  # the object the layer's penalty reads
        results.append((model, model.fit(x, y, batch_size=5, epochs=1, verbose=0)))
    (m0, h0), (m1, h1) = results
    for a, b in zip(m0.get_weights(), m1.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
    assert h1.history["loss"] == h0.history["loss"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.3), (0.003, 0.02), (0.0, 0.0)])
def test_the_captured_penalty_sums_as_numpy(dtype, l1, l2):
    rng = np.random.default_rng(1)
    reg = mg.regularizers.L1L2(l1, l2)
    # pairwise summation: below 8 values, in blocks up to 128, halves above; 2-D as flat
    for shape in [(0,), (1,), (7,), (8,), (9,), (127,), (128,), (129,), (3, 47), (1000,),
                  (33, 249), (20001,)]:
        w = (rng.standard_normal(shape) * rng.uniform(0.01, 100, shape)).astype(dtype)
        w.flat[::7] = 0
        got = trainer.penalty(w, l1, l2)
        want = reg(mg.tensor(w, dtype=dtype)).numpy()
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), shape
    with pytest.raises(ValueError, match="C-contiguous"):
        trainer.penalty(np.ones((4, 6), dtype)[:, ::2], l1, l2)
    with pytest.raises(TypeError, match="float32 or float64"):
        trainer.penalty(np.ones(4, np.float16), l1, l2)
    with pytest.raises(TypeError, match="float32 or float64"):
        trainer.penalty(np.ones(4, np.dtype(dtype).newbyteorder()), l1, l2)
    with pytest.raises(ValueError, match=">= 0"):
        trainer.penalty(np.ones(4, dtype), -1.0, l2)


def test_the_captured_step_adds_the_penalties_the_layers_add():
    x, y = _data(n=20)
    results = []
    for mode in (False, True):
        model = _regularized_model(mg.regularizers.L1(0.02), "l2", np.float32)
        for layer in model.layers:  # the weights keep the regularizers they were made with
            if isinstance(layer, Dense):
                layer.kernel_regularizer = layer.bias_regularizer = None
        model.compile(optimizer=SGD(learning_rate=0.05), loss="mse", jit_compile=mode)
        mg.manual_seed(3)
        results.append((model, model.fit(x, y, batch_size=5, epochs=2, verbose=0)))
    (m0, h0), (m1, h1) = results
    for a, b in zip(m0.get_weights(), m1.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
    assert h1.history["loss"] == h0.history["loss"]
    model = _regularized_model(mg.regularizers.L1(0.02), None, np.float32)
    model.compile(optimizer="sgd", loss="mse")
    model.layers[1].kernel_regularizer.l1 = -1.0
    assert "factor is not >= 0" in fastpath.explain(model)


def test_plan_rejects_bad_penalties():
    base = (3, 2, "linear", 0.0, True, 0.0)
    for penalties, error in [((None, (0.1,)), "bias penalty must be None or"),
                             (((-1.0, 0.0), None), "factors must be >= 0"),
                             (((float("nan"), 0.0), None), "factors must be >= 0")]:
        with pytest.raises(ValueError, match=error):
            trainer.Plan(np.float32, [base + penalties], "mse", 4)
    with pytest.raises(ValueError, match="bias penalty but no bias"):
        trainer.Plan(np.float32, [(3, 2, "linear", 0.0, False, 0.0, None, (0.1, 0.0))],
                     "mse", 4)


@pytest.mark.parametrize("why,make", [
    ("custom kernel regularizer", lambda: Sequential([
        Dense(2, kernel_regularizer=_DoubledL2(0.1), input_dim=3), Dense(1)])),
    ("after the output", lambda: Sequential([Dense(2, input_dim=3), Dense(1), Dropout(0.5)])),
    ("Dropout", lambda: Sequential([Dense(2, input_dim=3), Dropout(0.5), Dropout(0.2),
                                    Dense(1)])),
    ("Dropout", lambda: Sequential([Input((3,)), Dropout(0.5), Dense(1)])),
    ("custom activation", lambda: Sequential([Dense(2, activation=lambda t: t * 2,
                                                    input_dim=3), Dense(1)])),
])
def test_uncaptured_models_train_eagerly_or_raise_when_asked(why, make):
    x, y = _data()
    model = make()
    model.compile(optimizer="sgd", loss="mse")
    assert why in fastpath.explain(model)
    model.fit(x, y, epochs=1, verbose=0)  # "auto": eager
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="jit_compile=True"):
        model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("make_opt", [
    lambda: SGD(learning_rate=lambda step: 0.1 / (1 + 0.3 * step)),
    lambda: Adam(learning_rate=lambda step: 0.02 * 0.9 ** (step // 4)),
    lambda: RMSprop(learning_rate=lambda step: 0.01 if step < 5 else 0.005),
], ids=["sgd_decay", "adam_steps", "rmsprop_steps"])
@pytest.mark.parametrize("callbacks", [False, True])
def test_learning_rate_schedules_are_captured(make_opt, callbacks):
    from microgradnet.callbacks import WeightRecorder

    x, y = _data(n=30)
    extra = {"callbacks": [WeightRecorder(every=4), EarlyStopping(monitor="loss",
                                                                  patience=99)]}
    eager, fast = _train_both(lambda: _model("tanh", "linear", [3, 5, 1]), make_opt, "mse", x,
                              y, batch_size=7, epochs=4, **(extra if callbacks else {}))
    assert fastpath.explain(fast[0]) is None
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
    _assert_same(eager, fast)


def test_a_failing_schedule_stops_where_it_fails_eagerly():
    x, y = _data(n=30)

    def schedule(step):
        if step == 6:
            raise RuntimeError("schedule broke at step 6")
        return 0.05

    results = []
    for mode in (False, True):
        model = _model("relu", "linear", [3, 4, 1])
        model.compile(optimizer=SGD(learning_rate=schedule), loss="mse", jit_compile=mode)
        mg.manual_seed(1)
        with pytest.raises(RuntimeError, match="step 6"):
            model.fit(x, y, batch_size=7, epochs=3, verbose=0)
        results.append(model)
    eager, fast = results
    assert fast.optimizer.iterations == eager.optimizer.iterations == 6
    for a, b in zip(eager.get_weights(), fast.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)


def test_plan_rejects_bad_learning_rates():
    plan, args = _plan_args()
    for lrs, error in ((np.full(2, 0.1), TypeError), (np.full(args["last"], np.nan), ValueError),
                       (np.full(args["last"], -1.0), ValueError),
                       (np.full(args["last"], 0.1, np.float32), TypeError)):
        with pytest.raises(error):
            plan.run(**args, lrs=lrs)


def test_sample_weights_and_the_numpy_backend_train_eagerly():
    x, y = _data()
    model = _model("relu", "linear", [3, 4, 1])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="sample and class weights"):
        model.fit(x, y, sample_weight=np.ones(len(x)), verbose=0)
    with mg.use_backend("numpy"):
        assert "numpy reference backend" in fastpath.explain(model)
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(optimizer="sgd", loss="mse", jit_compile="yes")


def test_the_seed_workload_w1_gives_the_eager_result_to_the_bit():
    x = np.linspace(0, 2, 200)
    y = (np.concatenate([np.zeros(100), x[:100]]) * 2).reshape(-1, 1).astype(np.float32)
    x = x.reshape(-1, 1).astype(np.float32)
    losses = []
    for mode in (False, True):
        model = Sequential([Dense(1, activation="relu", input_dim=1)])
        model.set_weights([np.array([[0.5]], np.float32), np.array([0.1], np.float32)])
        model.compile(optimizer=SGD(learning_rate=0.01), loss="mse", jit_compile=mode)
        mg.manual_seed(0)
        model.fit(x, y, batch_size=50, epochs=200, verbose=0)
        losses.append(model.evaluate(x, y))
    assert losses[0] == losses[1]


# --------------------------------------------------------------------------- the Plan itself

def _plan_args(dtype=np.float32, n=10, batch=4):
    plan = trainer.Plan(dtype, [(2, 3, "relu", 0.0, True), (3, 1, "linear", 0.0, True)], "mse",
                        batch)
    rng = np.random.default_rng(0)
    params = [rng.normal(size=s).astype(dtype) for s in ((2, 3), (3,), (3, 1), (1,))]
    x = rng.normal(size=(n, 2)).astype(dtype)
    y = rng.normal(size=(n, 1)).astype(dtype)
    per_epoch = -(-n // batch)
    return plan, dict(x=x, y=y, labels=None, orders=None, first=0, last=per_epoch,
                      per_epoch=per_epoch, params=params, states=[()] * 4, optimizer="sgd",
                      hyper={"lr": 0.1}, iteration=0, losses=np.empty(per_epoch))


@pytest.mark.parametrize("change,error", [
    (dict(x=np.zeros((10, 2), np.float64)), TypeError),
    (dict(x=np.zeros((10, 3), np.float32)), ValueError),
    (dict(x=np.zeros((2, 10), np.float32).T), ValueError),
    (dict(y=np.zeros((10, 2), np.float32)), ValueError),
    (dict(orders=np.zeros((1, 10), np.int32)), TypeError),
    (dict(orders=np.full((1, 10), 10, np.int64)), ValueError),
    (dict(orders=np.zeros((0, 10), np.int64)), ValueError),
    (dict(per_epoch=2), ValueError),
    (dict(losses=np.empty(2)), ValueError),
    (dict(optimizer="adam"), ValueError),  # no state arrays
    (dict(optimizer="lbfgs"), ValueError),
    (dict(params=[np.zeros((3, 2), np.float32), np.zeros(3, np.float32),
                  np.zeros((3, 1), np.float32), np.zeros(1, np.float32)]), ValueError),
    (dict(params=[np.zeros((2, 3), np.float32), None, np.zeros((3, 1), np.float32),
                  np.zeros(1, np.float32)]), ValueError),
    (dict(x=np.zeros((0, 2), np.float32), per_epoch=0, last=0, losses=np.empty(0)),
     ValueError),
])
def test_plan_rejects_bad_arguments_before_touching_memory(change, error):
    plan, args = _plan_args()
    if "x" in change and "y" not in change and change["x"].shape[0] != 10:
        args["y"] = np.zeros((change["x"].shape[0], 1), np.float32)
    args.update(change)
    before = [None if p is None else p.copy() for p in args["params"]]
    with pytest.raises(error):
        plan.run(**args)
    for a, b in zip(before, args["params"], strict=True):
        if a is not None and b is not None and a.shape == b.shape:
            np.testing.assert_array_equal(a, b)


def test_plan_rejects_bad_construction():
    with pytest.raises(TypeError):
        trainer.Plan(np.int32, [(1, 1, "relu", 0.0, True)], "mse", 4)
    with pytest.raises(ValueError, match="activation"):
        trainer.Plan(np.float32, [(1, 1, "softmax", 0.0, True)], "mse", 4)
    with pytest.raises(ValueError, match="inputs"):
        trainer.Plan(np.float32, [(1, 2, "relu", 0.0, True), (3, 1, "relu", 0.0, True)],
                     "mse", 4)
    with pytest.raises(ValueError, match="loss"):
        trainer.Plan(np.float32, [(1, 1, "relu", 0.0, True)], "hinge", 4)
    with pytest.raises(ValueError, match="batch"):
        trainer.Plan(np.float32, [(1, 1, "relu", 0.0, True)], "mse", 0)


def test_plan_rejects_out_of_range_labels():
    plan = trainer.Plan(np.float32, [(2, 3, "linear", 0.0, True)], "sparse_softmax_xent", 4)
    x = np.zeros((5, 2), np.float32)
    params = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
    for labels in (np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 1, 0], np.int32)):
        with pytest.raises((ValueError, TypeError)):
            plan.run(x, None, labels, None, 0, 2, 2, params, [(), ()], "sgd", {"lr": 0.1}, 0,
                     np.empty(2))


def test_plan_steps_allocate_nothing():
    plan, args = _plan_args(n=400, batch=8)
    args["first"], args["last"] = 0, 50
    args["losses"] = np.empty(50)
    plan.run(**args)  # warm up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        plan.run(**args)
        _, peak = tracemalloc.get_traced_memory()
        short = peak - base
        args["orders"] = np.stack([np.random.default_rng(0).permutation(400)] * 40)
        args["last"] = 2000
        args["losses"] = np.empty(2000)
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        plan.run(**args)
        _, peak = tracemalloc.get_traced_memory()
        long = peak - base
    finally:
        tracemalloc.stop()
    # 40x more steps, no more memory: the buffers were allocated when the plan was made
    assert long < 4096 and short < 4096, (short, long)


def test_the_c_shuffle_draws_numpys_permutations_from_the_same_generator():
    assert trainer.shuffle_matches_numpy()
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    for n in (0, 1, 3, 50, 1 << 12):
        np.testing.assert_array_equal(trainer.permutation(a, n), b.permutation(n))
    assert a.bit_generator.state == b.bit_generator.state
    with pytest.raises(ValueError):
        trainer.permutation(a, -1)


def _subnormal_run(flush: bool):
    """Eager and captured fits where one weight is subnormal and its input column is 0 (so
    its gradient is 0): SGD keeps it as it is in IEEE arithmetic, and flushes it to 0."""
    tiny = np.finfo(np.float32).smallest_normal / 4  # the layers hold float32
    x, y = _data()
    x[:, 1] = 0

    def make():
        model = _model("tanh", "linear", [3, 4, 1])
        weights = model.get_weights()
        weights[0][1, 2] = tiny
        model.set_weights(weights)
        return model

    was = fastpath.set_flush_denormal(flush)
    try:
        eager, fast = _train_both(make, lambda: SGD(learning_rate=0.05), "mse", x, y,
                                  batch_size=8, epochs=2)
    finally:
        fastpath.set_flush_denormal(True)
    assert fastpath.explain(fast[0]) is None
    return was, tiny, eager, fast


def test_flush_denormal_on_both_paths_by_default_and_restored():
    assert fastpath.get_flush_denormal() is trainer.CAN_FLUSH_DENORMAL  # the default
    supported, tiny, eager, fast = _subnormal_run(True)
    assert supported is trainer.CAN_FLUSH_DENORMAL
    for model in (eager[0], fast[0]):
        assert model.get_weights()[0][1, 2] == (0 if supported else tiny)
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the caller's floating-point mode is back after fit: numpy still makes subnormals
    assert np.float32(1e-38) * np.float32(0.01) != 0
    assert np.float64(1e-307) * np.float64(0.01) != 0

    _, _, eager, fast = _subnormal_run(False)  # IEEE: the tiny weight stays
    for model in (eager[0], fast[0]):
        assert model.get_weights()[0][1, 2] == tiny
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert fastpath.get_flush_denormal() is trainer.CAN_FLUSH_DENORMAL


def test_flush_denormal_mode_restored_when_a_step_raises():
    x, y = _data()
    model = _model("tanh", "linear", [3, 4, 1])
    model.compile(optimizer=SGD(learning_rate=0.05), loss="mse", jit_compile=False)

    def boom(*_):
        raise RuntimeError("boom")

    model.optimizer.step = boom
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.float32(1e-38) * np.float32(0.01) != 0


@pytest.mark.parametrize("every,epochs,batch", [(3, 4, 5), (50, 30, 50), (1, 2, 8), (7, 3, 100)])
def test_recorders_follow_the_captured_run_and_see_what_eager_sees(every, epochs, batch):
    from microgradnet.callbacks import PredictionRecorder, WeightRecorder

    x, y = _data(n=37)
    grid = np.linspace(-2, 2, 9, dtype=np.float32).reshape(-1, 1).repeat(3, axis=1)
    recorded = []
    for mode in (False, True):
        model = _model("tanh", "linear", [3, 5, 1])
        model.compile(optimizer=Adam(learning_rate=0.01), loss="mse", jit_compile=mode)
        preds, weights = PredictionRecorder(grid, every=every), WeightRecorder(every=every)
        assert preds.follows_captured_runs() and weights.follows_captured_runs()
        mg.manual_seed(5)
        history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0,
                            callbacks=[preds, weights])
        recorded.append((model, history, preds, weights))
    (m0, h0, p0, w0), (m1, h1, p1, w1) = recorded
    _assert_same((m0, h0), (m1, h1))
    assert p1.steps == p0.steps and w1.steps == w0.steps
    np.testing.assert_array_equal(p1.losses, p0.losses)
    for a, b in zip(p0.predictions, p1.predictions, strict=True):
        np.testing.assert_array_equal(b, a)
    for s0, s1 in zip(w0.weights, w1.weights, strict=True):
        for a, b in zip(s0, s1, strict=True):
            np.testing.assert_array_equal(b, a)


def test_callbacks_that_do_not_follow_captured_runs_see_every_batch_live():
    from microgradnet.callbacks import PredictionRecorder

    class Counting(PredictionRecorder):
        def on_batch_end(self, batch, logs=None):
            super().on_batch_end(batch, logs)
            self.live = getattr(self, "live", 0) + 1

    x, y = _data(n=20)
    rec = Counting(x[:2], every=3)
    assert not rec.follows_captured_runs()
    assert not PredictionRecorder(x[:2], every=3, unit="epoch").follows_captured_runs()
    model = _model("relu", "linear", [3, 4, 1])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    model.fit(x, y, batch_size=5, epochs=3, verbose=0, callbacks=[rec])
    assert rec.live == 12 and rec.steps == [0, 3, 6, 9, 12]


@pytest.mark.parametrize("loss,output,kind,outputs", [
    ("binary_crossentropy", "sigmoid", "binary", 1),
    ("sparse_categorical_crossentropy", "softmax", "labels", 4),
    ("mse", "relu", "regression", 2),
])
def test_predictions_recorded_in_c_match_predict(loss, output, kind, outputs):
    from microgradnet.callbacks import PredictionRecorder

    x, y = _data(n=45, outputs=outputs, kind=kind)
    grid = np.random.default_rng(3).normal(size=(70, 3))  # float64, more rows than a batch
    recorded = []
    for mode in (False, True):
        model = _model("gelu", output, [3, 6, outputs])
        model.compile(optimizer=SGD(learning_rate=0.1, momentum=0.5), loss=loss,
                      jit_compile=mode)
        rec = PredictionRecorder(grid, every=4)
        mg.manual_seed(2)
        model.fit(x, y, batch_size=10, epochs=5, verbose=0, callbacks=[rec])
        recorded.append(rec)
    eager, fast = recorded
    assert fast.steps == eager.steps == list(range(0, 25, 4))
    assert len(fast.predictions) == len(eager.predictions)
    for a, b in zip(eager.predictions, fast.predictions, strict=True):
        assert b.shape == a.shape == (70, outputs) and b.dtype == a.dtype
        np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(fast.losses, eager.losses)


@pytest.mark.parametrize("optimizer,states,hyper", [
    ("adam", lambda ps: [(np.zeros_like(p), None) for p in ps], {"lr": 0.1}),
    ("adam", lambda ps: [(None, np.zeros_like(p)) for p in ps], {"lr": 0.1}),
    ("adam", lambda ps: [(np.zeros_like(p),) * 2 for p in ps], {"lr": 0.1, "amsgrad": True}),
    ("sgd_momentum", lambda ps: [(None,) for p in ps], {"lr": 0.1, "momentum": 0.9}),
    ("rmsprop", lambda ps: [(np.zeros_like(p), None, None) for p in ps],
     {"lr": 0.1, "momentum": 0.9}),
    ("rmsprop", lambda ps: [(None, None, None) for p in ps], {"lr": 0.1}),
    ("adagrad", lambda ps: [() for p in ps], {"lr": 0.1}),
    ("sgd", lambda ps: [() for p in ps], {"lr": 0.1, "clipnorm": 1.0, "global_clipnorm": 1.0}),
])
def test_plan_rejects_missing_optimizer_state(optimizer, states, hyper):
    plan, args = _plan_args()
    args.update(optimizer=optimizer, states=states(args["params"]), hyper=hyper)
    with pytest.raises((TypeError, ValueError)):
        plan.run(**args)


def test_amsgrad_follows_the_optimizer_not_the_state_it_left():
    x, y = _data()
    results = []
    for mode in (False, True):
        model = _model("tanh", "linear", [3, 4, 1])
        opt = Adam(learning_rate=0.05, amsgrad=True)
        model.compile(optimizer=opt, loss="mse", jit_compile=mode)
        mg.manual_seed(1)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        opt.amsgrad = False
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(b, a)


def test_a_recorder_of_no_rows_works_as_eagerly():
    from microgradnet.callbacks import PredictionRecorder

    x, y = _data()
    model = _model("relu", "linear", [3, 4, 1])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    rec = PredictionRecorder(np.zeros((0, 3), np.float32), every=3)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[rec])
    assert rec.steps == [0, 3, 6, 9] and all(p.shape == (0, 1) for p in rec.predictions)


def test_runs_of_one_plan_from_two_threads_take_turns():
    import threading

    plan, small = _plan_args(n=5, batch=4)
    _, big = _plan_args(n=64, batch=4)
    small.update(last=2000 * 2, losses=np.empty(4000))
    big.update(params=small["params"])
    errors = []

    def train(args):
        try:
            plan.run(**args)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(a,)) for a in (small, big, small)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and np.all(np.isfinite(small["losses"]))


@pytest.mark.parametrize("use_bias,dtype", [(True, np.float32), (False, np.float64)])
def test_weights_recorded_in_c_match_eager_in_one_call(use_bias, dtype, monkeypatch):
    from microgradnet.callbacks import PredictionRecorder, WeightRecorder

    x, y = _data(n=30, dtype=dtype)
    grid = x[:5]
    calls = []
    run = fastpath.CapturedStep.run

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("record_weights") is not None)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(fastpath.CapturedStep, "run", counting)
    recorded = []
    for mode in (False, True):
        model = _model("relu", "linear", [3, 4, 2, 1], dtype=dtype, use_bias=use_bias)
        model.compile(optimizer=Adam(learning_rate=0.05), loss="mse", jit_compile=mode)
        wrec, prec = WeightRecorder(every=3), PredictionRecorder(grid, every=5)
        mg.manual_seed(3)
        model.fit(x, y, batch_size=7, epochs=4, verbose=0, callbacks=[wrec, prec])
        recorded.append((wrec, prec))
    (w0, p0), (w1, p1) = recorded
    # both recorders in C: the whole run is one call, which records the weights
    assert calls == [True]
    assert w1.steps == w0.steps == list(range(0, 21, 3))
    # the names of the two models' own layers: the same parameters in the same order
    assert [n.split("/")[1] for n in w1.names] == [n.split("/")[1] for n in w0.names]
    assert len(w1.names) == len(w1.weights[0])
    assert len(w1.weights) == len(w0.weights) == 7
    for s0, s1 in zip(w0.weights, w1.weights, strict=True):
        assert len(s1) == len(s0) == (6 if use_bias else 3)
        for a, b in zip(s0, s1, strict=True):
            assert b.dtype == a.dtype and b.shape == a.shape
            np.testing.assert_array_equal(b, a)
    assert p1.steps == p0.steps
    # snapshots are copies: later training does not change them
    assert not np.array_equal(w1.weights[0][0], w1.weights[-1][0])


@pytest.mark.parametrize("outs,error", [
    (lambda ps, k: [np.zeros((k, *p.shape), np.float32) for p in ps][:3], ValueError),
    (lambda ps, k: [np.zeros((k + 1, *p.shape), np.float32) for p in ps], ValueError),
    (lambda ps, k: [np.zeros((k, *p.shape), np.float64) for p in ps], TypeError),
    (lambda ps, k: [np.zeros((k, *p.shape), np.float32) for p in ps[:3]] + [None], TypeError),
    (lambda ps, k: [np.zeros((k, *p.shape), np.float32).T.copy().T for p in ps], ValueError),
])
def test_plan_rejects_bad_weight_recording_buffers(outs, error):
    plan, args = _plan_args()
    every = 2
    wanted = args["last"] // every
    args["record_weights"] = (every, 0, outs(args["params"], wanted))
    before = [p.copy() for p in args["params"]]
    with pytest.raises(error):
        plan.run(**args)
    for a, b in zip(before, args["params"], strict=True):
        np.testing.assert_array_equal(b, a)  # nothing ran


def test_plan_records_weights_after_every_nth_step():
    plan, args = _plan_args()
    args["last"] = 3 * args["per_epoch"]  # 9 steps
    args["losses"] = np.empty(args["last"])
    outs = [np.zeros((3, *p.shape), np.float32) for p in args["params"]]
    args["record_weights"] = (3, 0, outs)
    steps = []
    plan2, args2 = _plan_args()
    for s in range(args["last"]):  # the same run step by step, the weights after each
        args2.update(first=s, last=s + 1, losses=np.empty(1), iteration=s)
        plan2.run(**args2)
        steps.append([p.copy() for p in args2["params"]])
    plan.run(**args)
    for i, s in enumerate((2, 5, 8)):
        for j in range(4):
            np.testing.assert_array_equal(outs[j][i], steps[s][j])


def _dropout_model(seed, rate=0.4, dtype=np.float32, split=False, hidden="relu"):
    layers = [Input((3,))]
    if split:
        layers += [Dense(6), Activation(hidden)]
    else:
        layers.append(Dense(6, activation=hidden))
    layers += [Dropout(rate, seed=seed), Dense(5, activation="tanh"),
               Dropout(rate / 2, seed=None if seed is None else seed + 1), Dense(1)]
    model = Sequential(layers)
    model.build((None, 3))
    rng = np.random.default_rng(42)
    model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(dtype)
                       for w in model.get_weights()])
    return model


@pytest.mark.parametrize("seed", [None, 11])
@pytest.mark.parametrize("dtype,split", [(np.float32, False), (np.float64, True)])
def test_dropout_is_captured_with_the_same_masks(seed, dtype, split):
    x, y = _data(n=29, dtype=dtype)
    eager, fast = _train_both(lambda: _dropout_model(seed, dtype=dtype, split=split),
                              lambda: Adam(learning_rate=0.02), "mse", x, y, batch_size=6,
                              epochs=4)
    assert fastpath.explain(fast[0]) is None
    for a, b in zip(eager[0].get_weights(), fast[0].get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)  # the same draws in the same order: the same bits
    _assert_same(eager, fast)
    # the layers' own generators are where eager left them: the next draws agree (the
    # shared one: test_dropout_with_callbacks_and_rate_zero)
    if seed is not None:
        for d0, d1 in zip([la for la in eager[0].layers if isinstance(la, Dropout)],
                          [la for la in fast[0].layers if isinstance(la, Dropout)], strict=True):
            assert d0._rng.random() == d1._rng.random()


@pytest.mark.parametrize("metrics", [None, ["mae"]])  # runs per epoch, per batch
def test_dropout_with_callbacks_and_rate_zero(metrics):
    from microgradnet.callbacks import WeightRecorder

    x, y = _data(n=25)
    cbs = lambda: [WeightRecorder(every=2), EarlyStopping(monitor="loss", patience=50)]  # noqa: E731
    results = []
    for mode in (False, True):
        model = _dropout_model(None, rate=0.5)
        model.compile(optimizer=SGD(learning_rate=0.05), loss="mse", metrics=metrics,
                      jit_compile=mode)
        mg.manual_seed(4)
        h = model.fit(x, y, batch_size=5, epochs=3, verbose=0, callbacks=cbs())
        # the shared generator after training: the same draws were made from it
        results.append((model, h, mg.random.generator().integers(1 << 40)))
    (m0, h0, r0), (m1, h1, r1) = results
    assert r0 == r1
    _assert_same((m0, h0), (m1, h1))
    model = Sequential([Dense(4, input_dim=3), Dropout(0.0), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    model.fit(x, y, epochs=1, verbose=0)  # rate 0: nothing drawn, captured


def test_plan_checks_dropout_generators():
    plan = trainer.Plan(np.float32, [(2, 3, "relu", 0.0, True, 0.5),
                                     (3, 1, "linear", 0.0, True)], "mse", 4)
    _, args = _plan_args()
    for rngs, error in ((None, ValueError), ([None, None], ValueError),
                        ([np.random.default_rng(0)] * 2, ValueError),
                        (["rng", None], TypeError)):
        with pytest.raises(error):
            plan.run(**args, dropout_rngs=rngs)
    plan.run(**args, dropout_rngs=[np.random.default_rng(0), None])
    for bad in ((2, 3, "relu", 0.0, True, 1.0), (2, 3, "relu", 0.0, True, -0.1)):
        with pytest.raises(ValueError, match="dropout"):
            trainer.Plan(np.float32, [bad, (3, 1, "linear", 0.0, True)], "mse", 4)
    with pytest.raises(ValueError, match="dropout"):
        trainer.Plan(np.float32, [(2, 1, "linear", 0.0, True, 0.5)], "mse", 4)


@pytest.mark.parametrize("shuffle", [True, False])
def test_the_last_batch_is_known_after_a_captured_run(shuffle):
    x, y = _data(n=23)
    batches = []
    for mode in (False, True):
        model = _model("relu", "linear", [3, 4, 1])
        model.compile(optimizer="sgd", loss="mse", jit_compile=mode)
        mg.manual_seed(6)
        model.fit(x, y, batch_size=5, epochs=3, verbose=0, shuffle=shuffle)
        batches.append(model._last_batch)
        assert model.find_nonfinite() == "the loss alone is not finite (outputs and gradients are)"
    np.testing.assert_array_equal(batches[1], batches[0])
    assert batches[1].shape == (3, 3)  # the short last batch of the last epoch


def test_schedules_of_no_argument_and_double_clipping_train_eagerly():
    """A schedule of no argument may read the optimizer's state (asked ahead, it would see
    the iteration count of the run's start); clipnorm with global_clipnorm (only settable
    after construction) is eager's combination. Both train eagerly, with the same results."""
    x, y = _data(n=20)
    for setup, why in ((lambda opt: setattr(opt, "learning_rate",
                                            lambda: 0.1 * 0.5 ** opt.iterations),
                        "of no argument"),
                       (lambda opt: setattr(opt, "global_clipnorm", 0.5), "together")):
        results = []
        for mode in (False, "auto"):
            model = _model("relu", "linear", [3, 4, 1])
            opt = SGD(learning_rate=0.1, clipnorm=1.0)
            model.compile(optimizer=opt, loss="mse", jit_compile=mode)
            setup(opt)
            assert why in fastpath.explain(model)
            mg.manual_seed(2)
            model.fit(x, y, batch_size=5, epochs=2, verbose=0)
            results.append(model.get_weights())
        for a, b in zip(*results, strict=True):
            np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("epochs,batch,n", [(20, 8, 37), (9, 50, 200), (40, 7, 7), (12, 3, 1)])
def test_orders_drawn_ahead_on_a_second_thread_are_the_same(epochs, batch, n):
    """A shuffling run of 8 epochs or more draws its orders on a second thread (prefetch.h):
    the same weights as eager and as the single thread, the generator left where it is."""
    from microgradnet.random import generator

    x, y = _data(n=n)
    was = trainer._get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            trainer._set_num_threads(threads)
            eager, fast = _train_both(lambda: _model("tanh", "linear", [3, 4, 1]),
                                      lambda: SGD(learning_rate=0.05), "mse", x, y,
                                      batch_size=batch, epochs=epochs)
            _assert_same(eager, fast, rtol=0)
            results.append((fast[0].get_weights(), generator().bit_generator.state,
                            fast[0]._captured.plan.last_order()))
    finally:
        trainer._set_num_threads(was)
    (w1, s1, o1), (w2, s2, o2) = results
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert s1 == s2
    np.testing.assert_array_equal(o1, o2)
    # the generator is where eager's epoch loop leaves it: the next draw agrees with numpy
    mg.manual_seed(7)
    for _ in range(epochs):
        generator().permutation(n)
    assert generator().bit_generator.state == s2


def test_prefetch_follows_set_num_threads():
    was = trainer._get_num_threads()
    try:
        mg.set_num_threads(1)
        assert trainer._get_num_threads() == 1
        mg.set_num_threads(2)
        assert trainer._get_num_threads() == (2 if trainer.CAN_PREFETCH else 1)
    finally:
        trainer._set_num_threads(was)


# --------------------------------------------------------------------------- one description

@pytest.mark.parametrize("opt", [
    SGD(), SGD(momentum=0.9, nesterov=True), Adam(), Adam(amsgrad=True), AdamW(),
    RMSprop(), RMSprop(momentum=0.5, centered=True), Adagrad(),
    SGD(clipnorm=1.0, weight_decay=0.1), Adam(global_clipnorm=2.0), RMSprop(clipvalue=0.5),
], ids=repr)
def test_each_optimizer_describes_what_its_plan_kernel_reads(opt):
    """The optimizer's description (rule, update_arguments, state variables) and the plan's
    table of its kernels (trainer._RULES) agree: the plan restates no default."""
    numbers, required, accepted = trainer._RULES[opt.rule]
    given = set(opt.update_arguments())
    assert given - set(trainer._OPTIONAL_NUMBERS) == set(numbers)
    assert required <= len(opt.state_variables) <= accepted
    assert len(opt.state_in_use()) == len(opt.state_variables)


def test_states_for_leaves_out_a_variable_no_longer_in_use():
    p = mg.Tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = Adam([p], amsgrad=True)
    m, v, vhat = opt.states_for([p])[0]
    assert vhat is not None
    opt.amsgrad = False
    assert opt.states_for([p, None]) == [(m, v, None), ()]


@pytest.mark.parametrize("hyper", [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "amsgrad": True},
                                   {"momentum": 0.9, "nesterov": False}])
def test_plan_takes_every_number_of_its_rule_and_no_other(hyper):
    plan, args = _plan_args()
    if "nesterov" in hyper:
        args.update(optimizer="sgd_momentum",
                    states=[(np.zeros_like(p),) for p in args["params"]])
    args.update(hyper=hyper)
    with pytest.raises(ValueError, match="lr|reads no"):
        plan.run(**args)


def test_the_captured_path_reads_no_private_field_of_optimizers_layers_or_callbacks():
    import ast
    import pathlib

    # the model's own captured-fit state, the Tensor wrapper, the trainer's FP mode switches
    allowed = {"_captured", "_last_batch", "_prepare", "_wrap", "_ftz_enter", "_ftz_leave"}
    for path in pathlib.Path(fastpath.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                assert node.attr in allowed, f"{path.name}:{node.lineno} reads .{node.attr}"


@pytest.mark.parametrize("steps,last,cuts", [
    (4, 10, [37]), (4, 10, [3, 9, 22, 37]), (1, 7, [5, 11]), (50, 3, [120, 160]),
    (3, 3, [1, 2, 3, 4, 5, 6]),
])
def test_epoch_sums_add_each_epoch_left_to_right_whatever_the_segments(steps, last, cuts):
    # The captured run hands over its losses in segments (up to each callback's batch); every
    # epoch's loss x samples must still be the batch-by-batch path's sum, from 0.0 in order.
    from microgradnet.fastpath.driver import _EpochSums, _Run

    batch = 10
    n = (steps - 1) * batch + last
    losses = np.random.default_rng(steps).lognormal(size=cuts[-1]) * 10.0 ** np.arange(
        -8, 8, 16 / cuts[-1])[:cuts[-1]]  # magnitudes far apart: the order shows in the bits
    sums = _EpochSums(_Run(None, np.zeros((n, 1)), None, batch, steps, None, None))
    got, start = [], 0
    for cut in cuts:
        _, epoch_sums = sums.segment(losses[start:cut].copy(), start)
        got += epoch_sums.tolist()
        start = cut
    expected = []
    for e in range(cuts[-1] // steps):
        total = 0.0
        for b in range(steps):
            total += float(losses[e * steps + b]) * (last if b == steps - 1 else batch)
        expected.append(total)
    assert got == expected
    open_part = 0.0
    for b in range(cuts[-1] // steps * steps, cuts[-1]):
        open_part += float(losses[b]) * batch
    assert sums.carry == open_part
