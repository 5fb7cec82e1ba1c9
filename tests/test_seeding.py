"""Seeding as Keras-era code does it: np.random.seed(n) makes weights, shuffling and Dropout
reproducible unless mg.manual_seed was called; mg.set_random_seed seeds all three."""

# ruff: noqa: NPY002  (numpy's legacy global generator is what these tests are about)

from __future__ import annotations

import importlib
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import random as mg_random
from microgradnet.layers import Activation, Dense, Dropout
from microgradnet.models import Sequential

X = np.linspace(0, 2, 200).reshape(-1, 1)
Y = np.maximum(0, 2 * (X - 1))


@pytest.fixture
def unseeded():
    """microgradnet's generator as in a fresh process (manual_seed never called); it and
    numpy's global state are put back afterwards."""
    saved, state = mg_random._generator, np.random.get_state()
    importlib.reload(mg_random)  # its functions, wherever imported, read the fresh state
    yield
    mg_random._generator = saved
    np.random.set_state(state)


def neuron() -> Sequential:
    model = Sequential()
    model.add(Dense(units=1, input_dim=1))
    model.add(Activation("relu"))
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


def dropout_net(jit) -> Sequential:
    model = Sequential([Dense(8, activation="relu", input_dim=1), Dropout(0.3), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
    return model


def test_numpy_seed_makes_initial_weights_reproducible(unseeded):
    np.random.seed(0)
    first = neuron().get_weights()
    np.random.seed(0)
    again = neuron().get_weights()
    np.random.seed(1)
    other = neuron().get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("jit", ["auto", False])
def test_numpy_seed_makes_shuffling_and_dropout_reproducible(unseeded, jit):
    runs = []
    for _ in range(2):
        np.random.seed(3)
        model = dropout_net(jit)
        history = model.fit(X, Y, epochs=12, batch_size=16, verbose=0)  # shuffled
        runs.append((model.get_weights(), history.history["loss"]))
    (w1, l1), (w2, l2) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True)) and l1 == l2


def test_numpy_seeded_runs_end_alike_captured_and_eager(unseeded):
    # The captured step draws the orders and masks in C from numpy's MT19937 as the eager
    # loop draws them through numpy: the same bits.
    ends = []
    for jit in ("auto", False):
        np.random.seed(4)
        model = dropout_net(jit)
        model.fit(X, Y, epochs=12, batch_size=16, verbose=0)
        ends.append(model.get_weights())
    assert mg.fastpath.explain(dropout_net(True)) is None
    assert all(np.array_equal(a, b) for a, b in zip(*ends, strict=True))


def test_manual_seed_takes_precedence(unseeded):
    weights = []
    for numpy_seed in (1, 2):
        mg.manual_seed(5)
        np.random.seed(numpy_seed)
        weights.append(neuron().get_weights()[0])
    assert np.array_equal(*weights)
    assert np.random.random() == np.random.RandomState(2).random_sample()  # numpy's untouched


def test_seed_000_dying_relu_and_healthy_neuron(unseeded):
    # Seed 000: np.random.seed(2) starts the neuron dead (w0 < 0, zero bias: every input maps
    # to relu(<= 0)), np.random.seed(0) healthy. glorot_uniform draws what Keras 1 drew from
    # numpy (on Theano).
    limit = math.sqrt(6 / (1 + 1))
    for seed, expected in ((2, -0.22), (0, 0.17)):
        np.random.seed(seed)
        keras_1 = np.float32(np.random.uniform(-limit, limit))
        np.random.seed(seed)
        model = neuron()
        w0, w1 = model.layers[0].get_weights()
        assert w0[0, 0] == keras_1 and round(float(w0[0, 0]), 2) == expected and w1[0] == 0
        model.fit(X, Y, epochs=200, batch_size=50, verbose=0)
        moved = model.layers[0].get_weights()[0][0, 0] != w0[0, 0]
        assert moved == (seed == 0)


def test_set_random_seed_seeds_python_numpy_and_microgradnet(unseeded):
    state = random.getstate()
    try:
        draws = []
        for _ in range(2):
            mg.set_random_seed(7)
            draws.append((random.random(), np.random.random(), neuron().get_weights()[0]))
        assert draws[0][:2] == draws[1][:2] and np.array_equal(draws[0][2], draws[1][2])
        mg.manual_seed(7)
        assert np.array_equal(neuron().get_weights()[0], draws[0][2])
        random.seed(7)
        assert draws[0][0] == random.random()
    finally:
        random.setstate(state)
    for bad in (-1, 2**32, "1", 1.0, True):
        with pytest.raises(ValueError, match="seed must"):
            mg.set_random_seed(bad)


def test_numpy_seed_before_importing_microgradnet(tmp_path):
    code = ("import numpy as np; np.random.seed(0); import microgradnet as mg; "
            "from microgradnet.layers import Dense; from microgradnet.models import Sequential; "
            "print(Sequential([Dense(3, input_dim=2)]).get_weights()[0].tolist())")
    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).resolve().parent.parent)}
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=120).stdout for _ in range(2)]
    assert outs[0] and outs[0] == outs[1]
