"""Stopping and sharing a captured run: Ctrl-C stops it between steps and leaves the model,
optimizer, History, recorders and generator as eager training stopped there leaves them; no
generator lock is held while it trains (a fork()ed child, another thread's draws, two runs
sharing a Dropout); odd fit and evaluate arguments. No timings: the signal tests send the
signal once the run has started, and a timeout only guards against a hang."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.callbacks import Callback, LambdaCallback
from microgradnet.layers import Dense
from microgradnet.models import Sequential
from microgradnet.optimizers import SGD, Adam

pytest.importorskip("microgradnet._kernels.trainer")

ROOT = Path(mg.__file__).resolve().parent.parent


def _script(code: str, *args: str, timeout: float = 300) -> dict:
    """Run `code` in a fresh interpreter on this tree; return the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if k != "MICROGRADNET_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _wait_until_training(array: np.ndarray, deadline: float = 60.0) -> None:
    """Return once `array` (a weight the run updates in place) has changed: the run is in C."""
    start = array.copy()
    end = time.monotonic() + deadline  # a guard against a hang, not a measurement
    while np.array_equal(array, start):
        if time.monotonic() > end:
            raise AssertionError("the run never started")
        time.sleep(0.001)


# ------------------------------------------------------------------------ Ctrl-C (item 5)

_INTERRUPT = r'''
import json, signal, sys, threading, time
import numpy as np
import microgradnet as mg
from microgradnet.callbacks import Callback, PredictionRecorder, WeightRecorder
from microgradnet.layers import Dense, Dropout
from microgradnet.models import Sequential

VARIANT = sys.argv[1]
EPOCHS, BATCH, N = 10**6, 50, 200
STEPS = N // BATCH
rng = np.random.default_rng(0)
x = rng.normal(size=(N, 3)).astype(np.float32)
y = np.sin(x.sum(1, keepdims=True)).astype(np.float32)


def build(jit):
    mg.manual_seed(0)
    drop = [Dropout(0.2)] if VARIANT == "dropout" else []  # draws from the shared generator
    model = Sequential([Dense(8, activation="tanh", input_dim=3), *drop, Dense(1)])
    model.compile(optimizer=mg.optimizers.Adam(0.01), loss="mse", jit_compile=jit)
    return model


def recorders():
    return [PredictionRecorder(x[:4], every=997), WeightRecorder(every=1009)]


class StopAfter(Callback):
    """Eager training interrupted after `k` steps, as a signal between steps would."""
    def __init__(self, k):
        super().__init__()
        self.k, self.done = k, 0

    def on_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == self.k and self.k % STEPS:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        if self.done == self.k:  # it ended an epoch: before the next one draws its order
            raise KeyboardInterrupt


def interrupt(weight):
    start = weight.copy()
    end = time.monotonic() + 120
    while np.array_equal(weight, start) and time.monotonic() < end:
        time.sleep(0.001)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def fit(model, callbacks):
    try:
        model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=callbacks)
    except KeyboardInterrupt:
        return True
    return False


def state(model, recs):
    h = model.history
    opt = model.optimizer
    return {
        "weights": [w.tolist() for w in model.get_weights()],
        "iterations": opt.iterations,
        "moments": [[s.tolist() for s in st if s is not None]
                    for st in opt.states_for(model.parameters())],
        "history": h.history, "batches": h.batch_history, "epoch": h.epoch,
        "epoch_ends": h.epoch_ends,
        "predictions": [recs[0].steps, [p.tolist() for p in recs[0].predictions]],
        "snapshots": [recs[1].steps, [[w.tolist() for w in s] for s in recs[1].weights]],
        "generator": str(mg.random.generator().bit_generator.state),
    }


model = build("auto")
assert mg.fastpath.explain(model) is None
recs = recorders()
threading.Thread(target=interrupt, args=(model.layers[0].weights[0].data,),
                 daemon=True).start()
stopped = fit(model, recs)
fast = state(model, recs)
k = model.optimizer.iterations
if not stopped or not 0 < k < EPOCHS * STEPS // 10:  # no early stop: no eager reference
    print(json.dumps({"stopped": stopped, "eager_stopped": None, "k": k,
                      "total": EPOCHS * STEPS, "same": {}}))
    sys.exit()

eager = build(False)
erecs = recorders()
eager_stopped = fit(eager, [*erecs, StopAfter(k)])
slow = state(eager, erecs)
print(json.dumps({"stopped": stopped, "eager_stopped": eager_stopped, "k": k,
                  "total": EPOCHS * STEPS,
                  "same": {key: fast[key] == slow[key] for key in fast}}))
'''


@pytest.mark.parametrize("variant", [
    "prefetch",  # the orders drawn ahead on a second thread: the generator is put back
    pytest.param("dropout", marks=pytest.mark.slow),  # masks and orders from one generator
])
def test_ctrl_c_stops_a_captured_fit_where_eager_would_stop(variant):
    got = _script(_INTERRUPT, variant)
    assert got["stopped"] and got["eager_stopped"]
    assert 0 < got["k"] < got["total"] // 10, got["k"]  # it stopped soon, not at the end
    assert all(got["same"].values()), got["same"]


# --------------------------------------------------------------- locks and fork (item 6)

def _long_fit_model(seed=0):
    mg.manual_seed(seed)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer=SGD(0.01), loss="mse")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = rng.normal(size=(200, 1)).astype(np.float32)
    return model, x, y


def _fit_in_thread(model, x, y, epochs):
    errors: list = []

    def run():
        try:
            model.fit(x, y, epochs=epochs, batch_size=50, verbose=0)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def _child(model, x, y):
    # Draw from the shared generator (a new layer's initializer too), train the same model.
    mg.random.generator().random(3)
    Dense(3, input_dim=2).build((None, 2))
    model.fit(x, y, epochs=2, verbose=0)


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX, if a test loaded it
def test_a_fork_during_a_captured_fit_gives_a_child_that_draws_and_trains():
    model, x, y = _long_fit_model()
    fitting, errors = _fit_in_thread(model, x, y, epochs=100_000)  # one long call into C
    _wait_until_training(model.layers[0].weights[0].data)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(model, x, y))
    child.start()
    child.join(60)  # a guard: a child that inherited a held lock never ends
    hung = child.is_alive()
    if hung:
        child.kill()
        child.join()
    fitting.join()
    assert not errors
    assert not hung and child.exitcode == 0


def test_a_thread_draws_while_a_captured_fit_trains():
    model, x, y = _long_fit_model()
    start = mg.random.generator().bit_generator.state  # where the run's draws begin
    fitting, errors = _fit_in_thread(model, x, y, epochs=250_000)  # one long call into C
    _wait_until_training(model.layers[0].weights[0].data)
    drawn = mg.random.generator().random(3)  # while the run holds nothing
    Dense(3, input_dim=2).build((None, 2))
    # the fit's one call into C has not returned: it counts its steps when it does
    still_training = model.optimizer.iterations == 0
    fitting.join()
    assert not errors
    assert still_training
    # and the thread did not draw the run's numbers
    same_start = np.random.Generator(np.random.PCG64())
    same_start.bit_generator.state = start
    assert not np.array_equal(drawn, same_start.random(3))


_SHARED_DROPOUT = r'''
import json, threading
import numpy as np
import microgradnet as mg
from microgradnet.layers import Dense, Dropout
from microgradnet.models import Sequential

# Two models share a seeded Dropout; one shuffles (the shared generator, then the Dropout's),
# the other has an unseeded Dropout above it (the Dropout's generator, then the shared one):
# runs that held both locks took them in opposite orders.
shared = Dropout(0.3, seed=5)
a = Sequential([Dense(4, input_dim=3), shared, Dense(1)])
b = Sequential([Dense(4, input_dim=3), shared, Dense(4), Dropout(0.2), Dense(1)])
for m in (a, b):
    m.compile(optimizer="sgd", loss="mse")
    assert mg.fastpath.explain(m) is None
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype(np.float32)
y = rng.normal(size=(64, 1)).astype(np.float32)
g = mg.random.generator().bit_generator.lock
errors = []


def fit(m, shuffle):
    try:
        m.fit(x, y, epochs=20_000, batch_size=16, verbose=0, shuffle=shuffle)
    except BaseException as exc:
        errors.append(repr(exc))


for _ in range(5):
    with g:  # both start while the shared generator is busy, and race for it
        ta = threading.Thread(target=fit, args=(a, True))
        tb = threading.Thread(target=fit, args=(b, False))
        tb.start()
        ta.start()
    ta.join()
    tb.join()
print(json.dumps({"errors": errors}))
'''


def test_two_models_sharing_a_seeded_dropout_train_in_two_threads():
    try:
        got = _script(_SHARED_DROPOUT, timeout=120)  # a deadlock would never end
    except subprocess.TimeoutExpired:
        pytest.fail("the two fits deadlocked")
    assert got["errors"] == []


# ---------------------------------------------------------------- odd arguments (item 10)

def _small(jit, seed=0):
    mg.manual_seed(seed)
    model = Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)])
    model.compile(optimizer=Adam(0.01), loss="mse", jit_compile=jit)
    return model


def test_a_batch_larger_than_the_data_sizes_nothing_by_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 2)).astype(np.float32)
    y = rng.normal(size=(10, 1)).astype(np.float32)
    results = []
    for jit in (False, True):
        model = _small(jit)
        history = model.fit(x, y, batch_size=10**11, epochs=3, verbose=0)
        results.append((model.get_weights(), history.batch_history["loss"]))
    assert model._captured.plan.batch == 10
    (w0, l0), (w1, l1) = results
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1, strict=True)) and l0 == l1


def _live_schedule(model, calls: list):
    """A schedule of no argument that reads the optimizer as it goes (so asking it ahead of
    the steps would give other rates) and counts how often it was asked."""
    def schedule():
        calls.append(1)
        return 0.05 / (1 + model.optimizer.iterations)
    return schedule


class _SwitchFollowing(Callback):
    """Switches after the third batch, which it sees live; follows captured runs (the
    driver's path)."""

    def __init__(self, switch):
        super().__init__()
        self.switch, self.seen = switch, 0

    def follows_captured_runs(self):
        return True

    def batches_until_live(self):
        return 3 - self.seen if self.seen < 3 else 1 << 30  # then it only counts

    def on_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == 3:
            self.switch(1, logs)

    def on_batches_end(self, losses, epochs_ended):
        self.seen += len(losses)


@pytest.mark.parametrize("hook", ["on_epoch_begin", "on_batch_end", "following"])
def test_a_callback_may_switch_to_a_schedule_of_no_argument_mid_fit(hook):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = rng.normal(size=(40, 1)).astype(np.float32)
    results = []
    for jit in (False, "auto"):
        model = _small(jit)
        calls: list = []
        schedule = _live_schedule(model, calls)

        def switch(i, logs, model=model, schedule=schedule):
            if i == 1 and not model.optimizer.has_schedule:
                model.optimizer.learning_rate = schedule

        cb = (_SwitchFollowing(switch) if hook == "following"
              else LambdaCallback(**{hook: switch}))
        history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[cb])
        results.append((model.get_weights(), history.history, history.batch_history,
                        len(calls), model.optimizer.iterations))
    (w0, *rest0), (w1, *rest1) = results
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1, strict=True))
    assert rest0 == rest1


@pytest.mark.parametrize("method", ["evaluate", "test_on_batch"])
def test_evaluate_does_not_build_the_optimizer(method):
    x = np.ones((6, 2), np.float32)
    y = np.zeros((6, 1), np.float32)
    opt = SGD(0.01)
    first = _small(True)
    first.compile(optimizer=opt, loss="mse")
    first.fit(x, y, epochs=1, verbose=0)
    second = _small(True, seed=1)
    second.compile(optimizer=opt, loss="mse")  # already built on first's weights
    loss = getattr(second, method)(x, y)
    assert loss == pytest.approx(float(np.mean(second.predict(x) ** 2)))
    with pytest.raises(ValueError, match="already built"):
        second.fit(x, y, epochs=1, verbose=0)
