"""Seed 002: a sigmoid neuron trained with the delta rule, its tanh and relu+softmax variants,
and predictions on new data from weights saved and loaded again.

The seed's update w += X.T @ (error * f'(prediction)) is gradient descent on
0.5 * sum((y - p) ** 2) with step 1. Written with microgradnet's autograd it is three lines;
as a Keras-style model it is Dense(1, sigmoid, no bias) trained with SGD on the mean squared
error, whose gradient is 2/4 of the summed one: learning rate 2. Both give what the seed's
code gives; the tanh and relu+softmax runs match its printed numbers to the last digit. (Its
sigmoid run prints [12.755, -0.204, -6.174], which its code as written does not reach: the
notebook's cells were re-run. The code gives [9.674, -0.208, -4.630].)

    python examples/perceptron.py [--quick] [--pictures DIR]

With --pictures, writes how the delta rule trains with each activation (the error and the
weights at every iteration) to DIR/perceptron_training.png.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential
from microgradnet.optimizers import SGD

X_TRAIN = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
Y_TRAIN = np.array([[0, 1, 1, 0]], dtype=np.float64).T


def seed_weights(seed: int, scale: float = 2.0, shift: float = 1.0) -> np.ndarray:
    """The seed's start: scale * np.random.random((3, 1)) - shift after np.random.seed(seed)."""
    return scale * np.random.RandomState(seed).random_sample((3, 1)) - shift


def delta_rule(activation, w0: np.ndarray, iterations: int, y: np.ndarray = Y_TRAIN,
               trace: list | None = None):
    """The delta rule by autograd: loss 0.5 * sum((y - f(X w))^2), w -= grad (float64).
    With a `trace` list, appends (loss, weights before the step) at every iteration."""
    x = mg.tensor(X_TRAIN, dtype="float64")
    w = mg.tensor(w0, dtype="float64", requires_grad=True)
    for _ in range(iterations):
        predictions = activation(x @ w)
        loss = 0.5 * ((y - predictions) ** 2).sum()
        if trace is not None:
            trace.append((loss.item(), w.numpy().ravel().copy()))
        w.grad = None
        loss.backward()
        with mg.no_grad():
            w.data -= w.grad.data
    with mg.no_grad():
        return w.numpy(), activation(x @ w).numpy()


def relu_softmax_rule(w0: np.ndarray, iterations: int):
    """The seed's relu + softmax variant, rule for rule (its softmax runs over the 4 samples,
    and its 'derivative' is relu'(prediction): a heuristic, not a gradient)."""
    x = mg.tensor(X_TRAIN, dtype="float64")
    w = mg.tensor(w0, dtype="float64")
    predictions = None
    for _ in range(iterations):
        predictions = mg.softmax(mg.relu(x @ w), axis=0)
        error = Y_TRAIN - predictions
        adjustments = error * (predictions > 0).numpy()
        w = w + x.T @ adjustments
    return w.numpy(), predictions.numpy()


def keras_style(w0: np.ndarray, epochs: int) -> Sequential:
    """The same neuron as a model: Dense(1, sigmoid, no bias), SGD(2.0) on the MSE."""
    model = Sequential([Dense(1, activation="sigmoid", use_bias=False, input_dim=3)])
    model.set_weights([w0])
    model.compile(optimizer=SGD(learning_rate=2.0), loss="mean_squared_error")
    model.fit(X_TRAIN, Y_TRAIN, batch_size=4, epochs=epochs, shuffle=False, verbose=0)
    return model


def plot_training(traces: dict[str, list], path: str) -> None:
    """The error and the weights at every iteration of each activation's run, side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    error, weights = fig.subplots(1, 2)
    for (name, trace), color in zip(traces.items(), ("tab:blue", "tab:orange"), strict=False):
        steps = np.arange(1, len(trace) + 1)
        error.plot(steps, [loss for loss, _ in trace], color=color, label=name)
        ws = np.array([w for _, w in trace])
        for k, style in enumerate(("-", "--", ":")):
            weights.plot(steps, ws[:, k], style, color=color, label=f"{name} w{k}")
    error.set(xscale="log", yscale="log", xlabel="iteration", ylabel="0.5 * sum of squared errors",
              title="error of the delta rule")
    weights.set(xscale="log", xlabel="iteration", ylabel="weight", title="weights")
    error.legend(fontsize=8)
    weights.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> dict:
    """Run the seed's experiments and print the weights and predictions it prints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for tests)")
    parser.add_argument("--pictures", metavar="DIR", help="write the picture here")
    args = parser.parse_args(argv)
    traces: dict[str, list] | None = {"sigmoid": [], "tanh": []} if args.pictures else None
    np.set_printoptions(precision=8, suppress=True)
    long_run = 1002 if args.quick else 10002  # the seed ran 2 iterations, then 10,000 more
    results: dict = {}

    w0 = seed_weights(1)
    print("Weights of synapses (start)\n", w0)
    w, p = delta_rule(mg.sigmoid, w0, long_run, trace=traces["sigmoid"] if traces else None)
    results["sigmoid"] = (w, p)
    print(f"sigmoid, delta rule by autograd, {long_run} iterations:\n", w, "\npredictions\n", p)

    model = keras_style(w0.astype(np.float32), long_run)
    results["keras_weights"] = model.get_weights()[0]
    print("the same as Sequential + SGD(learning_rate=2.0):\n", results["keras_weights"])

    w, p = delta_rule(mg.tanh, seed_weights(5), 300, trace=traces["tanh"] if traces else None)
    results["tanh"] = (w, p)
    print("tanh, 300 iterations:\n", w, "\npredictions\n", p)

    w, p = relu_softmax_rule(seed_weights(5, shift=0.0), 2000)
    results["relu_softmax"] = (w, p)
    print("relu + softmax (the seed's rule), 2000 iterations:\n", w, "\npredictions\n", p)

    # Reuse: the architecture and the trained weights are the whole model.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "neuron.npz")
        model.save_weights(path)
        fresh = Sequential([Dense(1, activation="sigmoid", use_bias=False, input_dim=3)])
        fresh.load_weights(path)
    new = np.array([[1, 0, 1]])
    results["new_prediction"] = float(fresh.predict(new)[0, 0])
    print(f"prediction for new data {new.tolist()} from the reloaded weights: "
          f"{results['new_prediction']:.8f}")
    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
        path = os.path.join(args.pictures, "perceptron_training.png")
        plot_training(traces, path)
        print("wrote", path)
    return results


if __name__ == "__main__":
    main()
