"""Seed 003: activation functions and weight initialization on a 2-feature binary classifier.

An MLP 2 -> 32 -> 32 -> 1 (hidden relu, sigmoid or tanh; sigmoid output) on two noisy
half moons, trained with binary cross-entropy and SGD (learning rate 0.1, batch 32), once
from random-normal weights (mean 0, stddev 1) and once from all zeros. Prints the final loss
and accuracy of each: zero-initialized relu and tanh nets cannot break their symmetry and
stay at chance.

    python examples/activations_moons.py [--quick] [--pictures DIR]

With --pictures, writes the seed's grid of loss and accuracy curves (activations x
initializations) and an animation of the relu net's decision boundary while it learns.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential
from microgradnet.optimizers import SGD

ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITS = ("random_normal", "zeros")


def two_moons(n: int = 1000, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles with Gaussian noise (as WORKLOADS.md's W3)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, np.pi, n // 2)
    first = np.stack([np.cos(t), np.sin(t)], axis=1)
    second = np.stack([1 - np.cos(t), 1 - np.sin(t) - 0.5], axis=1)
    x = np.concatenate([first, second]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n // 2), np.ones(n // 2)]).reshape(-1, 1)
    return x.astype(np.float32), y.astype(np.float32)


def classifier(activation: str, init: str) -> Sequential:
    """2 -> 32 -> 32 -> 1 with the given hidden activation and weight initializer."""
    kernel = mg.initializers.RandomNormal(0.0, 1.0) if init == "random_normal" else "zeros"
    model = Sequential([
        Dense(32, activation=activation, input_dim=2, kernel_initializer=kernel),
        Dense(32, activation=activation, kernel_initializer=kernel),
        Dense(1, activation="sigmoid", kernel_initializer=kernel),
    ])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv: list[str] | None = None) -> dict:
    """Train the six configurations and print their final loss and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--pictures", metavar="DIR", help="write the pictures here")
    args = parser.parse_args(argv)
    epochs = 20 if args.quick else 100
    x, y = two_moons()
    results = {}
    print(f"{'activation':10s} {'init':14s} {'loss':>8s} {'accuracy':>9s}")
    for init in INITS:
        for act in ACTIVATIONS:
            mg.manual_seed(0)
            model = classifier(act, init)
            snapshots = mg.callbacks.WeightRecorder(every=max(1, epochs // 25), unit="epoch")
            history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0,
                                callbacks=[snapshots])
            loss, acc = model.evaluate(x, y)
            results[(act, init)] = {"loss": loss, "accuracy": acc, "history": history.history,
                                    "model": model, "snapshots": snapshots}
            print(f"{act:10s} {init:14s} {loss:8.4f} {acc:9.3f}")
    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
        grid = mg.viz.plot_comparison({k: v["history"] for k, v in results.items()})
        path = os.path.join(args.pictures, "moons_activations_inits.png")
        grid.savefig(path, dpi=80)
        print("wrote", path)
        relu = results[("relu", "random_normal")]
        path = os.path.join(args.pictures, "moons_relu_boundary.gif")
        mg.viz.animate_decision_boundary(relu["model"], relu["snapshots"], x, y, path)
        print("wrote", path)
    return results


if __name__ == "__main__":
    main()
