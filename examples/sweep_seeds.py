"""The seeds' grids, one mg.sweep call each: 000/001 (batch size x shuffling seed for the
ReLU neuron), 003 (activation x initialization on two moons), 004 (architecture x optimizer
on the noisy sine).

    python examples/sweep_seeds.py [--quick] [--pictures DIR] [--n-jobs N]

Each run is seeded from its config, so every number here is the same to the bit as the
single-run scripts (single_neuron.py, activations_moons.py, tiny_sine.py) print, whatever
--n-jobs is. With --pictures, writes the sweeps' pictures (mg.viz.plot_sweep).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import microgradnet as mg
from microgradnet.initializers import Constant
from microgradnet.layers import Activation, Dense
from microgradnet.optimizers import SGD, Adam


def _sibling(name: str):
    """The single-run script `name`.py beside this one, as a module: the seeds' data are
    written once, there."""
    spec = importlib.util.spec_from_file_location(f"_seed_{name}",
                                                  Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bilinear_data = _sibling("single_neuron").bilinear_data  # seeds 000/001
two_moons = _sibling("activations_moons").two_moons  # seed 003
noisy_sine = _sibling("tiny_sine").noisy_sine  # seed 004


def neuron(config: dict) -> mg.Sequential:
    """Seeds 000/001: Dense(1) + ReLU from w = 0.5, b = 0.1, SGD (Keras' 0.01)."""
    model = mg.Sequential([Dense(1, input_dim=1, kernel_initializer=Constant(0.5),
                                 bias_initializer=Constant(0.1)), Activation("relu")])
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


def classifier(config: dict) -> mg.Sequential:
    """Seed 003: 2 -> 32 -> 32 -> 1, the config's hidden activation and initializer."""
    kernel = (mg.initializers.RandomNormal(0.0, 1.0) if config["init"] == "random_normal"
              else "zeros")
    model = mg.Sequential([
        Dense(32, activation=config["activation"], input_dim=2, kernel_initializer=kernel),
        Dense(32, activation=config["activation"], kernel_initializer=kernel),
        Dense(1, activation="sigmoid", kernel_initializer=kernel),
    ])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def sine_net(config: dict) -> mg.Sequential:
    """Seed 004: 1x60 or 2x10 tanh units, SGD or Adam (0.01), mean squared error."""
    hidden = {"1x60": [60], "2x10": [10, 10]}[config["net"]]
    layers = [Dense(units, activation="tanh", **({"input_dim": 1} if i == 0 else {}))
              for i, units in enumerate(hidden)]
    model = mg.Sequential([*layers, Dense(1)])
    optimizer = SGD() if config["optimizer"] == "sgd" else Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    return model


def main(argv: list[str] | None = None) -> dict:
    """Run the three sweeps, print their tables, and (--pictures) draw them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    parser.add_argument("--pictures", metavar="DIR", help="write the pictures here")
    parser.add_argument("--n-jobs", type=int, default=1, help="worker processes (-1: all)")
    args = parser.parse_args(argv)
    common = {"n_jobs": args.n_jobs, "progress": False, "keep_weights": True}

    x, y = bilinear_data()
    neurons = mg.sweep(neuron, mg.grid(batch_size=[50, 200], seed=range(3)), x, y,
                       epochs=200 if args.quick else 2000, target={"loss": 1e-3}, **common)
    print("Seeds 000/001: one ReLU neuron, batch size x shuffling seed")
    print(neurons, end="\n\n")

    xm, ym = two_moons()
    moons = mg.sweep(classifier, mg.grid(activation=["relu", "sigmoid", "tanh"],
                                         init=["random_normal", "zeros"]),
                     xm, ym, epochs=20 if args.quick else 100, batch_size=32, **common)
    print("Seed 003: activation x initialization on two moons")
    print(moons, end="\n\n")

    xs, ys = noisy_sine()
    sines = mg.sweep(sine_net, mg.grid(net=["1x60", "2x10"], optimizer=["sgd", "adam"],
                                       seed=[1234]),
                     xs, ys, epochs=100 if args.quick else 1000, batch_size=50, **common)
    print("Seed 004: architecture x optimizer on the noisy sine")
    print(sines)

    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
        figures = {
            "sweep_neuron_losses.png": mg.viz.plot_sweep(neurons, col="batch_size",
                                                         kind="loss", hue="seed"),
            "sweep_moons_boundaries.png": mg.viz.plot_sweep(moons, row="init",
                                                            col="activation", kind="boundary"),
            "sweep_moons_accuracy.png": mg.viz.plot_sweep(moons, row="init", col="activation",
                                                          kind="heatmap", metric="accuracy"),
            "sweep_sine_curves.png": mg.viz.plot_sweep(sines, row="net", col="optimizer",
                                                       kind="curve"),
        }
        for name, fig in figures.items():
            path = os.path.join(args.pictures, name)
            fig.savefig(path, dpi=80)
            print("wrote", path)
    return {"neurons": neurons, "moons": moons, "sines": sines}


if __name__ == "__main__":
    main()
