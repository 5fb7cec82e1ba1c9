"""Seeds 000/001: one ReLU neuron learns the bilinear function y = max(0, 2(x - 1)).

Trains Dense(1) + ReLU with SGD (Keras' default learning rate 0.01) on 200 points, with
batches of 50 (noisy steps) and of 200 (full batch: a smoothly falling error), prints the
learned weights, and shows the dying ReLU: a start where every input maps below zero, so
the gradient is zero and the weights never move.

    python examples/single_neuron.py [--quick] [--pictures DIR]

With --pictures, writes the seed's animations (predictions while training, with the training
error beside them) for batch 50, batch 200 and the dead neuron, as GIFs.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import microgradnet as mg
from microgradnet.initializers import Constant
from microgradnet.layers import Activation, Dense
from microgradnet.models import Sequential


def bilinear_data(n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The seed's data, as (n, 1) columns: 0 for the first half, then 2 * (x - 1)."""
    x = np.linspace(0, 2, n_points)
    y = np.array([0.0] * (n_points // 2) + list(x[: n_points // 2])) * 2
    return x.reshape(-1, 1), y.reshape(-1, 1)


def neuron(w: float, b: float) -> Sequential:
    """Dense(1) + ReLU starting from weight w and bias b."""
    model = Sequential()
    model.add(Dense(units=1, input_dim=1, kernel_initializer=Constant(w),
                    bias_initializer=Constant(b)))
    model.add(Activation("relu"))
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


def train(batch_size: int, epochs: int, w: float = 0.5, b: float = 0.1, seed: int = 0,
          frames: int = 0) -> dict:
    """Train one neuron; return its weights, final error, the error of every batch, and
    (frames > 0) a PredictionRecorder with about that many snapshots."""
    mg.manual_seed(seed)
    x, y = bilinear_data()
    model = neuron(w, b)
    steps = epochs * -(-len(x) // batch_size)
    recorder = mg.callbacks.PredictionRecorder(x, every=max(1, steps // frames)) if frames else None
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[recorder] if recorder else None)
    kernel, bias = model.layers[0].get_weights()
    return {
        "w": float(kernel[0, 0]),
        "b": float(bias[0]),
        "mse": float(model.evaluate(x, y)),
        "batch_losses": history.batch_history["loss"],
        "model": model,
        "recorder": recorder,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the seed's three experiments and print what the seed prints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--pictures", metavar="DIR", help="write the animations here")
    args = parser.parse_args(argv)
    epochs = 200 if args.quick else 2000
    frames = (8 if args.quick else 60) if args.pictures else 0
    results = {}
    for name, batch in (("batch 50", 50), ("batch 200", 200)):
        r = train(batch, epochs, frames=frames)
        results[name] = r
        print(f"{name:10s}: neural net weights after training w0: {r['w']:.2f}, "
              f"w1: {r['b']:.2f}; final MSE {r['mse']:.2e} after {len(r['batch_losses'])} steps")
    dead = train(50, epochs, w=-1.0, b=-0.5, frames=frames)
    results["dead"] = dead
    print(f"dying ReLU: w0 stays {dead['w']:.2f}, w1 stays {dead['b']:.2f}; "
          f"MSE {dead['mse']:.3f}: every output is 0, so every gradient is 0")
    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
        x, y = bilinear_data()
        for key, file, title in (("batch 50", "neuron_batch50.gif", "batch size 50"),
                                 ("batch 200", "neuron_batch200.gif", "batch size 200"),
                                 ("dead", "neuron_dead.gif", "dying ReLU: w=-1, b=-0.5")):
            path = os.path.join(args.pictures, file)
            mg.viz.animate_predictions(results[key]["recorder"], x, y, path, title=title)
            print("wrote", path)
    return results


if __name__ == "__main__":
    main()
