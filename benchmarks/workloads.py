"""The reference training workloads of WORKLOADS.md, for microgradnet and for PyTorch eager.

Data in float32, generated with numpy exactly as written there; initial weights as written
there (W1: w = 0.5, b = 0.1; W2/W3: Glorot-uniform from default_rng(1234) layer by layer,
biases zero), so that every framework starts from the same point. Each runner times the
training call only and returns (seconds, steps, final loss on the full training set).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.models import Sequential


@dataclass
class Workload:
    """One training workload: data, architecture and hyper-parameters."""

    name: str
    x: np.ndarray
    y: np.ndarray
    sizes: list[int]  # layer widths, input first
    hidden: str  # hidden activation
    output: str  # output activation ("linear", "relu" or "sigmoid")
    loss: str  # "mse" or "bce"
    optimizer: str  # "sgd" or "adam"
    lr: float
    batch: int
    epochs: int

    @property
    def steps(self) -> int:
        """Optimizer steps in the whole run."""
        return self.epochs * -(-len(self.x) // self.batch)

    def initial_weights(self) -> list[np.ndarray]:
        """[kernel, bias, kernel, bias, ...] as WORKLOADS.md says."""
        if self.name == "W1":
            return [np.array([[0.5]], np.float32), np.array([0.1], np.float32)]
        rng = np.random.default_rng(1234)
        weights = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            limit = np.sqrt(6 / (fan_in + fan_out))
            weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
            weights.append(np.zeros(fan_out, np.float32))
        return weights


def w1(epochs: int = 2000) -> Workload:
    """W1: a single ReLU neuron on the bilinear data (seeds 000/001)."""
    x = np.linspace(0, 2, 200)
    y = np.concatenate([np.zeros(100), x[:100]]) * 2
    return Workload("W1", x.reshape(-1, 1).astype(np.float32), y.reshape(-1, 1).astype(
        np.float32), [1, 1], "relu", "relu", "mse", "sgd", 0.01, 50, epochs)


def _sine() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 500)
    y = np.sin(x) + rng.normal(0, 0.1, 500)
    x = x / 5 - 1
    return x.reshape(-1, 1).astype(np.float32), y.reshape(-1, 1).astype(np.float32)


def w2a(epochs: int = 1000) -> Workload:
    """W2a: Dense(60, tanh) -> Dense(1) on the noisy sine, Adam."""
    x, y = _sine()
    return Workload("W2a", x, y, [1, 60, 1], "tanh", "linear", "mse", "adam", 0.01, 50, epochs)


def w2b(epochs: int = 1000) -> Workload:
    """W2b: Dense(10, tanh) -> Dense(10, tanh) -> Dense(1) on the noisy sine, Adam."""
    x, y = _sine()
    return Workload("W2b", x, y, [1, 10, 10, 1], "tanh", "linear", "mse", "adam", 0.01, 50,
                    epochs)


def w3(activation: str, epochs: int = 100) -> Workload:
    """W3: 2 -> 32 -> 32 -> 1 on two moons, hidden `activation`, sigmoid output, BCE, SGD."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, np.pi, 500)
    first = np.stack([np.cos(t), np.sin(t)], axis=1)
    second = np.stack([1 - np.cos(t), 1 - np.sin(t) - 0.5], axis=1)
    x = np.concatenate([first, second])
    x = x + rng.normal(0, 0.1, x.shape)
    y = np.concatenate([np.zeros(500), np.ones(500)]).reshape(-1, 1)
    return Workload(f"W3 {activation}", x.astype(np.float32), y.astype(np.float32),
                    [2, 32, 32, 1], activation, "sigmoid", "bce", "sgd", 0.1, 32, epochs)


def all_workloads(quick: bool = False) -> list[Workload]:
    """W1, W2a, W2b and W3 with each hidden activation (fewer epochs when quick)."""
    scale = 10 if quick else 1
    return [w1(2000 // scale), w2a(1000 // scale), w2b(1000 // scale),
            *(w3(a, 100 // scale) for a in ("relu", "sigmoid", "tanh"))]


# ---------------------------------------------------------------------------- runners


def run_microgradnet(w: Workload, seed: int = 0) -> tuple[float, int, float]:
    """Train with Sequential.fit; return (seconds, steps, final loss)."""
    mg.manual_seed(seed)
    layers = []
    for i, units in enumerate(w.sizes[1:]):
        last = i == len(w.sizes) - 2
        layers.append(Dense(units, activation=w.output if last else w.hidden,
                            input_dim=w.sizes[0] if i == 0 else None))
    model = Sequential(layers)
    model.set_weights(w.initial_weights())
    opt = (mg.optimizers.SGD(learning_rate=w.lr) if w.optimizer == "sgd"
           else mg.optimizers.Adam(learning_rate=w.lr))
    model.compile(optimizer=opt, loss="mse" if w.loss == "mse" else "binary_crossentropy")
    t0 = time.perf_counter()
    history = model.fit(w.x, w.y, batch_size=w.batch, epochs=w.epochs, verbose=0)
    seconds = time.perf_counter() - t0
    return seconds, len(history.batch_history["loss"]), float(model.evaluate(w.x, w.y))


def run_torch(w: Workload, torch, seed: int = 0) -> tuple[float, int, float]:
    """The same training as a plain PyTorch eager loop; return (seconds, steps, final loss)."""
    torch.manual_seed(seed)
    modules = []
    weights = w.initial_weights()
    for i in range(len(w.sizes) - 1):
        lin = torch.nn.Linear(w.sizes[i], w.sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
        modules.append(lin)
        act = w.output if i == len(w.sizes) - 2 else w.hidden
        if act == "relu":
            modules.append(torch.nn.ReLU())
        elif act == "tanh":
            modules.append(torch.nn.Tanh())
        elif act == "sigmoid" and not (i == len(w.sizes) - 2 and w.loss == "bce"):
            modules.append(torch.nn.Sigmoid())
    net = torch.nn.Sequential(*modules)
    loss_fn = torch.nn.MSELoss() if w.loss == "mse" else torch.nn.BCEWithLogitsLoss()
    opt = (torch.optim.SGD(net.parameters(), lr=w.lr) if w.optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=w.lr, eps=1e-7))
    x, y = torch.from_numpy(w.x), torch.from_numpy(w.y)
    n = len(w.x)
    rng = np.random.default_rng(seed)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(w.epochs):
        order = torch.from_numpy(rng.permutation(n))
        for start in range(0, n, w.batch):
            idx = order[start:start + w.batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            steps += 1
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        final = float(loss_fn(net(x), y))
    return seconds, steps, final
