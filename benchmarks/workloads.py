"""The training workloads of WORKLOADS.md and seed 002, and one runner per framework.

Data in float32, generated with numpy exactly as WORKLOADS.md writes it; initial weights as it
writes them (W1: w = 0.5, b = 0.1; W2-W4: Glorot-uniform from default_rng(1234) layer by layer,
biases zero; the perceptron: the seed's `2 * random((3, 1)) - 1` after `np.random.seed(1)`), so
that every framework starts from the same point. Every framework shuffles with the same
permutations: `default_rng(seed).permutation(n)` once per epoch, which is what
`Sequential.fit` draws after `mg.manual_seed(seed)`.

Each runner trains once and returns a `Run`: the seconds of the training loop, the number of
optimizer steps and the parameters at the end of every epoch. Keeping those snapshots is the
only thing done inside the timed loop besides training (a reference, or a copy of the weights,
once per epoch); the loss and accuracy on the full training set are computed from them after
the clock has stopped, by one float64 numpy forward pass shared by all frameworks
(`evaluate`), so "steps to target" and "final loss" mean the same thing everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from microgradnet.activation_table import ACTIVATIONS as ACTIVATION_TABLE

# Hidden activations the training section sweeps (step has a zero gradient: it cannot train).
HIDDEN = [a.name for a in ACTIVATION_TABLE if a.trainable]
# W1's neuron must reach y = 2: sigmoid and tanh saturate at 1, so they are left out there.
W1_ACTIVATIONS = [a.name for a in ACTIVATION_TABLE if a.trainable and not a.bounded]


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))  # as one writes it by hand (exp overflows to inf: still right)


def _np_gelu():
    from scipy.special import erf

    c = 0.7071067811865476

    def fwd(x):
        return 0.5 * x * (1 + erf(x * x.dtype.type(c)))

    def bwd(dy, x, y):
        cdf = 0.5 * (1 + erf(x * x.dtype.type(c)))
        return dy * (cdf + x * np.exp(-0.5 * x * x) * x.dtype.type(0.3989422804014327))

    return fwd, bwd


def _np_silu_bwd(dy, x, y):
    s = _np_sigmoid(x)
    return dy * s * (1 + x * (1 - s))


def _np_mish_bwd(dy, x, y):
    t = np.tanh(np.logaddexp(x, x.dtype.type(0)))
    return dy * (t + x * _np_sigmoid(x) * (1 - t * t))


# Keras' selu constants, as float32 (the data's dtype)
_SELU_ALPHA = np.float32(1.6732632423543772848170429916717)
_SELU_SCALE = np.float32(1.0507009873554804934193349852946)


# Plain numpy forward f(x) and backward (dy, x, y) -> dy * f'(x), the way one writes them by
# hand (several passes each); the numpy-by-hand peer and the derivatives section use them.
NUMPY_ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda x: x, lambda dy, x, y: dy),
    "relu": (lambda x: np.maximum(x, 0), lambda dy, x, y: dy * (x > 0)),
    "leaky_relu": (lambda x: np.where(x > 0, x, x.dtype.type(0.01) * x),
                   lambda dy, x, y: dy * np.where(x > 0, 1.0, 0.01).astype(x.dtype)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda dy, x, y: dy * np.where(x > 0, 1, y + 1)),
    "sigmoid": (_np_sigmoid, lambda dy, x, y: dy * y * (1 - y)),
    "tanh": (np.tanh, lambda dy, x, y: dy * (1 - y * y)),
    "softplus": (lambda x: np.logaddexp(x, x.dtype.type(0)),
                 lambda dy, x, y: dy * _np_sigmoid(x)),
    "gelu": _np_gelu(),
    "silu": (lambda x: x * _np_sigmoid(x), _np_silu_bwd),
    "step": (lambda x: (x >= 0).astype(x.dtype), lambda dy, x, y: np.zeros_like(dy)),
    "selu": (lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda dy, x, y: dy * np.where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA)),
    "mish": (lambda x: x * np.tanh(np.logaddexp(x, x.dtype.type(0))), _np_mish_bwd),
}


@dataclass
class Workload:
    """One training run: data, architecture, hyper-parameters and the target to reach."""

    name: str  # e.g. "W3 relu"
    family: str  # "W1", "W2a", "W2b", "W3", "W4" or "P" (the seed-002 perceptron)
    x: np.ndarray
    y: np.ndarray  # (n, 1) float32, or (n,) int64 class labels for softmax_ce
    sizes: list[int]  # layer widths, input first
    hidden: str  # hidden activation
    output: str  # output activation: "linear", "relu", "sigmoid" or "tanh"
    loss: str  # "mse", "bce" (on the sigmoid output's logits) or "softmax_ce" (on logits)
    optimizer: str  # "sgd" or "adam"
    lr: float
    batch: int
    epochs: int
    metric: str  # what the target is stated on: "loss" (<=) or "accuracy" (>=)
    target: float
    as_written: bool  # the configuration of WORKLOADS.md (or of the seed), maybe shortened
    full_epochs: int  # the epochs WORKLOADS.md (or the seed) writes
    shuffle: bool = True
    use_bias: bool = True
    start: list[np.ndarray] | None = field(default=None, repr=False)  # initial weights

    @property
    def exact(self) -> bool:
        """The configuration exactly as written, epochs included."""
        return self.as_written and self.epochs == self.full_epochs

    @property
    def activation(self) -> str:
        """The activation this run varies: the hidden one, or the output one without hidden."""
        return self.hidden if len(self.sizes) > 2 else self.output

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch (the last one may be short)."""
        return -(-len(self.x) // self.batch)

    @property
    def steps(self) -> int:
        """Optimizer steps in the whole run."""
        return self.epochs * self.steps_per_epoch

    @property
    def target_text(self) -> str:
        """The target in words, e.g. "loss <= 0.001"."""
        op = "<=" if self.metric == "loss" else ">="
        return f"{self.metric} {op} {self.target:g}"

    def reached(self, metrics: dict) -> bool:
        """Whether full-training-set metrics meet the target."""
        if self.metric == "loss":
            return metrics["loss"] <= self.target
        return metrics["accuracy"] >= self.target

    def initial_weights(self) -> list[np.ndarray]:
        """[kernel, bias, kernel, bias, ...] (kernels only without biases), float32."""
        if self.start is not None:
            return [w.copy() for w in self.start]
        rng = np.random.default_rng(1234)
        weights = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            limit = np.sqrt(6 / (fan_in + fan_out))
            weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
            if self.use_bias:
                weights.append(np.zeros(fan_out, np.float32))
        return weights

    def layer_activations(self) -> list[str]:
        """The activation after each Dense layer."""
        n = len(self.sizes) - 1
        return [self.hidden] * (n - 1) + [self.output]

    def permutations(self, seed: int = 0) -> list[np.ndarray | None]:
        """The sample order of every epoch, as Sequential.fit draws it after manual_seed."""
        rng = np.random.default_rng(seed)
        n = len(self.x)
        return [rng.permutation(n) if self.shuffle else None for _ in range(self.epochs)]


# ---------------------------------------------------------------------------- the workloads


def w1(activation: str = "relu", epochs: int = 2000) -> Workload:
    """W1: a single neuron on the bilinear data (seeds 000/001); relu as written."""
    x = np.linspace(0, 2, 200)
    y = np.concatenate([np.zeros(100), x[:100]]) * 2
    start = [np.array([[0.5]], np.float32), np.array([0.1], np.float32)]
    return Workload(f"W1 {activation}", "W1", x.reshape(-1, 1).astype(np.float32),
                    y.reshape(-1, 1).astype(np.float32), [1, 1], "linear", activation, "mse",
                    "sgd", 0.01, 50, epochs, "loss", 1e-3, activation == "relu", 2000, start=start)


def _sine() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 500)
    y = np.sin(x) + rng.normal(0, 0.1, 500)
    x = x / 5 - 1
    return x.reshape(-1, 1).astype(np.float32), y.reshape(-1, 1).astype(np.float32)


def w2a(activation: str = "tanh", epochs: int = 1000) -> Workload:
    """W2a: Dense(60, activation) -> Dense(1) on the noisy sine, Adam; tanh as written."""
    x, y = _sine()
    return Workload(f"W2a {activation}", "W2a", x, y, [1, 60, 1], activation, "linear", "mse",
                    "adam", 0.01, 50, epochs, "loss", 0.02, activation == "tanh", 1000)


def w2b(activation: str = "tanh", epochs: int = 1000) -> Workload:
    """W2b: Dense(10) -> Dense(10) -> Dense(1) on the noisy sine, Adam; tanh as written."""
    x, y = _sine()
    return Workload(f"W2b {activation}", "W2b", x, y, [1, 10, 10, 1], activation, "linear",
                    "mse", "adam", 0.01, 50, epochs, "loss", 0.02, activation == "tanh", 1000)


def moons() -> tuple[np.ndarray, np.ndarray]:
    """W3's two moons, N = 1000, noise 0.1, default_rng(0)."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, np.pi, 500)
    first = np.stack([np.cos(t), np.sin(t)], axis=1)
    second = np.stack([1 - np.cos(t), 1 - np.sin(t) - 0.5], axis=1)
    x = np.concatenate([first, second])
    x = x + rng.normal(0, 0.1, x.shape)
    y = np.concatenate([np.zeros(500), np.ones(500)]).reshape(-1, 1)
    return x.astype(np.float32), y.astype(np.float32)


def w3(activation: str, epochs: int = 100) -> Workload:
    """W3: 2 -> 32 -> 32 -> 1 on two moons, hidden `activation`, sigmoid output, BCE, SGD."""
    x, y = moons()
    return Workload(f"W3 {activation}", "W3", x, y, [2, 32, 32, 1], activation, "sigmoid", "bce",
                    "sgd", 0.1, 32, epochs, "accuracy", 0.97,
                    activation in ("relu", "sigmoid", "tanh"), 100)


def w4(epochs: int = 3) -> Workload:
    """W4: 784 -> 512 -> 256 -> 10 relu, softmax cross-entropy on logits, Adam 1e-3, batch 128."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (8192, 784))
    r = rng.normal(0, 1, (784, 10))
    labels = np.argmax(x @ r, axis=1).astype(np.int64)
    return Workload("W4 relu", "W4", x.astype(np.float32), labels, [784, 512, 256, 10], "relu",
                    "linear", "softmax_ce", "adam", 1e-3, 128, epochs, "accuracy", 0.9, True, 3)


PERCEPTRON_X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], np.float32)
PERCEPTRON_Y = np.array([[0, 1, 1, 0]], np.float32).T


def perceptron(activation: str = "sigmoid", epochs: int | None = None) -> Workload:
    """Seed 002: one neuron, no bias, on 4 points; the delta rule is SGD(2.0) on the MSE.

    As the seed: sigmoid from `np.random.seed(1)` for 10,002 iterations, tanh from
    `np.random.seed(5)` for 300 (examples/perceptron.py shows the equivalence)."""
    seed, default = (1, 10002) if activation == "sigmoid" else (5, 300)
    epochs = default if epochs is None else epochs
    w0 = (2 * np.random.RandomState(seed).random_sample((3, 1)) - 1).astype(np.float32)
    return Workload(f"P {activation}", "P", PERCEPTRON_X, PERCEPTRON_Y, [3, 1], "linear",
                    activation, "mse", "sgd", 2.0, 4, epochs, "loss", 0.01,
                    activation in ("sigmoid", "tanh"), default, shuffle=False, use_bias=False,
                    start=[w0])


def training_workloads(scale: float = 1.0, smoke: bool = False) -> list[Workload]:
    """Every training-section run: W1-W3 with each sensible activation, W4, the perceptron.

    `scale` < 1 shortens the runs (epochs scaled, at least 1); `smoke` keeps two of each."""
    def ep(n: int) -> int:
        return max(1, round(n * scale))

    w1_acts = ["relu", "softplus"] if smoke else W1_ACTIVATIONS
    hidden = ["relu", "tanh"] if smoke else HIDDEN
    runs = [w1(a, ep(2000)) for a in w1_acts]
    runs += [w2a(a, ep(1000)) for a in hidden]
    runs += [] if smoke else [w2b(a, ep(1000)) for a in hidden]
    runs += [w3(a, ep(100)) for a in hidden]
    runs += [] if smoke else [w4(max(1, round(3 * scale)))]
    runs += [perceptron("sigmoid", ep(10002)), perceptron("tanh", ep(300))]
    return runs


def peer_workloads(scale: float = 1.0, smoke: bool = False) -> list[Workload]:
    """The runs the peers repeat: the configurations of WORKLOADS.md and seed 002 (scaled)."""
    def ep(n: int) -> int:
        return max(1, round(n * scale))

    if smoke:
        return [w1("relu", ep(2000)), w3("relu", ep(100)), perceptron("sigmoid", ep(10002))]
    return [w1("relu", ep(2000)), w2a("tanh", ep(1000)), w2b("tanh", ep(1000)),
            *(w3(a, ep(100)) for a in ("relu", "sigmoid", "tanh")), w4(max(1, round(3 * scale))),
            perceptron("sigmoid", ep(10002))]


# ---------------------------------------------------------------------------- evaluation


def forward_numpy(w: Workload, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's output (after the output activation; logits for softmax_ce), by numpy."""
    h = x
    params = iter(weights)
    for act in w.layer_activations():
        kernel = next(params)
        h = h @ kernel
        if w.use_bias:
            h = h + next(params)
        h = NUMPY_ACTIVATIONS[act][0](h)
    return h


def evaluate(w: Workload, weights: list[np.ndarray]) -> dict:
    """Loss and accuracy on the full training set, in float64, from the given weights."""
    with np.errstate(over="ignore"):
        out = forward_numpy(w, [np.asarray(p, np.float64) for p in weights],
                            w.x.astype(np.float64))
    if w.loss == "mse":
        loss = float(np.mean((out - w.y) ** 2))
        return {"loss": loss, "accuracy": float(np.mean((out > 0.5) == (w.y > 0.5)))}
    if w.loss == "bce":
        p = np.clip(out, 1e-12, 1 - 1e-12)
        loss = float(-np.mean(w.y * np.log(p) + (1 - w.y) * np.log(1 - p)))
        return {"loss": loss, "accuracy": float(np.mean((out > 0.5) == (w.y > 0.5)))}
    z = out - out.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-np.mean(logp[np.arange(len(w.y)), w.y]))
    return {"loss": loss, "accuracy": float(np.mean(np.argmax(out, axis=1) == w.y))}


@dataclass
class Run:
    """What one training run gives: time, steps, and the weights after every epoch."""

    seconds: float
    steps: int
    snapshots: list[list[np.ndarray]]  # one weight list per epoch, in initial_weights' order
    cpu_per_wall: float = float("nan")  # filled in by the caller that times the call


def summarize(w: Workload, run: Run) -> dict:
    """final_loss, final_accuracy and steps_to_target (None if never reached) of a run."""
    final = evaluate(w, run.snapshots[-1])
    steps_to_target = None
    for epoch, weights in enumerate(run.snapshots):
        if w.reached(evaluate(w, weights) if epoch < len(run.snapshots) - 1 else final):
            steps_to_target = (epoch + 1) * w.steps_per_epoch
            break
    return {"final_loss": final["loss"], "final_accuracy": final["accuracy"],
            "steps_to_target": steps_to_target}


# ---------------------------------------------------------------------------- microgradnet


def run_microgradnet(w: Workload, seed: int = 0, jit_compile: bool | str = "auto") -> Run:
    """Train with Sequential.fit; return the time of a run without callbacks, and the weights
    after every epoch from a second, untimed run that records them (the same bits: checked).

    The timed run is what a user's fit does: with no callback it is the captured step
    (microgradnet.fastpath) in one call for the whole run, unless jit_compile=False (eager).
    A callback at every epoch end would make fit return to Python once per epoch.
    """
    import microgradnet as mg
    from microgradnet.callbacks import Callback
    from microgradnet.layers import Dense
    from microgradnet.losses import SparseCategoricalCrossentropy
    from microgradnet.models import Sequential

    def build():
        layers = []
        for i, (units, act) in enumerate(zip(w.sizes[1:], w.layer_activations(), strict=True)):
            layers.append(Dense(units, activation=act, use_bias=w.use_bias,
                                input_dim=w.sizes[0] if i == 0 else None))
        model = Sequential(layers)
        model.set_weights(w.initial_weights())
        opt = (mg.optimizers.SGD(learning_rate=w.lr) if w.optimizer == "sgd"
               else mg.optimizers.Adam(learning_rate=w.lr))
        loss = {"mse": "mean_squared_error", "bce": "binary_crossentropy",
                "softmax_ce": SparseCategoricalCrossentropy(from_logits=True)}[w.loss]
        model.compile(optimizer=opt, loss=loss, jit_compile=jit_compile)
        # Seeded after the model is built (building draws initial weights), so that fit's
        # permutations are default_rng(seed)'s, as in every other runner.
        mg.manual_seed(seed)
        return model

    model = build()
    t0 = time.perf_counter()
    history = model.fit(w.x, w.y, batch_size=w.batch, epochs=w.epochs, verbose=0,
                        shuffle=w.shuffle)
    seconds = time.perf_counter() - t0
    timed_final = model.get_weights()

    snapshots: list[list[np.ndarray]] = []
    model = build()

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([p.copy() for p in model.get_weights()])

    model.fit(w.x, w.y, batch_size=w.batch, epochs=w.epochs, verbose=0, shuffle=w.shuffle,
              callbacks=[Snapshot()])
    if not all(np.array_equal(a, b) for a, b in zip(timed_final, snapshots[-1], strict=True)):
        raise RuntimeError(f"{w.name}: the timed run and the recorded run of microgradnet "
                           "ended with different weights")
    return Run(seconds, len(history.batch_history["loss"]), snapshots)


# ---------------------------------------------------------------------------- numpy by hand


def _adam(lr: float, params: list[np.ndarray]):
    """Keras' Adam (beta 0.9/0.999, epsilon 1e-7) in numpy, in place; returns update(grads)."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0

    def update(grads):
        nonlocal t
        t += 1
        alpha = np.float32(lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t))
        for p, g, mi, vi in zip(params, grads, m, v, strict=True):
            mi += (g - mi) * np.float32(0.1)
            vi += (g * g - vi) * np.float32(0.001)
            p -= (mi * alpha) / (np.sqrt(vi) + np.float32(1e-7))

    return update


def run_numpy(w: Workload, seed: int = 0) -> Run:
    """Forward, backward and the update written by hand in numpy (float32)."""
    params = w.initial_weights()
    acts = w.layer_activations()
    n_layers = len(acts)
    kernels = params[:: 2 if w.use_bias else 1]
    biases = params[1::2] if w.use_bias else []
    if w.optimizer == "sgd":
        lr = np.float32(w.lr)

        def update(grads):
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
    else:
        update = _adam(w.lr, params)
    onehot = np.eye(w.sizes[-1], dtype=np.float32) if w.loss == "softmax_ce" else None
    orders = w.permutations(seed)
    n = len(w.x)
    snapshots = []
    steps = 0
    # exp(-x) in a by-hand sigmoid may overflow to inf, which still gives the right 0.
    with np.errstate(over="ignore"):
        t0 = time.perf_counter()
        for order in orders:
            for start in range(0, n, w.batch):
                if order is None:
                    xb, yb = w.x[start:start + w.batch], w.y[start:start + w.batch]
                else:
                    idx = order[start:start + w.batch]
                    xb, yb = w.x[idx], w.y[idx]
                zs, hs = [], [xb]
                for i in range(n_layers):
                    z = hs[-1] @ kernels[i]
                    if w.use_bias:
                        z += biases[i]
                    zs.append(z)
                    hs.append(NUMPY_ACTIVATIONS[acts[i]][0](z))
                out, m = hs[-1], len(xb)
                if w.loss == "mse":
                    dz = NUMPY_ACTIVATIONS[acts[-1]][1](
                        (out - yb) * np.float32(2 / out.size), zs[-1], out)
                elif w.loss == "bce":  # sigmoid output: d/dlogits of the mean BCE
                    dz = (out - yb) * np.float32(1 / m)
                else:
                    e = np.exp(out - out.max(axis=1, keepdims=True))
                    dz = (e / e.sum(axis=1, keepdims=True) - onehot[yb]) * np.float32(1 / m)
                gk, gb = [None] * n_layers, [None] * n_layers
                for i in range(n_layers - 1, -1, -1):
                    gk[i] = hs[i].T @ dz
                    if w.use_bias:
                        gb[i] = dz.sum(axis=0)
                    if i:
                        dz = NUMPY_ACTIVATIONS[acts[i - 1]][1](dz @ kernels[i].T, zs[i - 1], hs[i])
                grads = [g for pair in zip(gk, gb, strict=True) for g in pair if g is not None]
                update(grads)
                steps += 1
            snapshots.append([p.copy() for p in params])
        seconds = time.perf_counter() - t0
    return Run(seconds, steps, snapshots)


# ---------------------------------------------------------------------------- PyTorch eager


def _torch_activation(torch, name: str):
    nn = torch.nn
    return {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "elu": nn.ELU,
            "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softplus": nn.Softplus, "gelu": nn.GELU,
            "silu": nn.SiLU, "selu": nn.SELU, "mish": nn.Mish, "linear": nn.Identity}[name]()


def run_torch(w: Workload, torch, seed: int = 0) -> Run:
    """The same training as a plain PyTorch eager loop (torch.optim; its Adam with eps 1e-7)."""
    torch.manual_seed(seed)
    modules = []
    weights = w.initial_weights()
    params = iter(weights)
    linears = []
    acts = w.layer_activations()
    for i, act in enumerate(acts):
        lin = torch.nn.Linear(w.sizes[i], w.sizes[i + 1], bias=w.use_bias)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(next(params).T.copy()))
            if w.use_bias:
                lin.bias.copy_(torch.from_numpy(next(params)))
        modules.append(lin)
        linears.append(lin)
        last = i == len(acts) - 1
        if not (last and w.loss == "bce"):  # BCEWithLogitsLoss applies the sigmoid
            modules.append(_torch_activation(torch, act))
    net = torch.nn.Sequential(*modules)
    loss_fn = {"mse": torch.nn.MSELoss, "bce": torch.nn.BCEWithLogitsLoss,
               "softmax_ce": torch.nn.CrossEntropyLoss}[w.loss]()
    opt = (torch.optim.SGD(net.parameters(), lr=w.lr) if w.optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=w.lr, eps=1e-7))
    x, y = torch.from_numpy(w.x), torch.from_numpy(w.y)
    n = len(w.x)
    orders = [None if o is None else torch.from_numpy(o) for o in w.permutations(seed)]
    snapshots = []
    steps = 0
    t0 = time.perf_counter()
    for order in orders:
        for start in range(0, n, w.batch):
            if order is None:
                xb, yb = x[start:start + w.batch], y[start:start + w.batch]
            else:
                idx = order[start:start + w.batch]
                xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            steps += 1
        with torch.no_grad():
            snapshots.append([t.detach().clone() for lin in linears
                              for t in ((lin.weight, lin.bias) if w.use_bias else (lin.weight,))])
    seconds = time.perf_counter() - t0
    # Back to our layout ([in, out] kernels) after the clock stopped.
    snapshots = [[t.numpy().T if t.ndim == 2 else t.numpy() for t in snap] for snap in snapshots]
    return Run(seconds, steps, snapshots)


# ---------------------------------------------------------------------------- JAX


def _jax_parts(w: Workload, jax):
    """(loss(params, xb, yb), init_opt_state, update(params, state, grads)) in jax."""
    jnp = jax.numpy
    acts = {"relu": jax.nn.relu, "leaky_relu": jax.nn.leaky_relu, "elu": jax.nn.elu,
            "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "softplus": jax.nn.softplus,
            "gelu": lambda z: jax.nn.gelu(z, approximate=False), "silu": jax.nn.silu,
            "selu": jax.nn.selu, "mish": lambda z: z * jnp.tanh(jax.nn.softplus(z)),
            "linear": lambda z: z}
    layer_acts = w.layer_activations()
    per_layer = 2 if w.use_bias else 1

    def loss_fn(params, xb, yb):
        h = xb
        for i, act in enumerate(layer_acts):
            h = h @ params[per_layer * i]
            if w.use_bias:
                h = h + params[per_layer * i + 1]
            if i < len(layer_acts) - 1 or w.loss == "mse":
                h = acts[act](h)
        if w.loss == "mse":
            return jnp.mean((h - yb) ** 2)
        if w.loss == "bce":  # h are logits
            return jnp.mean(jnp.maximum(h, 0) - h * yb + jnp.log1p(jnp.exp(-jnp.abs(h))))
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    if w.optimizer == "sgd":
        def init(params):
            return ()

        def update(params, state, grads):
            return tuple(p - w.lr * g for p, g in zip(params, grads, strict=True)), state
    else:
        def init(params):
            zeros = tuple(jnp.zeros_like(p) for p in params)
            return (zeros, zeros, jnp.zeros((), jnp.float32))

        def update(params, state, grads):  # Keras' Adam, as the numpy one
            m, v, t = state
            t = t + 1
            alpha = w.lr * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            m = tuple(mi + (g - mi) * 0.1 for mi, g in zip(m, grads, strict=True))
            v = tuple(vi + (g * g - vi) * 0.001 for vi, g in zip(v, grads, strict=True))
            params = tuple(p - (mi * alpha) / (jnp.sqrt(vi) + 1e-7)
                           for p, mi, vi in zip(params, m, v, strict=True))
            return params, (m, v, t)

    return loss_fn, init, update


def _jax_orders(w: Workload, seed: int) -> np.ndarray:
    n = len(w.x)
    return np.stack([np.arange(n) if o is None else o for o in w.permutations(seed)]).astype(
        np.int32)


def prepare_jax_jit(w: Workload, jax, seed: int = 0) -> Callable[[], Run]:
    """Compile one training step (gather, forward, grad, update); return a runner that calls
    it from a Python loop."""
    jnp = jax.numpy
    loss_fn, init, update = _jax_parts(w, jax)

    @jax.jit
    def step(params, state, x, y, idx):
        grads = jax.grad(loss_fn)(params, x[idx], y[idx])
        return update(params, state, grads)

    x, y = jnp.asarray(w.x), jnp.asarray(w.y)
    orders = _jax_orders(w, seed)
    n = len(w.x)
    batches = [slice(s, s + w.batch) for s in range(0, n, w.batch)]
    start = tuple(jnp.asarray(p) for p in w.initial_weights())
    # Compile before any clock starts, for every batch shape (a short last batch is another).
    for sl in {(min(n, s.stop) - s.start): s for s in batches}.values():
        jax.block_until_ready(step(start, init(start), x, y, orders[0][sl]))

    def run() -> Run:
        params = start
        state = init(params)
        jax.block_until_ready(state)
        snapshots = []
        steps = 0
        t0 = time.perf_counter()
        for order in orders:
            for sl in batches:
                params, state = step(params, state, x, y, order[sl])
                steps += 1
            snapshots.append(params)  # immutable arrays: a reference, no copy
        jax.block_until_ready(params)
        seconds = time.perf_counter() - t0
        return Run(seconds, steps, [[np.asarray(p) for p in snap] for snap in snapshots])

    return run


def prepare_jax_scan(w: Workload, jax, seed: int = 0,
                     shuffle_inside: bool = False) -> Callable[[], Run]:
    """Compile the whole training as one call (lax.scan over epochs, lax.scan over batches);
    return a runner. The scan over epochs also emits the parameters at each epoch's end.

    The orders of the epochs are numpy's permutations, made before the clock starts (the
    other frameworks' runners are given them too; only ours draws them as it trains), or,
    with shuffle_inside, drawn inside the scan by jax.random.permutation from one key per
    epoch, as an all-JAX training loop shuffles: the work `fit` does, but other orders, so
    the trajectory differs a little from everyone else's.
    """
    jnp = jax.numpy
    loss_fn, init, update = _jax_parts(w, jax)
    n = len(w.x)
    full, rest = divmod(n, w.batch)

    def step(carry, idx, x, y):
        params, state = carry
        grads = jax.grad(loss_fn)(params, x[idx], y[idx])
        return update(params, state, grads)

    def train(params, x, y, orders):
        def epoch(carry, order):
            if shuffle_inside:  # `order` is the epoch's key
                order = (jax.random.permutation(order, n) if w.shuffle
                         else jnp.arange(n, dtype=jnp.int32))
            batches = order[:full * w.batch].reshape(full, w.batch)
            carry, _ = jax.lax.scan(lambda c, idx: (step(c, idx, x, y), None), carry, batches)
            if rest:  # the short last batch has its own shape: one more step outside the scan
                carry = step(carry, order[full * w.batch:], x, y)
            return carry, carry[0]

        return jax.lax.scan(epoch, (params, init(params)), orders)

    params = tuple(jnp.asarray(p) for p in w.initial_weights())
    x, y = jnp.asarray(w.x), jnp.asarray(w.y)
    if shuffle_inside:
        orders = jax.random.split(jax.random.key(seed), w.epochs)
    else:
        orders = jnp.asarray(_jax_orders(w, seed))
    compiled = jax.jit(train).lower(params, x, y, orders).compile()

    def run() -> Run:
        t0 = time.perf_counter()
        _, snaps = compiled(params, x, y, orders)
        jax.block_until_ready(snaps)
        seconds = time.perf_counter() - t0
        snaps = [np.asarray(s) for s in snaps]
        return Run(seconds, w.steps, [[s[e] for s in snaps] for e in range(w.epochs)])

    return run
