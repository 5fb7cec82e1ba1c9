"""Issue 14's sweeps for benchmarks/run.py's `sweep` section: S1 (K nets of W3's shape, net k
Glorot-uniform from default_rng(1234 + k), SGD 0.1), S2 (the same, learning rates spread over
0.02-0.2), each run by microgradnet's engines and by the peers (JAX vmap and loop, torch.func
vmap), and a sweep of many W1-sized nets for the time spent outside the training steps.

Every microgradnet engine trains each net from the same config, so every one must end with
the same weights to the bit: the section checks it (`same_bits`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import workloads as wl

import microgradnet as mg
from microgradnet.initializers import Constant
from microgradnet.layers import Activation, Dense

SIZES = [2, 32, 32, 1]


def s_grid(kind: str, nets: int) -> list[dict]:
    """S1 ("S1": lr 0.1) or S2 ("S2": lr spread over 0.02-0.2): one config per net."""
    lrs = [0.1] * nets if kind == "S1" else np.linspace(0.02, 0.2, nets).tolist()
    return [{"k": k, "lr": lr, "seed": k} for k, lr in enumerate(lrs)]


def glorot(k: int) -> list[np.ndarray]:
    """Net k's initial weights: Glorot-uniform from default_rng(1234 + k), biases zero."""
    rng = np.random.default_rng(1234 + k)
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        limit = np.sqrt(6 / (fan_in + fan_out))
        out += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32),
                np.zeros(fan_out, np.float32)]
    return out


def build_w3(config: dict) -> mg.Sequential:
    """W3's relu net with net k's weights and the config's learning rate."""
    model = mg.Sequential([Dense(32, activation="relu", input_dim=2),
                           Dense(32, activation="relu"), Dense(1, activation="sigmoid")])
    model.set_weights(glorot(config["k"]))
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=config["lr"]),
                  loss="binary_crossentropy")
    return model


def build_w1(config: dict) -> mg.Sequential:
    """W1's neuron (w = 0.5, b = 0.1), SGD 0.01; the runs differ by their shuffling seed."""
    model = mg.Sequential([Dense(1, input_dim=1, kernel_initializer=Constant(0.5),
                                 bias_initializer=Constant(0.1)), Activation("relu")])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=0.01), loss="mean_squared_error")
    return model


def loop_of_fit(configs: list[dict], x, y, epochs: int) -> list[list[np.ndarray]]:
    """What a user writes today: seed, build and fit, net after net."""
    out = []
    for config in configs:
        mg.set_random_seed(config["seed"])
        model = build_w3(config)
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        out.append(model.get_weights())
    return out


def sweep_runner(configs: list[dict], x, y, epochs: int, **options: Any
                 ) -> Callable[[], tuple[list, str]]:
    """A runner of mg.sweep over the configs: (final weights per net, engine that ran)."""
    def run():
        results = mg.sweep(build_w3, mg.grid(configs), x, y, epochs=epochs, batch_size=32,
                           keep_weights=True, progress=False, **options)
        bad = [r for r in results if r.status != "ok"]
        if bad:
            raise RuntimeError(f"sweep run {bad[0].config} failed: {bad[0].error}")
        return [r.weights for r in results], "+".join(results.info["engine"])

    return run


# ---------------------------------------------------------------------------- peers


def _orders(nets: int, epochs: int, n: int) -> np.ndarray:
    """(nets, epochs, n) sample orders, made before any clock (the peers are given them)."""
    return np.stack([np.stack([np.random.default_rng(k).permutation(n) for _ in range(epochs)])
                     for k in range(nets)]).astype(np.int32)


def prepare_jax(configs: list[dict], x, y, epochs: int, jax, vmapped: bool
                ) -> Callable[[], tuple[list, str]]:
    """The whole run in one lax.scan (epochs, then batches), jit-compiled before any clock;
    vmapped over the stacked nets (one call) or called once per net."""
    jnp = jax.numpy
    n, batch = len(x), 32
    full, rest = divmod(n, batch)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def loss_fn(params, xb, yb):
        w1, b1, w2, b2, w3, b3 = params
        h = jax.nn.relu(xb @ w1 + b1)
        h = jax.nn.relu(h @ w2 + b2)
        z = h @ w3 + b3
        return jnp.mean(jnp.maximum(z, 0) - z * yb + jnp.log1p(jnp.exp(-jnp.abs(z))))

    def step(params, lr, idx):
        grads = jax.grad(loss_fn)(params, xj[idx], yj[idx])
        return tuple(p - lr * g for p, g in zip(params, grads, strict=True))

    def train(params, lr, orders):
        def epoch(params, order):
            batches = order[:full * batch].reshape(full, batch)
            params, _ = jax.lax.scan(lambda p, idx: (step(p, lr, idx), None), params, batches)
            if rest:
                params = step(params, lr, order[full * batch:])
            return params, None

        return jax.lax.scan(epoch, params, orders)[0]

    starts = [glorot(c["k"]) for c in configs]
    lrs = np.asarray([c["lr"] for c in configs], np.float32)
    orders = _orders(len(configs), epochs, n)
    if vmapped:
        params = tuple(jnp.asarray(np.stack([s[i] for s in starts])) for i in range(6))
        compiled = jax.jit(jax.vmap(train)).lower(params, jnp.asarray(lrs),
                                                  jnp.asarray(orders)).compile()

        def run():
            out = compiled(params, jnp.asarray(lrs), jnp.asarray(orders))
            jax.block_until_ready(out)
            return [[np.asarray(p[k]) for p in out] for k in range(len(configs))], "jax vmap"

        return run
    each = [tuple(jnp.asarray(p) for p in s) for s in starts]
    compiled = jax.jit(train).lower(each[0], jnp.float32(lrs[0]),
                                    jnp.asarray(orders[0])).compile()
    orders_j = [jnp.asarray(o) for o in orders]

    def run_each():
        outs = []
        for k in range(len(configs)):
            outs.append(compiled(each[k], jnp.float32(lrs[k]), orders_j[k]))
        jax.block_until_ready(outs)
        return [[np.asarray(p) for p in o] for o in outs], "jax scan per net"

    return run_each


def prepare_torch_vmap(configs: list[dict], x, y, epochs: int, torch
                       ) -> Callable[[], tuple[list, str]]:
    """torch.func: vmap(grad) over the stacked nets' parameters, one Python step per batch."""
    from torch.func import grad, vmap

    n, batch = len(x), 32
    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    starts = [glorot(c["k"]) for c in configs]
    lrs = torch.tensor([c["lr"] for c in configs], dtype=torch.float32)
    orders = torch.from_numpy(_orders(len(configs), epochs, n).astype(np.int64))

    def loss_fn(params, xb, yb):
        w1, b1, w2, b2, w3, b3 = params
        h = torch.relu(xb @ w1 + b1)
        h = torch.relu(h @ w2 + b2)
        return torch.nn.functional.binary_cross_entropy_with_logits(h @ w3 + b3, yb)

    grads_of = vmap(grad(loss_fn))

    def run():
        params = [torch.from_numpy(np.stack([s[i] for s in starts])) for i in range(6)]
        with torch.no_grad():
            for e in range(epochs):
                for s in range(0, n, batch):
                    idx = orders[:, e, s:s + batch]
                    grads = grads_of(params, xt[idx], yt[idx])
                    params = [p - lrs.view(-1, *([1] * (p.dim() - 1))) * g
                              for p, g in zip(params, grads, strict=True)]
        return [[p[k].numpy() for p in params] for k in range(len(configs))], "torch.func vmap"

    return run


def w1_overhead(nets: int, epochs: int, **options: Any) -> dict:
    """A sweep of W1-sized nets (seeds 0..nets-1): the share of its wall time spent outside
    fit (building, seeding, scheduling, collecting), for the engine the options choose."""
    x, y = wl.w1("relu").x, wl.w1("relu").y
    t0 = time.perf_counter()
    results = mg.sweep(build_w1, mg.grid(seed=range(nets)), x, y, epochs=epochs,
                       batch_size=50, progress=False, **options)
    wall = time.perf_counter() - t0
    workers = options.get("n_jobs", 1) if options.get("backend") != "dask" else 2
    inside = sum(r.fit_time for r in results) / max(1, workers)
    return {"wall_s": wall, "inside_fit_s": inside, "outside_share": 1 - inside / wall,
            "steps": sum(r.steps for r in results), "ok": results.counts()["ok"],
            "engine": "+".join(results.info["engine"])}
