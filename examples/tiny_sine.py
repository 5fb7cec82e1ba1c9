"""Seed 004: tiny nets on a noisy sine: one layer of 60 tanh units vs two layers of 10,
each trained with SGD and with Adam (500 points, batch 50, 1000 epochs).

With SGD both nets stall on the first hill of the sine; Adam gets both close to the curve.

    python examples/tiny_sine.py [--quick] [--pictures DIR]

With --pictures, writes the seed's four animations (predictions while training, with the
training error beside them).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential
from microgradnet.optimizers import SGD, Adam


def noisy_sine(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """sin(x) + N(0, 0.1) on [0, 10], x rescaled to [-1, 1] (WORKLOADS.md's W2)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 10, n)
    y = np.sin(x) + rng.normal(0, 0.1, n)
    return (x / 5 - 1).reshape(-1, 1).astype(np.float32), y.reshape(-1, 1).astype(np.float32)


NETS = {
    "1x60": lambda: [Dense(60, activation="tanh", input_dim=1), Dense(1)],
    "2x10": lambda: [Dense(10, activation="tanh", input_dim=1),
                     Dense(10, activation="tanh"), Dense(1)],
}
OPTIMIZERS = {"sgd": lambda: SGD(), "adam": lambda: Adam(learning_rate=0.01)}


def main(argv: list[str] | None = None) -> dict:
    """Train the four configurations and print their final training error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--pictures", metavar="DIR", help="write the animations here")
    args = parser.parse_args(argv)
    epochs = 100 if args.quick else 1000
    x, y = noisy_sine()
    results = {}
    print(f"{'net':6s} {'optimizer':9s} {'final MSE':>10s}")
    for net, layers in NETS.items():
        for opt_name, opt in OPTIMIZERS.items():
            mg.manual_seed(1234)
            model = Sequential(layers())
            model.compile(optimizer=opt(), loss="mean_squared_error")
            steps = epochs * 10
            recorder = mg.callbacks.PredictionRecorder(x, every=max(1, steps // 60))
            history = model.fit(x, y, batch_size=50, epochs=epochs, verbose=0,
                                callbacks=[recorder] if args.pictures else None)
            mse = model.evaluate(x, y)
            results[(net, opt_name)] = {"mse": mse, "history": history, "model": model,
                                        "recorder": recorder}
            print(f"{net:6s} {opt_name:9s} {mse:10.4f}")
    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
        for (net, opt_name), r in results.items():
            path = os.path.join(args.pictures, f"sine_{net}_{opt_name}.gif")
            mg.viz.animate_predictions(r["recorder"], x, y, path, title=f"{net} tanh, {opt_name}")
            print("wrote", path)
    return results


if __name__ == "__main__":
    main()
