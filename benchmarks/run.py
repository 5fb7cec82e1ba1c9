#!/usr/bin/env python
"""microgradnet benchmarks: kernels, derivatives, overhead and training speed, with peers.

    python benchmarks/run.py                 # everything (about ten minutes)
    python benchmarks/run.py --quick         # shorter runs, fewer repeats (under 2 minutes)
    python benchmarks/run.py --only derivatives --only training
    python benchmarks/run.py --smoke         # a reduced set in seconds (what the tests run)

Sections: kernels (activation kernels, both backends), gemm (large squares, and small
products with B transposed against B.T in memory), overhead (per-op cost on small
tensors), activations (forward+backward through the Tensor API, against numpy by hand,
PyTorch eager and a JAX jit, timed round-robin), derivatives (each activation's derivative
formulations side by side, checked to give the same numbers), training (WORKLOADS.md's W1-W4
and the seed-002 perceptron with each hidden activation: time per step, steps and time to a
stated target, final loss), peers (the same training in numpy by hand, PyTorch eager, a JAX
jit step and JAX's whole run in one lax.scan), animation (mg.viz.animate_predictions'
frames per second), playground (the live page's frames per second in headless
Chromium, 6x8 net with every heat map, and the training steps per second its server
sustains while the page draws, without a page, and `fit` on the same net), sweep
(issue 14's S1/S2 through a loop of fit, mg.sweep serial, on joblib workers and on Dask,
against JAX vmap and torch.func vmap; the time a sweep of many tiny nets spends outside
fit), batched (fastpath.fit_many, K nets in one call into C, against a loop of fits,
per net-step) and eager (a hand-written loop with autograd: seed 002's loop against numpy
by hand, PyTorch and JAX eager; per-op costs on (32, 32) against numpy's own op and PyTorch)
and elementwise (the eager path's add, subtract, multiply, negative and full-sum kernels
against numpy's own op on a small net's arrays).
PyTorch and JAX run only when installed: never a dependency.

Every number is a median over repeats (min also recorded) measured in this one process, so
ratios compare like with like on a noisy machine. Results go to a table per section on the
terminal, to JSON (`--out`, default benchmarks/results/run-<time>.json) and to one PNG chart
per section beside the JSON (`<stem>-<section>.png`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # workloads.py beside this file
try:
    import microgradnet as mg
except ImportError:  # run from a source checkout built in place, without `pip install .`
    sys.path.insert(1, str(HERE.parent))
    import microgradnet as mg

import workloads as wl  # noqa: E402  (found through the path above)
from readme_tables import OTHER_ORDERS as _OTHER_ORDERS  # noqa: E402
from readme_tables import PEER_COLUMNS  # noqa: E402

from microgradnet.activation_table import ACTIVATIONS as ACTIVATION_TABLE  # noqa: E402
from microgradnet.backend import kernel_table  # noqa: E402

ACTIVATIONS = [a.name for a in ACTIVATION_TABLE]
# What each backward kernel takes: the output y or the input x (csrc/README.md).
SAVES_OUTPUT = {a.name for a in ACTIVATION_TABLE if a.saves == "y"}
# The derivative recomputed from the input x instead of the saved output.
FROM_X = {"sigmoid", "tanh"}
NUMPY_ACTIVATIONS = wl.NUMPY_ACTIVATIONS

# --------------------------------------------------------------------------- timing


def _calibrate(fn: Callable[[], Any], min_repeat_s: float) -> int:
    """After a warm-up call: enough calls per loop that one loop takes min_repeat_s."""
    fn()
    number, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_repeat_s or number >= 1 << 20:
            return number
        number = max(number * 2, int(number * min_repeat_s / max(elapsed, 1e-9) * 1.1))


def measure(fn: Callable[[], Any], repeats: int, min_repeat_s: float) -> dict:
    """Median and min seconds per call of fn over `repeats` timed loops (after a warm-up)."""
    number = _calibrate(fn, min_repeat_s)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeats": repeats,
        "calls_per_repeat": number,
    }


# XLA's worker threads spin for about a millisecond after a call (measured: 1.84 cores busy
# in the first millisecond after a loop of JAX calls, 1.00 after): in a smoke run, 2 ms loops
# of ours right after JAX's kept 1.56 cores busy, 1.00 with a pause before each timed loop.
_SETTLE_S = 0.005


def measure_round_robin(fns: dict[str, Callable[[], Any]], repeats: int,
                        min_repeat_s: float) -> dict[str, dict]:
    """measure() for several functions at once: each calibrated alone, then one timed loop of
    each in turn per repeat (after a pause, _SETTLE_S), so that the machine's drift during the
    run hits all of them alike. Also the CPU time over wall time of the timed loops (cores
    kept busy)."""
    numbers = {key: _calibrate(fn, min_repeat_s) for key, fn in fns.items()}
    times: dict[str, list[float]] = {key: [] for key in fns}
    cpu = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for key, fn in fns.items():
            number = numbers[key]
            time.sleep(_SETTLE_S)
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(number):
                fn()
            wall = time.perf_counter() - t0
            cpu[key] += time.process_time() - c0
            times[key].append(wall / number)
    return {key: {
        "median_s": statistics.median(times[key]),
        "min_s": min(times[key]),
        "repeats": repeats,
        "calls_per_repeat": numbers[key],
        "cpu_per_wall": cpu[key] / (sum(times[key]) * numbers[key]),
    } for key in fns}


class Bench:
    """The run's settings; collects records and shows progress."""

    def __init__(self, quick: bool, smoke: bool = False, threads: int = 1):
        self.quick = quick or smoke
        self.smoke = smoke
        self.repeats = 3 if smoke else 5 if quick else 9
        self.min_repeat_s = 0.002 if smoke else 0.01 if quick else 0.05
        # Training runs: whole runs repeated (each one takes up to seconds).
        self.train_repeats = 1 if self.quick else 3
        # Epochs scale: quick runs a tenth of each workload (targets may then be out of reach).
        self.train_scale = 0.02 if smoke else 0.1 if quick else 1.0
        self.activations = ["relu", "sigmoid"] if smoke else ACTIVATIONS
        self.threads = threads
        self.records: list[dict] = []
        # What the records cannot say, e.g. a peer that is not installed: {section: {...}}.
        self.notes: dict[str, dict[str, str]] = {}
        self.section = ""

    def progress(self, item: str) -> None:
        """Print what runs now, under the current section."""
        print(f"[{self.section}] {item}", flush=True)

    def run(self, section: str, name: str, fn: Callable[[], Any], **fields: Any) -> dict:
        """Time fn and keep the record."""
        record = {"section": section, "name": name, **fields}
        record.update(measure(fn, self.repeats, self.min_repeat_s))
        self.records.append(record)
        return record

    def run_round_robin(self, section: str, cases: dict[str, tuple[Callable[[], Any], dict]]
                        ) -> dict[str, dict]:
        """Time {key: (fn, record fields)} interleaved (measure_round_robin); keep the records."""
        timed = measure_round_robin({key: fn for key, (fn, _) in cases.items()}, self.repeats,
                                    self.min_repeat_s)
        records = {}
        for key, (_, fields) in cases.items():
            records[key] = {"section": section, **fields, **timed[key]}
            self.records.append(records[key])
        return records


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _jax():
    try:
        import jax
    except ImportError:
        return None
    return jax


def _timed_run(run: Callable[[], wl.Run]) -> wl.Run:
    """Call a runner, noting CPU time over wall time of the call (threads kept busy)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.cpu_per_wall = cpu / wall if wall > 0 else float("nan")
    return result


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """BLAS (through threadpoolctl), PyTorch and microgradnet's own large elementwise kernels
    (mg.set_num_threads) limited to n threads inside the block.

    Without a limit, OpenBLAS threads that spin after a call steal the second core from
    whatever runs next (PyTorch's ops were 1.5x slower). JAX's XLA pool cannot be changed
    after import: it keeps its default, recorded in the machine info."""
    torch = _torch()
    previous = torch.get_num_threads() if torch is not None else None
    previous_mg = mg.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=n, user_api="blas")
    with limits:
        if torch is not None:
            torch.set_num_threads(n)
        mg.set_num_threads(n)
        try:
            yield
        finally:
            mg.set_num_threads(previous_mg)
            if torch is not None:
                torch.set_num_threads(previous)


# --------------------------------------------------------------------------- sections


def section_kernels(b: Bench) -> None:
    """Forward and backward of every activation kernel: ns per element, both backends (ours
    on `--threads` threads from 65536 elements, 1e6 then; one below)."""
    with _threads(b.threads):
        _kernels(b)


def _kernels(b: Bench) -> None:
    sizes = [1_000] if b.smoke else [1_000, 100_000] if b.quick else [100, 10_000, 1_000_000]
    dtypes = [np.float32] if b.quick else [np.float32, np.float64]
    rng = np.random.default_rng(0)
    tables = {name: kernel_table(name) for name in ("cython", "numpy")}
    for act in b.activations:
        b.progress(act)
        for dtype in dtypes:
            for size in sizes:
                x = rng.standard_normal(size).astype(dtype)
                dy = rng.standard_normal(size).astype(dtype)
                for backend, k in tables.items():
                    fwd, bwd = k[f"{act}_forward"], k[f"{act}_backward"]
                    y = fwd(x)
                    saved = y if act in SAVES_OUTPUT else x
                    out = np.empty_like(x)
                    common = dict(activation=act, backend=backend, dtype=np.dtype(dtype).name,
                                  size=size,
                                  threads=mg.get_num_threads() if backend == "cython" else 1)
                    b.run("kernels", f"{act}_forward", lambda: fwd(x, out=out), **common)
                    b.run("kernels", f"{act}_backward", lambda: bwd(dy, saved, out=out),
                          **common)


# numpy and scipy each ship an OpenBLAS; after a call its threads spin for about 0.1 s
# (OpenBLAS' THREAD_TIMEOUT) and would compete with the other library's threads on 2 cores:
# measured, a 128x128 float64 @ took 3.4 ms instead of 0.11 ms right after the other's GEMM.
_BLAS_SETTLE_S = 0.3


def section_gemm(b: Bench) -> None:
    """GEMM GFLOP/s: the kernel on both backends against numpy's @ (each after a pause that
    lets the other BLAS's threads go idle)."""
    sizes = [64] if b.smoke else [64, 256] if b.quick else [64, 128, 256, 512, 1024]
    dtypes = [np.float32] if b.quick else [np.float32, np.float64]
    rng = np.random.default_rng(0)
    tables = {name: kernel_table(name) for name in ("cython", "numpy")}
    for dtype in dtypes:
        for n in sizes:
            b.progress(f"{np.dtype(dtype).name} {n}x{n}")
            a = rng.standard_normal((n, n)).astype(dtype)
            c = rng.standard_normal((n, n)).astype(dtype)
            out = np.empty((n, n), dtype)
            common = dict(dtype=np.dtype(dtype).name, size=n)
            flops = 2.0 * n**3
            at, ct = mg.tensor(a, dtype=dtype), mg.tensor(c, dtype=dtype)
            cases = [("gemm", backend, lambda gemm=k["gemm"]: gemm(a, c, out=out))
                     for backend, k in tables.items()]
            cases += [("numpy @", "numpy @", lambda: np.matmul(a, c, out=out)),
                      ("Tensor @", "cython", lambda: at @ ct)]
            for name, backend, fn in cases:
                time.sleep(0 if b.smoke else _BLAS_SETTLE_S)
                r = b.run("gemm", name, fn, backend=backend, **common)
                r["gflops"] = flops / r["median_s"] / 1e9
    with _threads(1):
        _gemm_trans_b(b, dtypes)
        _gemm_small(b, dtypes)


# Small products with B transposed, C = A B.T (m, n, k): a layer's input gradient dY W.T in
# W3's hidden layer, W2b's, W4's last; a short-rowed and a few-rowed one, which BLAS reads as
# they are (loops.pxd's _gemm_tb_copies).
GEMM_TRANS_B = [(32, 32, 32), (50, 10, 10), (128, 256, 10), (32, 2, 32), (8, 32, 32)]


def _gemm_trans_b(b: Bench, dtypes: list) -> None:
    """The kernel with trans_b against the same product with B.T laid out in memory (BLAS's
    plain form) and numpy's a @ b.T, interleaved, on one thread."""
    gemm = kernel_table("cython")["gemm"]
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for m, n, k in GEMM_TRANS_B[:1] if b.smoke else GEMM_TRANS_B:
            b.progress(f"trans_b {np.dtype(dtype).name} {m}x{n}x{k}")
            a = rng.standard_normal((m, k)).astype(dtype)
            w = rng.standard_normal((n, k)).astype(dtype)
            wt = np.ascontiguousarray(w.T)
            out = np.empty((m, n), dtype)
            fields = dict(dtype=np.dtype(dtype).name, shape=f"{m}x{n}x{k}", size=m * n * k)
            b.run_round_robin("gemm", {
                "tb": (lambda: gemm(a, w, out=out, trans_b=True),
                       dict(name="gemm trans_b", backend="cython", **fields)),
                "bt": (lambda: gemm(a, wt, out=out),
                       dict(name="gemm, B.T in memory", backend="cython", **fields)),
                "np": (lambda: np.matmul(a, w.T, out=out),
                       dict(name="numpy a @ b.T", backend="numpy @", **fields)),
            })


# A small net's products (m, n, k, form): W3's hidden layer on a batch of 32, forward (NN),
# weight gradient X.T dY (TN) and input gradient dY W.T (NT); its first layer (2 inputs);
# larger ones up to the tiles' limit (2 ** 18 multiply-adds) and one beyond it.
GEMM_SMALL = [(32, 32, 32, "NN"), (32, 32, 32, "TN"), (32, 32, 32, "NT"), (32, 32, 2, "NN"),
              (2, 32, 32, "TN"), (16, 16, 16, "NN"), (48, 48, 48, "NN"), (64, 64, 64, "NN"),
              (256, 32, 32, "NN"), (128, 128, 128, "NN")]


def _gemm_small(b: Bench, dtypes: list) -> None:
    """A small net's products: the kernel (vmath_gemm.h's tiles up to 2 ** 18 multiply-adds,
    BLAS beyond) against numpy's matmul (BLAS), interleaved, on one thread."""
    gemm = kernel_table("cython")["gemm"]
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for m, n, k, form in GEMM_SMALL[:1] if b.smoke else GEMM_SMALL:
            b.progress(f"small {np.dtype(dtype).name} {m}x{n}x{k} {form}")
            ta, tb = form[0] == "T", form[1] == "T"
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            w = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            a_op, w_op = (a.T if ta else a), (w.T if tb else w)
            out = np.empty((m, n), dtype)
            fields = dict(dtype=np.dtype(dtype).name, shape=f"{m}x{n}x{k} {form}",
                          size=m * n * k, table="small")
            b.run_round_robin("gemm", {
                "ours": (lambda: gemm(a, w, out=out, trans_a=ta, trans_b=tb),
                         dict(name="gemm", backend="cython", **fields)),
                "np": (lambda: np.matmul(a_op, w_op, out=out),
                       dict(name="numpy @", backend="numpy @", **fields)),
            })


def section_overhead(b: Bench) -> None:
    """Per-op cost on (32, 32) float32 tensors, recording autograd, against PyTorch eager."""
    # One thread for everyone, like our BLAS here; with 2, a busy core costs torch a slice.
    with _threads(1):
        _overhead(b)


def _overhead_cases(x, w, bias, relu) -> dict[str, Callable[[], Any]]:
    """The timed ops, written once for any framework whose tensors have @, + and backward."""

    def three_ops():
        relu(x @ w + bias).sum().backward()

    return {
        "add": lambda: x + w,
        "relu": lambda: relu(x),
        "matmul": lambda: x @ w,
        "3-op forward+backward": three_ops,
    }


def _overhead(b: Bench) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((32, 32), (32, 32), (32,))]
    common = dict(size=1024, dtype="float32")
    b.progress("microgradnet")
    cases = _overhead_cases(*[mg.tensor(a, requires_grad=True) for a in arrays], mg.relu)
    for name, fn in cases.items():
        b.run("overhead", name, fn, backend="cython", framework="microgradnet", threads=1,
              **common)
    with mg.no_grad():
        for name in ("add", "relu", "matmul"):
            b.run("overhead", name + " (no grad)", cases[name], backend="cython",
                  framework="microgradnet", threads=1, **common)
    xa, wa = arrays[0], arrays[1]
    b.run("overhead", "add", lambda: xa + wa, backend="numpy", framework="numpy", threads=1,
          **common)
    torch = _torch()
    if torch is None:
        return
    b.progress("torch")
    tcases = _overhead_cases(*[torch.tensor(a, requires_grad=True) for a in arrays], torch.relu)
    for name, fn in tcases.items():
        b.run("overhead", name, fn, backend="torch", framework="torch " + torch.__version__,
              threads=1, **common)


# The peers' activations, as their users write them (no step: neither has one).
def _torch_activations(torch) -> dict[str, Callable]:
    F = torch.nn.functional
    return {"relu": torch.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.01), "elu": F.elu,
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softplus": F.softplus,
            "gelu": F.gelu,  # approximate="none": the exact erf, as ours
            "silu": F.silu, "selu": F.selu, "mish": F.mish}


def _jax_activations(jax) -> dict[str, Callable]:
    nn = jax.nn
    return {"relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, 0.01), "elu": nn.elu,
            "sigmoid": nn.sigmoid, "tanh": jax.numpy.tanh, "softplus": nn.softplus,
            "gelu": lambda x: nn.gelu(x, approximate=False), "silu": nn.silu,
            "selu": nn.selu, "mish": lambda x: x * jax.numpy.tanh(nn.softplus(x))}


def _jax_forward_backward(jax, f: Callable) -> Callable:
    """jit of (x, dy) -> (f(x), dx): the forward and its vjp, as one compiled function."""

    def forward_backward(x, dy):
        y, vjp = jax.vjp(f, x)
        return y, vjp(dy)[0]

    return jax.jit(forward_backward)


# Every column's y and dx are checked against ours (cython) before any clock. Float32 results
# of different formulas: rtol 1e-5 is about 80 ulp; atol covers values near zero, where a
# formula cancels: PyTorch's float32 gelu is off the exact float64 value by up to 9.6e-7 on
# 1e6 standard normal inputs (ours by 2.4e-7), so 2e-6. dx = dy * f'(x) carries f''s error
# times dy (e.g. 1 - y * y from a saved y near 1), so for dx the atol is scaled by |dy|.
_ACT_RTOL, _ACT_ATOL = 1e-5, 2e-6


def _check_activation(act: str, label: str, xa: np.ndarray, dya: np.ndarray, got: tuple,
                      ours: tuple) -> dict[str, float]:
    """Raise AssertionError unless (y, dx) of a column are ours within the tolerance; return
    the largest differences."""
    diffs = {}
    for name, g, o, scale in (("y", got[0], ours[0], 1.0), ("dx", got[1], ours[1], np.abs(dya))):
        if g.dtype != np.float32 or g.shape != o.shape:
            raise AssertionError(f"activations: {act} by {label} gives {name} as {g.dtype} "
                                 f"{g.shape}, not float32 {o.shape} as ours")
        g64, o64 = g.astype(np.float64), o.astype(np.float64)
        diff = np.abs(g64 - o64)
        bad = ~(diff <= _ACT_RTOL * np.abs(o64) + _ACT_ATOL * scale)  # nan is bad too
        if bad.any():
            i = int(np.argmax(bad))
            raise AssertionError(
                f"activations: {act} {name} by {label} differs from ours (cython) at "
                f"{int(bad.sum())} of {bad.size} values (rtol {_ACT_RTOL:g}, atol {_ACT_ATOL:g}"
                f"{' x |dy|' if name == 'dx' else ''}), e.g. at x = {float(xa[i]):.9g}, dy = "
                f"{float(dya[i]):.9g}: {float(g[i]):.9g} vs ours {float(o[i]):.9g}")
        diffs[f"max_abs_diff_{name}"] = float(diff.max())
    return diffs


def _activation_cases(act: str, xa: np.ndarray, dya: np.ndarray, torch, jax) -> dict:
    """{backend key: (timed fn, result(fn's return) -> (y, dx) as numpy, record fields)} for
    ours on both backends, numpy by hand and the installed peers that have the activation."""
    common = dict(activation=act, dtype="float32", size=xa.size)
    cases: dict[str, tuple[Callable, Callable, dict]] = {}
    fn = getattr(mg, act)
    for backend in ("cython", "numpy"):
        def tensor_api(fn=fn, backend=backend):
            with mg.use_backend(backend):
                x = mg.Tensor(xa, requires_grad=True)
                y = fn(x)
                y.backward(dya)
            return y, x

        # The Cython kernels run 1e6 elements on --threads threads (mg.set_num_threads in
        # _threads); the numpy reference on one.
        threads = mg.get_num_threads() if backend == "cython" else 1
        cases[backend] = (tensor_api, lambda r: (np.asarray(r[0].data), np.asarray(r[1].grad)),
                          dict(backend=backend, framework="microgradnet", threads=threads,
                               **common))
    np_fwd, np_bwd = NUMPY_ACTIVATIONS[act]

    def by_hand(np_fwd=np_fwd, np_bwd=np_bwd):
        y = np_fwd(xa)
        return y, np_bwd(dya, xa, y)

    cases["numpy by hand"] = (by_hand, lambda r: r,
                              dict(backend="numpy by hand", framework="numpy", threads=1,
                                   **common))
    f = _torch_activations(torch).get(act) if torch is not None else None
    if f is not None:
        tx, tdy = torch.from_numpy(xa), torch.from_numpy(dya)

        def torch_eager(f=f):
            x = tx.detach().requires_grad_(True)
            y = f(x)
            y.backward(tdy)
            return y, x

        cases["torch"] = (torch_eager, lambda r: (r[0].detach().numpy(), r[1].grad.numpy()),
                          dict(backend="torch", framework=f"torch {torch.__version__} eager",
                               threads=torch.get_num_threads(), **common))
    f = _jax_activations(jax).get(act) if jax is not None else None
    if f is not None:
        forward_backward = _jax_forward_backward(jax, f)
        jx, jdy = jax.numpy.asarray(xa), jax.numpy.asarray(dya)

        def jax_jit(forward_backward=forward_backward):
            return jax.block_until_ready(forward_backward(jx, jdy))

        cases["jax"] = (jax_jit, lambda r: (np.asarray(r[0]), np.asarray(r[1])),
                        dict(backend="jax", framework=f"jax {jax.__version__} jit",
                             threads="xla default", **common))
    return cases


def section_activations(b: Bench) -> None:
    """Activation forward+backward on 1e6 float32: ours through the Tensor API (both backends,
    `fn(x).backward(dy)`; the Cython kernels on `--threads` threads), numpy by hand and, when
    installed, PyTorch eager (`y.backward(dy)` on `--threads` threads) and a JAX jit of the
    forward and its vjp. The same arrays for all; each column's y and dx checked against ours
    before any clock; timed round-robin."""
    size = 1_000 if b.smoke else 100_000 if b.quick else 1_000_000
    rng = np.random.default_rng(0)
    xa = rng.standard_normal(size).astype(np.float32)
    dya = rng.standard_normal(size).astype(np.float32)
    torch, jax = _torch(), _jax()
    notes = b.notes.setdefault("activations", {})
    notes["torch"] = ("not installed: skipped" if torch is None else
                      f"torch {torch.__version__} eager on {b.threads} thread(s) (--threads)")
    notes["jax"] = ("not installed: skipped" if jax is None else
                    f"jax {jax.__version__} jit; XLA's default thread pool (not limitable "
                    "after import)")
    if "step" in b.activations and (torch is not None or jax is not None):
        notes["step"] = "PyTorch and JAX have no step activation: ours and numpy only"
    with _threads(b.threads):
        for act in b.activations:
            cases = _activation_cases(act, xa, dya, torch, jax)
            b.progress(f"{act}: checking {', '.join(cases)}")
            ours = None
            for key, (fn, result, fields) in cases.items():
                got = result(fn())  # JAX compiles here, before any clock
                if ours is None:
                    ours = got  # cython, the first
                    continue
                fields.update(_check_activation(act, key, xa, dya, got, ours),
                              checked_against="microgradnet cython")
            b.progress(f"{act}: timing round-robin")
            records = b.run_round_robin(
                "activations", {key: (fn, {"name": act, **fields})
                                for key, (fn, _, fields) in cases.items()})
            for r in records.values():
                r["ns_per_element"] = r["median_s"] / size * 1e9


# ----------------------------------------------------------------- derivatives

_SQRT1_2 = 0.7071067811865476


def _erf_composed(z):
    """erf from primitive Tensor ops: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), since
    the Tensor API has no erf primitive."""
    a = mg.abs(z)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                                                       + t * (-1.453152027 + t * 1.061405429))))
    e = 1 - poly * mg.exp(-(a * a))
    return mg.where(z.data >= 0, e, -e)


def _softplus_composed(x):
    return mg.maximum(x, 0) + mg.log(1 + mg.exp(-mg.abs(x)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


# Each activation written with primitive Tensor ops, so that autograd derives it op by op.
# The conditions of `where` are numpy arrays: a condition takes no gradient.
COMPOSED: dict[str, Callable] = {
    "relu": lambda x: mg.where(x.data > 0, x, x * 0),
    "leaky_relu": lambda x: mg.where(x.data > 0, x, 0.01 * x),
    # minimum(x, 0) keeps exp finite in the branch that where() discards.
    "elu": lambda x: mg.where(x.data > 0, x, mg.exp(mg.minimum(x, 0)) - 1),
    "sigmoid": lambda x: 1 / (1 + mg.exp(-x)),
    "tanh": lambda x: 2 / (1 + mg.exp(-2 * x)) - 1,
    "softplus": lambda x: mg.maximum(x, 0) + mg.log(1 + mg.exp(-mg.abs(x))),
    "gelu": lambda x: 0.5 * x * (1 + _erf_composed(x * _SQRT1_2)),
    "silu": lambda x: x / (1 + mg.exp(-x)),
    "step": lambda x: mg.where(x.data >= 0, x * 0 + 1, x * 0),
    "selu": lambda x: _SELU_SCALE * mg.where(x.data > 0, x,
                                             _SELU_ALPHA * (mg.exp(mg.minimum(x, 0)) - 1)),
    "mish": lambda x: x * (2 / (1 + mg.exp(-2 * _softplus_composed(x))) - 1),
}

# Tolerance of "the same numbers" in float32: the composed gelu carries its erf's 1.5e-7.
_DERIV_RTOL, _DERIV_ATOL = 1e-4, 1e-5


def _derivative_forms(act: str, xa: np.ndarray, dya: np.ndarray, tables: dict) -> list:
    """[(name, backend, backward-only fn, forward+backward fn)]; each fn returns dx."""
    forms = []
    saves_y = act in SAVES_OUTPUT
    for backend, k in tables.items():
        fwd, bwd = k[f"{act}_forward"], k[f"{act}_backward"]
        y = fwd(xa)
        y_buf, dx = np.empty_like(xa), np.empty_like(xa)
        saved = y if saves_y else xa
        label = "kernel from y" if saves_y else "kernel from x"

        def full(fwd=fwd, bwd=bwd, y_buf=y_buf, dx=dx):
            fwd(xa, out=y_buf)
            return bwd(dya, y_buf if saves_y else xa, out=dx)

        forms.append((label, backend, lambda bwd=bwd, saved=saved, dx=dx: bwd(dya, saved, out=dx),
                      full))
        if act in FROM_X:
            bwd_x = k[f"{act}_backward_from_x"]

            def full_x(fwd=fwd, bwd_x=bwd_x, y_buf=y_buf, dx=dx):
                fwd(xa, out=y_buf)  # the output is needed anyway, only not for dx
                return bwd_x(dya, xa, out=dx)

            forms.append(("kernel from x", backend,
                          lambda bwd_x=bwd_x, dx=dx: bwd_x(dya, xa, out=dx), full_x))

    for label, fn in (("Tensor op (autograd)", getattr(mg, act)),
                      ("composed ops (autograd)", COMPOSED[act])):
        x = mg.Tensor(xa, requires_grad=True)
        out = fn(x)

        # The graph is built once and walked again each call: the backward alone.
        def backward_only(x=x, out=out):
            x.grad = None
            out.backward(dya, retain_graph=True)
            return np.asarray(x.grad)

        def forward_backward(fn=fn):
            x = mg.Tensor(xa, requires_grad=True)
            fn(x).backward(dya)
            return np.asarray(x.grad)

        forms.append((label, "cython", backward_only, forward_backward))

    np_fwd, np_bwd = NUMPY_ACTIVATIONS[act]
    y_np = np_fwd(xa)

    def by_hand_full():
        return np_bwd(dya, xa, np_fwd(xa))

    forms.append(("numpy by hand", "numpy by hand", lambda: np_bwd(dya, xa, y_np), by_hand_full))
    return forms


def section_derivatives(b: Bench) -> None:
    """Each activation's derivative formulations side by side on float32: the fused backward
    kernel (from the saved output or the input, both backends), the derivative recomputed
    from x (sigmoid, tanh), the Tensor op and the same function composed of primitive ops
    through autograd, and numpy by hand. All must give the same numbers (checked). Ours on
    `--threads` threads (at 1e6 elements)."""
    with _threads(b.threads):
        _derivatives(b)


def _derivatives(b: Bench) -> None:
    from microgradnet import _reference

    sizes = [1_000] if b.smoke else [1_000, 100_000] if b.quick else [10_000, 1_000_000]
    tables = {name: kernel_table(name) for name in ("cython", "numpy")}
    rng = np.random.default_rng(0)
    for act in b.activations:
        b.progress(act)
        for size in sizes:
            # Standard normal times 3: the tails where the formulations differ are sampled too.
            xa = (rng.standard_normal(size) * 3).astype(np.float32)
            dya = rng.standard_normal(size).astype(np.float32)
            x64, dy64 = xa.astype(np.float64), dya.astype(np.float64)
            y64 = getattr(_reference, f"{act}_forward")(x64)
            expected = getattr(_reference, f"{act}_backward")(
                dy64, y64 if act in SAVES_OUTPUT else x64)
            for name, backend, backward, full in _derivative_forms(act, xa, dya, tables):
                diffs = []
                for fn in (backward, full):
                    dx = np.asarray(fn(), np.float64)
                    if not np.allclose(dx, expected, rtol=_DERIV_RTOL, atol=_DERIV_ATOL):
                        raise AssertionError(
                            f"derivatives: {act} by {name} ({backend}) differs from the float64 "
                            f"reference by up to {np.max(np.abs(dx - expected)):.3g}")
                    diffs.append(float(np.max(np.abs(dx - expected))))
                common = dict(activation=act, backend=backend, dtype="float32", size=size,
                              max_abs_diff=max(diffs), reference="float64 numpy reference")
                b.run("derivatives", name, backward, phase="backward", **common)
                b.run("derivatives", name, full, phase="forward+backward", **common)


# ----------------------------------------------------------------- training


def _training_record(section: str, w: wl.Workload, runs: list[wl.Run], **fields: Any) -> dict:
    """One record for repeated runs of a workload: time per step, target, final loss."""
    times = [r.seconds for r in runs]
    median = statistics.median(times)
    steps = runs[0].steps
    summary = wl.summarize(w, runs[0])
    to_target = summary["steps_to_target"]
    last = [run.snapshots[-1] for run in runs]
    return {
        "section": section, "name": w.name, "workload": w.family, "activation": w.activation,
        "dtype": "float32", **fields,
        "median_s": median, "min_s": min(times), "repeats": len(runs), "steps": steps,
        "us_per_step": median / steps * 1e6,
        "final_loss": summary["final_loss"], "final_accuracy": summary["final_accuracy"],
        "target": w.target_text, "steps_to_target": to_target,
        "time_to_target_s": None if to_target is None else to_target * median / steps,
        "exact": w.exact, "as_written": w.as_written, "epochs": w.epochs, "batch": w.batch,
        "samples": len(w.x), "optimizer": w.optimizer, "lr": w.lr,
        # CPU seconds over wall seconds of the whole call: how many cores it kept busy.
        "cpu_per_wall": statistics.median(r.cpu_per_wall for r in runs),
        # Every repeat starts from the same weights and order: the same bits must come out.
        "repeats_agree": all(
            all(np.array_equal(p, q) for p, q in zip(s, last[0], strict=True)) for s in last),
    }


def section_training(b: Bench) -> None:
    """The WORKLOADS.md runs and the seed-002 perceptron through Sequential.fit, with each
    hidden activation: time per step, steps and time to the target, final loss. The
    configurations as written run on the numpy reference backend too."""
    n = b.threads
    for w in wl.training_workloads(b.train_scale, b.smoke):
        with _threads(n):
            b.progress(f"{w.name}: {w.steps} steps x {b.train_repeats}")
            runs = [_timed_run(lambda: wl.run_microgradnet(w)) for _ in range(b.train_repeats)]
            b.records.append(_training_record(
                "training", w, runs, framework=f"microgradnet {mg.__version__}",
                backend="cython", threads=n))
            if w.as_written:
                b.progress(f"{w.name}: {w.steps} steps, numpy reference backend")
                with mg.use_backend("numpy"):
                    runs = [_timed_run(lambda: wl.run_microgradnet(w))]
                b.records.append(_training_record(
                    "training", w, runs, framework=f"microgradnet {mg.__version__}",
                    backend="numpy", threads=n))


def _peer_runners() -> dict[str, tuple[str, Callable[[wl.Workload], Callable[[], wl.Run]]]]:
    """{backend key: (framework label, prepare(workload) -> runner)} for what is installed."""
    peers: dict[str, tuple[str, Callable]] = {
        "cython": (f"microgradnet {mg.__version__}", lambda w: lambda: wl.run_microgradnet(w)),
        "eager": (f"microgradnet {mg.__version__} eager (jit_compile=False)",
                  lambda w: lambda: wl.run_microgradnet(w, jit_compile=False)),
        "numpy": (f"numpy {np.__version__} by hand", lambda w: lambda: wl.run_numpy(w)),
    }
    torch = _torch()
    if torch is not None:
        peers["torch"] = (f"torch {torch.__version__} eager",
                          lambda w: lambda: wl.run_torch(w, torch))
    jax = _jax()
    if jax is not None:
        peers["jax-jit"] = (f"jax {jax.__version__} jit step",
                            lambda w: wl.prepare_jax_jit(w, jax))
        peers["jax-scan"] = (f"jax {jax.__version__} lax.scan, orders given",
                             lambda w: wl.prepare_jax_scan(w, jax))
        peers["jax-scan-shuf"] = (f"jax {jax.__version__} lax.scan, shuffling inside",
                                  lambda w: wl.prepare_jax_scan(w, jax, shuffle_inside=True))
    return peers


def section_peers(b: Bench) -> None:
    """The configurations as written in each installed framework, ours measured beside them:
    repeats interleaved round-robin so that the machine's drift hits every framework alike."""
    peers = _peer_runners()
    n = b.threads
    for w in wl.peer_workloads(b.train_scale, b.smoke):
        with _threads(n):
            runners = {}
            for key, (_, prepare) in peers.items():
                b.progress(f"{w.name}: preparing {key}")
                runners[key] = prepare(w)  # JAX compiles here, before any clock
            runs: dict[str, list[wl.Run]] = {key: [] for key in runners}
            for r in range(b.train_repeats):
                b.progress(f"{w.name}: {w.steps} steps, repeat {r + 1}/{b.train_repeats} of "
                           + ", ".join(runners))
                for key, run in runners.items():
                    runs[key].append(_timed_run(run))
            for key, label in ((k, v[0]) for k, v in peers.items()):
                threads = "xla default" if key.startswith("jax") else n
                b.records.append(_training_record("peers", w, runs[key], framework=label,
                                                  backend=key, threads=threads))


def section_animation(b: Bench) -> None:
    """mg.viz.animate_predictions, as the seeds animate a single neuron learning (a frame
    every 50 of W1's 8,000 steps: 161 frames): frames per second written to GIF and to MP4
    (MP4 only with imageio-ffmpeg installed)."""
    import tempfile

    from microgradnet import callbacks as cb
    from microgradnet.layers import Activation, Dense
    from microgradnet.models import Sequential

    epochs = 20 if b.smoke else 2000  # batches of 50 out of 200 samples: 4 steps per epoch
    x = np.linspace(0, 2, 200).reshape(-1, 1)
    y = np.maximum(0, 2 * (x - 1))
    mg.manual_seed(0)
    model = Sequential([Dense(1, input_dim=1), Activation("relu")])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    recorder = cb.PredictionRecorder(x, every=10 if b.smoke else 50)
    model.fit(x, y, epochs=epochs, batch_size=50, verbose=0, callbacks=[recorder])
    frames = len(recorder.predictions)
    formats = ["gif"]
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        b.notes.setdefault("animation", {})["mp4"] = "imageio-ffmpeg is not installed"
    else:
        formats.append("mp4")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            b.progress(f"{frames} frames to {fmt} x {b.train_repeats}")
            path = os.path.join(tmp, f"neuron.{fmt}")
            mg.viz.animate_predictions(recorder, x, y, path)  # warm-up: imports, fonts
            times = []
            for _ in range(b.train_repeats):
                t0 = time.perf_counter()
                mg.viz.animate_predictions(recorder, x, y, path)
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            b.records.append({
                "section": "animation", "name": f"animate_predictions {fmt}",
                "backend": "matplotlib agg", "dtype": "float32", "format": fmt,
                "frames": frames, "median_s": median, "min_s": min(times),
                "repeats": len(times), "frames_per_s": frames / median})


# The playground's frame-rate case: a 6x8 net on every input feature, all heat maps drawn.
PLAYGROUND_SETTING = {"dataset": "circle", "layers": [8] * 6, "activation": "tanh",
                      "features": ["x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2"]}


def _chromium_driver():
    """Headless Debian Chromium through Selenium, or None with the reason (not installed)."""
    import shutil

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed"
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        return None, "chromium or chromedriver is not installed (apt-get install chromium " \
                     "chromium-driver)"
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1500,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver)), ""


def _chromium_cpu_s() -> float | None:
    """CPU seconds used so far by every Chromium process of this machine (Linux /proc), or
    None where that cannot be read: the page's cost per frame, whatever else the machine runs."""
    import glob

    total, found = 0, False
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name.startswith("chrom") and "driver" not in name:
            fields = text[text.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


def _page_window(driver, url: str, steps_per_frame: int, window_s: float) -> dict:
    """Open the page on the 6x8 setting, play; over one window: frames drawn and received per
    second, optimizer steps per second (from the frames' step counts), the page's draw time
    and the browser's CPU time per frame drawn."""
    from urllib.parse import quote

    setting = {**PLAYGROUND_SETTING, "steps_per_frame": steps_per_frame}
    fragment = "&".join(f"{k}={quote(','.join(map(str, v)) if isinstance(v, list) else str(v))}"
                        for k, v in setting.items())
    driver.get("about:blank")
    driver.get(url + "#" + fragment)
    poll = ("const p = window.playground, f = p && p.state.runs.A.frame;"
            "return f ? [p.stats.framesDrawn, p.stats.framesReceived, f.step, performance.now(),"
            " p.stats.drawMs, f.neurons ? f.neurons.length : 0] : null;")
    end = time.monotonic() + 30
    while driver.execute_script(poll) is None:
        if time.monotonic() > end:
            raise RuntimeError("the playground page showed no frame in 30 s")
        time.sleep(0.05)
    driver.find_element("id", "play").click()
    time.sleep(1.0)  # the first chunks: warm-up
    a = driver.execute_script(poll)
    cpu0 = _chromium_cpu_s()
    draw_ms = []
    t_end = time.monotonic() + window_s
    while time.monotonic() < t_end:
        time.sleep(0.1)
        draw_ms.append(driver.execute_script(poll)[4])
    b = driver.execute_script(poll)
    cpu1 = _chromium_cpu_s()
    driver.find_element("id", "play").click()
    seconds = (b[3] - a[3]) / 1000
    assert b[5] == len(PLAYGROUND_SETTING["layers"]) + 1, "heat maps of every layer"
    return {"frames_drawn_per_s": (b[0] - a[0]) / seconds,
            "frames_received_per_s": (b[1] - a[1]) / seconds,
            "steps_per_s": (b[2] - a[2]) / seconds,
            "draw_ms": statistics.median(draw_ms),
            "browser_cpu_ms_per_frame": None if cpu0 is None or b[0] == a[0]
            else (cpu1 - cpu0) * 1000 / (b[0] - a[0])}


def _per_event(rates: list[float]) -> dict:
    """A record's timing fields from rates measured per second in repeated windows: the
    median and the best seconds per event (frame or step), and the repeats."""
    return {"median_s": statistics.median(1 / r for r in rates),
            "min_s": min(1 / r for r in rates), "repeats": len(rates)}


def _median_or_none(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def section_playground(b: Bench) -> None:
    """The playground (python -m microgradnet.playground) on a 6x8 net with every neuron's
    heat map: frames per second drawn by the page in headless Chromium, and the training
    steps per second the server sustains while the page draws; beside it, without a page,
    the server's training chunks alone, with their frames built, and one plain `fit`."""
    try:
        from microgradnet.playground import server as pg_server
        from microgradnet.playground import session as pg_session
    except ImportError as e:
        b.notes.setdefault("playground", {})["all"] = f"the playground extra is missing ({e})"
        return
    seconds = 0.3 if b.smoke else 1.0 if b.quick else 3.0
    repeats = 1 if b.smoke else b.train_repeats if b.quick else 5
    # Interleaved: each repeat measures fit, chunks and chunks with frames in turn.
    b.progress(f"server speeds, {repeats} x 3 x {seconds} s")
    rates: dict[str, list[float]] = {"fit": [], "chunks": [], "chunks_with_frames": []}
    frame_ms = []
    for _ in range(repeats):
        got = pg_session.measure_speed(PLAYGROUND_SETTING, seconds=seconds)
        for key in rates:
            rates[key].append(got[key])
        frame_ms.append(got["frame_ms"])
    labels = {"fit": "fit, one call (no playground)",
              "chunks": "server chunks, no frames",
              "chunks_with_frames": "server chunks + frames (all heat maps), no page"}
    for key, values in rates.items():
        per_step = [1 / v for v in values]
        b.records.append({
            "section": "playground", "name": labels[key], "backend": "cython",
            "dtype": "float32", "median_s": statistics.median(per_step), "min_s": min(per_step),
            "repeats": len(values), "steps_per_s": statistics.median(values),
            "steps_per_frame": got["steps_per_frame"], "captured": got["captured"],
            "frame_build_ms": statistics.median(frame_ms)})
    driver, why = _chromium_driver()
    if driver is None:
        b.notes.setdefault("playground", {})["page"] = why
        return
    # The page's default of 300 steps between frames, and more: while drawing, the steps per
    # second are about steps per frame x frames per second.
    handle = pg_server.start_in_thread("127.0.0.1", 0)
    try:
        window = 1.0 if b.smoke else 3.0
        settings = (300,) if b.smoke else (300, 2000)
        b.progress(f"the page in headless Chromium, {settings} steps per frame interleaved, "
                   f"{repeats} x {window} s each")
        windows: dict[int, list[dict]] = {n: [] for n in settings}
        for _ in range(repeats):
            for per_frame in settings:
                windows[per_frame].append(_page_window(driver, handle.url, per_frame, window))
        for per_frame, ws in windows.items():
            fps = [w["frames_drawn_per_s"] for w in ws]
            steps = [w["steps_per_s"] for w in ws]
            b.records.append({
                "section": "playground",
                "name": f"page: frames drawn ({per_frame} steps per frame)",
                "backend": "chromium", "dtype": "float32", "steps_per_frame": per_frame,
                **_per_event(fps),
                "frames_per_s": statistics.median(fps),
                "frames_received_per_s": statistics.median(w["frames_received_per_s"]
                                                           for w in ws),
                "draw_ms": statistics.median(w["draw_ms"] for w in ws),
                "browser_cpu_ms_per_frame": _median_or_none(
                    [w["browser_cpu_ms_per_frame"] for w in ws])})
            b.records.append({
                "section": "playground",
                "name": f"server while the page draws ({per_frame} steps per frame)",
                "backend": "cython", "dtype": "float32", "steps_per_frame": per_frame,
                **_per_event(steps),
                "steps_per_s": statistics.median(steps)})
    finally:
        driver.quit()
        handle.close()
def _dask_cluster(b: Bench):
    """(client, close) of a LocalCluster of 2 worker processes on loopback, or (None, note)."""
    try:
        import distributed
    except ImportError:
        return None, "distributed is not installed: skipped"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's notices about ports and memory
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)

    def close():
        client.close()
        cluster.close()

    return client, close


def section_sweep(b: Bench) -> None:
    """Issue 14's S1 and S2 (K nets of W3's relu shape) through every engine, interleaved
    round-robin: a loop of fit; mg.sweep serial, on 2 loky workers, batched and not; on a
    Dask LocalCluster of 2 processes; and the peers when installed (JAX jit(vmap(scan)), the
    JAX scan per net, torch.func vmap(grad)). us per net-step = wall / (nets x steps). Every
    microgradnet engine must end each net with the same weights (same_bits). Then a sweep of
    many W1-sized nets: the share of its time outside fit."""
    import sweeps as sw

    nets = 4 if b.smoke else 16 if b.quick else 64
    epochs = 2 if b.smoke else 20 if b.quick else 100
    x, y = wl.moons()
    steps = epochs * -(-len(x) // 32)
    client, close = _dask_cluster(b)
    if client is None:
        b.notes.setdefault("sweep", {})["dask"] = close
    jax, torch = _jax(), _torch()
    for peer, mod in (("jax", jax), ("torch", torch)):
        if mod is None:
            b.notes.setdefault("sweep", {})[peer] = "not installed: skipped"
    # Workers need the sweep extra (joblib, threadpoolctl); `pip install .` alone runs serially.
    try:
        import joblib  # noqa: F401
        import threadpoolctl  # noqa: F401

        workers = True
    except ImportError:
        workers = False
    if not workers:
        b.notes.setdefault("sweep", {})["workers"] = (
            "joblib or threadpoolctl is not installed (pip install 'microgradnet[sweep]'): "
            "the 2-worker rows skipped")
    try:
        for kind in ("S1", "S2"):
            configs = sw.s_grid(kind, nets)
            cases: dict[str, tuple[str, Callable]] = {
                "loop of fit": ("microgradnet", lambda: (
                    sw.loop_of_fit(configs, x, y, epochs), "fit")),
                "sweep serial": ("microgradnet", sw.sweep_runner(configs, x, y, epochs,
                                                                 batched=False)),
                "sweep serial batched": ("microgradnet", sw.sweep_runner(configs, x, y, epochs)),
            }
            if workers:
                cases["sweep 2 workers"] = ("microgradnet", sw.sweep_runner(
                    configs, x, y, epochs, n_jobs=2, backend="loky", batched=False))
                cases["sweep 2 workers batched"] = ("microgradnet", sw.sweep_runner(
                    configs, x, y, epochs, n_jobs=2, backend="loky"))
            if client is not None:
                cases["dask 2 processes"] = ("microgradnet", sw.sweep_runner(
                    configs, x, y, epochs, backend="dask", client=client))
            if jax is not None:
                b.progress(f"{kind}: compiling the JAX runs")
                cases["jax jit(vmap(scan))"] = (f"jax {jax.__version__}", sw.prepare_jax(
                    configs, x, y, epochs, jax, vmapped=True))
                cases["jax scan per net"] = (f"jax {jax.__version__}", sw.prepare_jax(
                    configs, x, y, epochs, jax, vmapped=False))
            if torch is not None:
                cases["torch.func vmap(grad)"] = (f"torch {torch.__version__}",
                                                  sw.prepare_torch_vmap(configs, x, y, epochs,
                                                                        torch))
            # Warm-up: worker processes started, imports done, JAX compiled, before any clock.
            small = configs[:2]
            if workers:
                sw.sweep_runner(small, x, y, 1, n_jobs=2, backend="loky")()
            if client is not None:
                sw.sweep_runner(small, x, y, 1, backend="dask", client=client)()
            for framework, run in cases.values():
                if framework != "microgradnet":
                    run()  # a compiled peer's first call still allocates its buffers
            times: dict[str, list[float]] = {key: [] for key in cases}
            finals: dict[str, list] = {}
            engines: dict[str, str] = {}
            for r in range(b.train_repeats):
                for key, (_, run) in cases.items():
                    b.progress(f"{kind}: {nets} nets x {steps} steps, {key} "
                               f"({r + 1}/{b.train_repeats})")
                    time.sleep(_SETTLE_S)
                    t0 = time.perf_counter()
                    finals[key], engines[key] = run()
                    times[key].append(time.perf_counter() - t0)
            reference = finals["loop of fit"]
            for key, (framework, _) in cases.items():
                median = statistics.median(times[key])
                ours = framework == "microgradnet"
                same = all(all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))
                           for a, c in zip(finals[key], reference, strict=True))
                b.records.append({
                    "section": "sweep", "name": f"{kind} {key}", "sweep": kind, "how": key,
                    "framework": framework, "backend": engines[key], "dtype": "float32",
                    "nets": nets, "steps": steps, "median_s": median, "min_s": min(times[key]),
                    "repeats": len(times[key]),
                    "us_per_net_step": median / (nets * steps) * 1e6,
                    # ours: the same weights as the loop of fit, to the bit; peers draw other
                    # orders (numpy's permutations given, not fit's stream): not compared.
                    "same_bits": same if ours else None,
                    "final_loss_mean": _sweep_mean_loss(sw, finals[key], x, y),
                })
        many = 20 if b.smoke else 200 if b.quick else 1000
        w1_epochs = 20 if b.smoke else 200 if b.quick else 2000
        w1_cases = [("serial", {})] + ([("2 workers", {"n_jobs": 2, "backend": "loky"})]
                                       if workers else [])
        for label, options in w1_cases:
            b.progress(f"{many} W1-sized nets x {w1_epochs} epochs, {label}")
            res = sw.w1_overhead(many, w1_epochs, **options)
            b.records.append({
                "section": "sweep", "name": f"W1 x {many} {label}", "sweep": "W1 many",
                "how": label, "framework": "microgradnet", "backend": res["engine"],
                "dtype": "float64", "nets": many, "steps": res["steps"] // many,
                "median_s": res["wall_s"], "min_s": res["wall_s"], "repeats": 1,
                "us_per_net_step": res["wall_s"] / res["steps"] * 1e6,
                "inside_fit_s": res["inside_fit_s"], "outside_share": res["outside_share"],
                "same_bits": None, "final_loss_mean": None})
    finally:
        if client is not None:
            close()


def _sweep_mean_loss(sw, finals: list, x: np.ndarray, y: np.ndarray) -> float:
    """The nets' mean final binary cross-entropy on the full set (float64, numpy)."""
    w = wl.w3("relu")
    return float(np.mean([wl.evaluate(w, [np.asarray(p) for p in f])["loss"] for f in finals]))
# --------------------------------------------------------------------------- batched


def _s1_models(count: int, w: wl.Workload, spread: bool = False,
               metrics: list | None = None) -> list:
    """Issue 14's S1 nets of W3's shape: net k Glorot-uniform from default_rng(1234 + k)
    (S2: the learning rate spread over 0.02-0.2), compiled with `metrics`."""
    from microgradnet.layers import Dense
    from microgradnet.models import Sequential

    models = []
    for k in range(count):
        rng = np.random.default_rng(1234 + k)
        layers = [Dense(units, activation=act, input_dim=w.sizes[0] if i == 0 else None)
                  for i, (units, act) in enumerate(zip(w.sizes[1:], w.layer_activations(),
                                                       strict=True))]
        model = Sequential(layers)
        weights = []
        for fan_in, fan_out in zip(w.sizes[:-1], w.sizes[1:], strict=True):
            limit = np.sqrt(6 / (fan_in + fan_out))
            weights += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32),
                        np.zeros(fan_out, np.float32)]
        model.set_weights(weights)
        rate = 0.02 + 0.18 * k / max(count - 1, 1) if spread else w.lr
        model.compile(optimizer=mg.optimizers.SGD(learning_rate=rate), loss="binary_crossentropy",
                      metrics=metrics)
        models.append(model)
    return models


def section_batched(b: Bench) -> None:
    """fastpath.fit_many (batched capture: K nets in one call into C) against a loop of
    solo fits, per net-step, on K nets of W3's shape (issue 14's S1; S2 at K = 64), whole
    runs interleaved; the same with metrics=["accuracy"] (counted inside the C run) and, at
    K = 1, with metrics=["mae"] (computed in Python after every batch: the path accuracy took
    before it was counted in C); and the Python setup per net (epochs=0)."""
    from microgradnet.fastpath import fit_many

    w = wl.w3("relu", epochs=2 if b.smoke else 10 if b.quick else 100)
    counts = [1, 4] if b.smoke else [1, 8, 64]
    kw = {"batch_size": w.batch, "epochs": w.epochs, "verbose": 0}

    def loop(models, gens):
        for m, g in zip(models, gens, strict=True):
            with mg.random.using_generator(g):
                m.fit(w.x, w.y, **kw)

    def batched(models, gens):
        fit_many(models, w.x, w.y, generators=gens, **kw)

    hows = (("loop of fit", loop), ("fit_many", batched))
    cases = [(f"K={k} {how}", k, how, fn, False, None) for k in counts for how, fn in hows]
    if not b.smoke:
        cases += [(f"K=64 S2 {how}", 64, how, fn, True, None) for how, fn in hows]
    cases += [(f"K={k} accuracy {how}", k, how, fn, False, ["accuracy"])
              for k in (counts[0], counts[-1]) for how, fn in hows]
    cases += [("K=1 mae loop of fit", 1, "loop of fit", loop, False, ["mae"])]
    times: dict[str, list[float]] = {c[0]: [] for c in cases}
    with _threads(1):
        for _ in range(b.train_repeats):
            for name, k, _how, fn, spread, metrics in cases:
                b.progress(f"{name}: {w.steps} steps per net")
                models = _s1_models(k, w, spread, metrics)
                gens = [np.random.default_rng(j) for j in range(k)]
                time.sleep(_SETTLE_S)
                t0 = time.perf_counter()
                fn(models, gens)
                times[name].append(time.perf_counter() - t0)
        for name, k, how, _fn, _spread, _metrics in cases:
            per = [t / (k * w.steps) for t in times[name]]
            b.records.append({"section": "batched", "name": name, "backend": "cython",
                              "dtype": "float32", "nets": k, "how": how, "steps": w.steps,
                              "median_s": statistics.median(per), "min_s": min(per),
                              "repeats": len(per)})
        # the Python around the C run: building plans, binding arguments, histories
        for k in counts[-1:]:
            setup = {"loop of fit": [], "fit_many": []}
            for _ in range(b.repeats):
                for how in setup:
                    models = _s1_models(k, w)
                    gens = [np.random.default_rng(j) for j in range(k)]
                    t0 = time.perf_counter()
                    if how == "fit_many":
                        fit_many(models, w.x, w.y, generators=gens, batch_size=w.batch,
                                 epochs=0)
                    else:
                        for m, g in zip(models, gens, strict=True):
                            with mg.random.using_generator(g):
                                m.fit(w.x, w.y, batch_size=w.batch, epochs=0, verbose=0)
                    setup[how].append((time.perf_counter() - t0) / k)
            for how, per in setup.items():
                b.records.append({"section": "batched", "name": f"setup per net, K={k} {how}",
                                  "backend": "cython", "dtype": "float32", "nets": k,
                                  "how": how, "steps": 0, "median_s": statistics.median(per),
                                  "min_s": min(per), "repeats": len(per)})


def _report_batched(records: list[dict]) -> None:
    print("\n== batched: K nets of W3's shape, per net-step (median of whole runs); "
          "ratio = loop of fit / fit_many")
    by = {r["name"]: r for r in records}
    for r in records:
        line = f"{r['name']:32s} {_fmt_time(r['median_s'])}"
        if r["how"] == "fit_many":
            other = by.get(r["name"].replace("fit_many", "loop of fit"))
            if other is not None:
                line += f"   ratio {other['median_s'] / r['median_s']:5.2f}"
        print(line)


# Seed 002's perceptron: 4 samples, 3 inputs, float64, and its starting weights.
_SEED_X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
_SEED_Y = np.array([[0, 1, 1, 0]], dtype=np.float64).T
# The seed's update, w += X.T @ ((y - p) * p * (1 - p)), is SGD at this rate on the MSE
# (whose gradient carries 2 / 4 of it).
_SEED_LR = 2.0
_EXPRESSION = "relu(x @ y) * x, sum, backward"


def _seed_w0() -> np.ndarray:
    rng = np.random.RandomState(1)  # the seed's np.random.seed(1)
    return 2 * rng.random_sample((3, 1)) - 1


def _seed_loops(torch, jax) -> dict[str, tuple[Callable[[], Any], Callable[[], np.ndarray]]]:
    """{framework: (one iteration of seed 002's loop, the current weights)}."""
    x, y = _SEED_X, _SEED_Y
    w_np = _seed_w0()

    def by_hand():
        p = 1 / (1 + np.exp(-np.dot(x, w_np)))
        w_np[...] += np.dot(x.T, (y - p) * (p * (1 - p)))  # the seed's own code

    w = mg.tensor(_seed_w0(), requires_grad=True, dtype=np.float64)
    xt, yt = mg.tensor(x, dtype=np.float64), mg.tensor(y, dtype=np.float64)
    opt = mg.optimizers.SGD([w], learning_rate=_SEED_LR)

    def autograd():
        loss = mg.mse_loss(mg.sigmoid(xt @ w), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    loops = {"numpy by hand": (by_hand, lambda: w_np), "microgradnet": (autograd, w.numpy)}
    if torch is not None:
        tw = torch.tensor(_seed_w0(), requires_grad=True)
        tx, ty = torch.tensor(x), torch.tensor(y)
        topt = torch.optim.SGD([tw], lr=_SEED_LR)

        def torch_loop():
            loss = torch.nn.functional.mse_loss(torch.sigmoid(tx @ tw), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

        loops[f"torch {torch.__version__}"] = (torch_loop, lambda: tw.detach().numpy())
    if jax is not None:
        jnp = jax.numpy
        # float32: JAX computes in float64 only with a process-wide switch (jax_enable_x64)
        jx, jy = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        grad = jax.grad(lambda w: jnp.mean((jax.nn.sigmoid(jx @ w) - jy) ** 2))
        state = {"w": jnp.asarray(_seed_w0(), jnp.float32)}

        def jax_loop():
            state["w"] = state["w"] - _SEED_LR * grad(state["w"])

        loops[f"jax {jax.__version__}"] = (jax_loop, lambda: np.asarray(state["w"]))
    return loops


def _op_cases(x, y, relu) -> dict[str, Callable[[], Any]]:
    """The per-op cases of the eager section, for any framework with @, *, + and .sum()."""
    return {"add": lambda: x + y, "relu": lambda: relu(x), "matmul": lambda: x @ y,
            _EXPRESSION: lambda: (relu(x @ y) * x).sum().backward()}


def _numpy_expression(xa: np.ndarray, ya: np.ndarray) -> Callable[[], Any]:
    """(relu(x @ y) * x).sum() and its gradients for x and y, written by hand in numpy."""

    def run():
        h = xa @ ya
        r = np.maximum(h, 0)
        (r * xa).sum()
        g = np.ones_like(r)
        gr = g * xa
        gh = gr * (h > 0)
        return gh @ ya.T + g * r, xa.T @ gh

    return run


def section_eager(b: Bench) -> None:
    """The hand-written loop with autograd (issue 16): seed 002's loop against numpy by hand,
    PyTorch and JAX eager, and per-op costs on (32, 32) float32 against numpy's own op and
    PyTorch, all interleaved in one run on one thread."""
    with _threads(1):
        _eager(b)


def _eager(b: Bench) -> None:
    torch, jax = _torch(), _jax()
    loops = _seed_loops(torch, jax)
    # Same math, same start: after as many steps, the weights agree (speed is not bought with
    # a wrong result).
    steps = 50
    for step, _ in loops.values():
        for _ in range(steps):
            step()
    final = {key: weights() for key, (_, weights) in loops.items()}
    cases: dict[str, tuple[Callable[[], Any], dict]] = {}
    for key, (step, _) in loops.items():
        diff = float(np.max(np.abs(final[key] - final["numpy by hand"])))
        cases["seed-002 loop/" + key] = (step, {
            "name": "seed-002 loop", "framework": key, "backend": key.split()[0],
            "dtype": "float32" if key.startswith("jax") else "float64", "size": 12,
            "threads": 1, "max_abs_diff_w": diff})

    rng = np.random.default_rng(0)
    xa, ya = (rng.standard_normal((32, 32)).astype(np.float32) for _ in range(2))
    common = {"dtype": "float32", "size": 1024, "threads": 1}
    x, y = mg.tensor(xa, requires_grad=True), mg.tensor(ya, requires_grad=True)
    for name, fn in _op_cases(x, y, mg.relu).items():
        cases[name + "/microgradnet"] = (fn, {"name": name, "framework": "microgradnet",
                                              "backend": "cython", **common})
    numpy_ops = {"add": lambda: xa + ya, "relu": lambda: np.maximum(xa, 0),
                 "matmul": lambda: xa @ ya, _EXPRESSION: _numpy_expression(xa, ya)}
    for name, fn in numpy_ops.items():
        cases[name + "/numpy"] = (fn, {"name": name, "framework": "numpy", "backend": "numpy",
                                       **common})
    if torch is not None:
        tx, ty = (torch.tensor(a, requires_grad=True) for a in (xa, ya))
        for name, fn in _op_cases(tx, ty, torch.relu).items():
            cases[name + "/torch"] = (fn, {"name": name, "framework": f"torch {torch.__version__}",
                                           "backend": "torch", **common})
    b.progress(f"{len(cases)} cases, interleaved")
    for r in b.run_round_robin("eager", cases).values():
        r["us"] = r["median_s"] * 1e6


# The eager path's arithmetic (csrc/elementwise.pyx) on a small net's arrays: a hidden
# layer's (32, 32) float32, and seed 002's (4, 3) float64.
ELEMENTWISE_CASES = [((32, 32), np.float32), ((4, 3), np.float64)]


def section_elementwise(b: Bench) -> None:
    """add, subtract, multiply, negative and sum_all kernels against numpy's own op (the same
    bits), interleaved on one thread: microseconds per call."""
    with _threads(1):
        _elementwise(b)


def _elementwise(b: Bench) -> None:
    k = kernel_table("cython")
    rng = np.random.default_rng(0)
    cases: dict[str, tuple[Callable[[], Any], dict]] = {}
    for shape, dtype in ELEMENTWISE_CASES:
        x, y = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
        pairs = {
            "add": (lambda x=x, y=y: k["add"](x, y), lambda x=x, y=y: x + y),
            "subtract": (lambda x=x, y=y: k["subtract"](x, y), lambda x=x, y=y: x - y),
            "multiply": (lambda x=x, y=y: k["multiply"](x, y), lambda x=x, y=y: x * y),
            "negative": (lambda x=x: k["negative"](x), lambda x=x: -x),
            "sum_all": (lambda x=x: k["sum_all"](x),
                        lambda x=x: np.add.reduce(x, axis=None)),
        }
        label = "x".join(map(str, shape))
        common = dict(dtype=np.dtype(dtype).name, size=x.size, shape=label, threads=1)
        for name, (ours, theirs) in pairs.items():
            cases[f"{name} {label}/cython"] = (ours, dict(name=name, backend="cython", **common))
            cases[f"{name} {label}/numpy"] = (theirs, dict(name=name, backend="numpy", **common))
    b.progress(f"{len(cases)} cases, interleaved")
    b.run_round_robin("elementwise", cases)


def _report_elementwise(records: list[dict]) -> None:
    print("\n== elementwise: us per call (median of interleaved repeats, one thread); numpy ="
          " its own op (a + b, -a, np.add.reduce(a, axis=None))")
    rows: dict[tuple, dict] = {}
    for r in records:
        rows.setdefault((r["name"], r["shape"], r["dtype"]), {})[r["backend"]] = r["median_s"]
    print(f"{'kernel':10s} {'shape':>6s} {'dtype':8s} {'ours':>8s} {'numpy':>8s} {'ratio':>6s}")
    for (name, shape, dtype), v in rows.items():
        print(f"{name:10s} {shape:>6s} {dtype:8s} {v['cython'] * 1e6:8.3f} "
              f"{v['numpy'] * 1e6:8.3f} {v['cython'] / v['numpy']:6.2f}")


def _report_eager(records: list[dict]) -> None:
    print("\n== eager: microseconds per call (median of interleaved repeats, one thread); "
          "autograd recording on")
    times = {(r["name"], r["backend"]): r["median_s"] for r in records}
    loop = [r for r in records if r["name"] == "seed-002 loop"]
    by_hand = times[("seed-002 loop", "numpy")]
    print(f"{'seed-002 loop (4x3 float64)':32s} {'us':>9s} {'/ by hand':>10s} {'max |dw|':>9s}")
    for r in loop:
        print(f"{r['framework']:32s} {r['us']:9.2f} {r['median_s'] / by_hand:10.2f} "
              f"{r['max_abs_diff_w']:9.1e}")
    print("  target: microgradnet / by hand <= 1.0")
    names = list(dict.fromkeys(r["name"] for r in records if r["name"] != "seed-002 loop"))
    print(f"{'(32, 32) float32':32s} {'ours':>9s} {'numpy':>9s} {'torch':>9s} {'/numpy':>7s} "
          f"{'/torch':>7s}")
    for name in names:
        ours, npy = times[(name, "cython")], times[(name, "numpy")]
        peer = times.get((name, "torch"))
        print(f"{name:32s} {ours * 1e6:9.2f} {npy * 1e6:9.2f} "
              f"{_fmt_opt(None if peer is None else peer * 1e6, '.2f', 9)} {ours / npy:7.2f} "
              f"{_fmt_opt(None if peer is None else ours / peer, '.2f', 7)}")
    print("  targets: add, relu, matmul <= 1.5x numpy and <= 0.25x torch; the expression "
          "<= 10 us")


SECTIONS = {
    "kernels": section_kernels,
    "gemm": section_gemm,
    "overhead": section_overhead,
    "activations": section_activations,
    "derivatives": section_derivatives,
    "training": section_training,
    "peers": section_peers,
    "animation": section_animation,
    "playground": section_playground,
    "sweep": section_sweep,
    "batched": section_batched,
    "eager": section_eager,
    "elementwise": section_elementwise,
}


# --------------------------------------------------------------------------- report


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e3:9.2f} ms"


def _fmt_opt(value: Any, fmt: str, width: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}{fmt}}"


def report(records: list[dict], notes: dict | None = None) -> None:
    """Print one readable table per section, with the ratios that matter (notes: Bench.notes,
    what the records cannot say)."""
    notes = notes or {}
    by_section: dict[str, list[dict]] = {}
    for r in records:
        by_section.setdefault(r["section"], []).append(r)

    if "kernels" in by_section:
        print("\n== kernels: ns per element (median); ratio = cython / numpy reference")
        rows: dict[tuple, dict] = {}
        for r in by_section["kernels"]:
            key = (r["name"], r["dtype"], r["size"])
            rows.setdefault(key, {})[r["backend"]] = r["median_s"] / r["size"] * 1e9
        print(f"{'kernel':32s} {'dtype':8s} {'size':>9s} {'cython':>9s} {'numpy':>9s} "
              f"{'ratio':>7s}")
        for (name, dtype, size), v in rows.items():
            print(f"{name:32s} {dtype:8s} {size:9d} {v['cython']:9.3f} {v['numpy']:9.3f} "
                  f"{v['cython'] / v['numpy']:7.3f}")

    if "gemm" in by_section:
        print("\n== gemm: GFLOP/s (median); ratio = cython kernel / numpy @")
        rows = {}
        for r in by_section["gemm"]:
            if "shape" in r:
                continue
            rows.setdefault((r["dtype"], r["size"]), {})[r["name"] + ":" + r["backend"]] = r[
                "gflops"]
        print(f"{'dtype':8s} {'n':>5s} {'cython':>8s} {'Tensor@':>8s} {'numpy@':>8s} "
              f"{'reference':>9s} {'ratio':>6s}")
        for (dtype, n), v in rows.items():
            c, t, npy, ref = (v["gemm:cython"], v["Tensor @:cython"], v["numpy @:numpy @"],
                              v["gemm:numpy"])
            print(f"{dtype:8s} {n:5d} {c:8.1f} {t:8.1f} {npy:8.1f} {ref:9.1f} {c / npy:6.3f}")
        small = {}
        for r in by_section["gemm"]:
            if "shape" in r and r.get("table") != "small":
                small.setdefault((r["dtype"], r["shape"]), {})[r["name"]] = r["median_s"]
        if small:
            print("\n== gemm: C = A B.T, (m, n, k), one thread: us per call (median); ratio ="
                  " trans_b / B.T in memory")
            print(f"{'dtype':8s} {'m x n x k':>12s} {'trans_b':>9s} {'B.T in mem':>11s} "
                  f"{'numpy':>9s} {'ratio':>6s}")
            for (dtype, shape), v in small.items():
                tb, bt, npy = (v["gemm trans_b"] * 1e6, v["gemm, B.T in memory"] * 1e6,
                               v["numpy a @ b.T"] * 1e6)
                print(f"{dtype:8s} {shape:>12s} {tb:9.3f} {bt:11.3f} {npy:9.3f} {tb / bt:6.2f}")
        tiles: dict[tuple, dict] = {}
        for r in by_section["gemm"]:
            if r.get("table") == "small":
                tiles.setdefault((r["dtype"], r["shape"]), {})[r["name"]] = r["median_s"]
        if tiles:
            print("\n== gemm: a small net's products (m x n x k, form), one thread: us per call"
                  " (median of interleaved repeats); ratio = gemm / numpy @ (BLAS); gemm runs"
                  " vmath_gemm.h's tiles up to 2 ** 18 multiply-adds")
            print(f"{'dtype':8s} {'m x n x k form':>17s} {'gemm':>9s} {'numpy @':>9s} "
                  f"{'ratio':>6s}")
            for (dtype, shape), v in tiles.items():
                ours, npy = v["gemm"] * 1e6, v["numpy @"] * 1e6
                print(f"{dtype:8s} {shape:>17s} {ours:9.3f} {npy:9.3f} {ours / npy:6.2f}")

    if "overhead" in by_section:
        print("\n== overhead: (32, 32) float32, autograd recording on unless noted (median)")
        torch_t = {r["name"]: r["median_s"] for r in by_section["overhead"]
                   if r["backend"] == "torch"}
        for r in by_section["overhead"]:
            if r["backend"] == "torch":
                continue
            line = f"{r['framework']:14s} {r['name']:24s} {_fmt_time(r['median_s'])}"
            if r["framework"] == "microgradnet" and r["name"] in torch_t:
                t = torch_t[r["name"]]
                line += f"   torch {_fmt_time(t)}   ratio {r['median_s'] / t:5.2f}"
            print(line)

    if "activations" in by_section:
        _report_activations(by_section["activations"], notes.get("activations", {}))
    if "derivatives" in by_section:
        _report_derivatives(by_section["derivatives"])
    if "training" in by_section:
        _report_training(by_section["training"])
    if "peers" in by_section:
        _report_peers(by_section["peers"])
    if "sweep" in by_section:
        _report_sweep(by_section["sweep"], notes.get("sweep", {}))
    if "batched" in by_section:
        _report_batched(by_section["batched"])
    if "eager" in by_section:
        _report_eager(by_section["eager"])
    if "elementwise" in by_section:
        _report_elementwise(by_section["elementwise"])
    if "animation" in by_section:
        print("\n== animation: mg.viz.animate_predictions (median of whole runs)")
        for r in by_section["animation"]:
            print(f"{r['format']:5s} {r['frames']:5d} frames {_fmt_time(r['median_s'])} "
                  f"{r['frames_per_s']:8.1f} frames/s")
    if "playground" in by_section:
        print("\n== playground: 6x8 net, every neuron's heat map (medians of interleaved "
              "repeats)")
        for r in by_section["playground"]:
            if "frames_per_s" in r:
                cpu = r.get("browser_cpu_ms_per_frame")
                print(f"{r['name']:48s} {r['frames_per_s']:8.1f} frames/s (received "
                      f"{r['frames_received_per_s']:.1f}/s, {r['draw_ms']:.1f} ms per draw"
                      + ("" if cpu is None else f", browser CPU {cpu:.1f} ms per frame") + ")")
            else:
                print(f"{r['name']:48s} {r['steps_per_s']:10,.0f} steps/s" + (
                    f" (a frame built in {r['frame_build_ms']:.1f} ms)"
                    if r["name"].startswith("server chunks + frames") else ""))
        for key, why in notes.get("playground", {}).items():
            print(f"  ({key}: {why})")


# Columns of the activations table: (backend key, label).
_ACT_COLUMNS = [("cython", "ours"), ("numpy", "ours np"), ("numpy by hand", "by hand"),
                ("torch", "torch"), ("jax", "jax")]


def _report_activations(records: list[dict], notes: dict[str, str]) -> None:
    size = records[0]["size"]
    print(f"\n== activations: forward+backward, float32, {size:,} values, ns per element "
          "(median of round-robin\n   repeats). ours: the Tensor API (cython; np: the numpy "
          "reference backend); ratio = ours / peer\n   (<= 1: ours at or below); target: ours "
          "at or below both PyTorch and JAX (?: a peer missing).\n   Every column's y and dx "
          f"checked against ours (rtol {_ACT_RTOL:g}, atol {_ACT_ATOL:g}, times |dy| for dx)")
    present = list(dict.fromkeys(r["backend"] for r in records))
    for key in present:
        part = [r for r in records if r["backend"] == key]
        busy = statistics.median(r["cpu_per_wall"] for r in part)
        print(f"   {key:13s} {part[0]['framework']}, threads {part[0]['threads']}, cores kept "
              f"busy (cpu/wall, median) {busy:.2f}")
    for key in ("torch", "jax"):
        if key not in present and key in notes:
            print(f"   {key:13s} {notes[key]}")
    if "step" in notes:
        print(f"   step          {notes['step']}")
    rows: dict[str, dict] = {}
    for r in records:
        rows.setdefault(r["activation"], {})[r["backend"]] = r["median_s"] / r["size"] * 1e9
    print(f"{'activation':11s}" + "".join(f"{label:>9s}" for _, label in _ACT_COLUMNS)
          + f"{'/by hand':>9s}{'/torch':>8s}{'/jax':>8s}  target")
    met = compared = 0
    for act, v in rows.items():
        ours = v["cython"]
        ratios = {k: ours / v[k] if k in v else None for k in ("numpy by hand", "torch", "jax")}
        peers = [ratios[k] for k in ("torch", "jax") if ratios[k] is not None]
        if not peers:
            target = "-"
        elif any(q > 1 for q in peers):
            target = "no"
        else:
            target = "yes" if len(peers) == 2 else "?"
        if len(peers) == 2:
            compared += 1
            met += target == "yes"
        print(f"{act:11s}" + "".join(_fmt_opt(v.get(k), ".3f", 9) for k, _ in _ACT_COLUMNS)
              + _fmt_opt(ratios["numpy by hand"], ".3f", 9) + _fmt_opt(ratios["torch"], ".3f", 8)
              + _fmt_opt(ratios["jax"], ".3f", 8) + f"  {target}")
    if compared:
        print(f"   target met for {met} of {compared} activations with both peers")


# Column order and short labels of the derivative formulations.
_DERIV_COLUMNS = [
    (("kernel from y", "cython"), "y-kern cy"), (("kernel from x", "cython"), "x-kern cy"),
    (("kernel from y", "numpy"), "y-kern np"), (("kernel from x", "numpy"), "x-kern np"),
    (("Tensor op (autograd)", "cython"), "Tensor op"),
    (("composed ops (autograd)", "cython"), "composed"),
    (("numpy by hand", "numpy by hand"), "by hand"),
]


def _report_derivatives(records: list[dict]) -> None:
    print("\n== derivatives: dx = dy * f'(x), float32, ns per element (median). y-kern: the "
          "fused backward kernel\n   from the saved output; x-kern: from the input (cy: "
          "cython, np: numpy reference);\n   Tensor op / composed: autograd through the fused "
          "op / through primitive ops; all checked\n   against a float64 reference "
          f"(rtol {_DERIV_RTOL:g}, atol {_DERIV_ATOL:g}); max|diff| is the largest over the row")
    for phase in ("backward", "forward+backward"):
        for size in sorted({r["size"] for r in records}, reverse=True):
            rows: dict[str, dict] = {}
            for r in records:
                if r["phase"] == phase and r["size"] == size:
                    rows.setdefault(r["activation"], {})[(r["name"], r["backend"])] = r
            print(f"\n-- {phase}, {size:,} values")
            print(f"{'activation':11s}" + "".join(f"{label:>10s}" for _, label in _DERIV_COLUMNS)
                  + f"  {'fastest':10s} {'by':>6s} {'max|diff|':>9s}")
            for act, v in rows.items():
                cells = []
                for key, _ in _DERIV_COLUMNS:
                    r = v.get(key)
                    cells.append(f"{'-':>10s}" if r is None
                                 else f"{r['median_s'] / size * 1e9:10.3f}")
                ranked = sorted(v.values(), key=lambda r: r["median_s"])
                best, second = ranked[0], ranked[1]
                best_label = dict(_DERIV_COLUMNS)[(best["name"], best["backend"])]
                factor = second["median_s"] / best["median_s"]
                diff = max(r["max_abs_diff"] for r in v.values())
                print(f"{act:11s}" + "".join(cells) + f"  {best_label:10s} {factor:5.2f}x "
                      f"{diff:9.2e}")
    print("   (fastest: the quickest formulation; by: how much faster than the runner-up)")


def _report_training(records: list[dict]) -> None:
    print("\n== training: Sequential.fit, us per step (median of repeats of the whole run); "
          "target on the full\n   training set, checked at each epoch's end; final loss on the "
          "full training set (float64 forward).\n   * = the configuration as WORKLOADS.md / "
          "the seed write it; np ref = the same run on the numpy reference kernels")
    ours = [r for r in records if r["backend"] == "cython"]
    ref = {r["name"]: r for r in records if r["backend"] == "numpy"}
    print(f"{'workload':15s} {'steps':>6s} {'us/step':>8s} {'target':>17s} {'to target':>9s} "
          f"{'time (s)':>8s} {'final loss':>10s} {'acc':>6s} {'np ref':>8s} {'ratio':>6s}")
    family = None
    for r in ours:
        if r["workload"] != family:
            family = r["workload"]
            group = [q for q in ours if q["workload"] == family]
            if len(group) > 1:
                fastest = min(group, key=lambda q: q["us_per_step"])["activation"]
                reached = [q for q in group if q["time_to_target_s"] is not None]
                soonest = (min(reached, key=lambda q: q["time_to_target_s"])["activation"]
                           if reached else "none")
                fewest = (min(reached, key=lambda q: q["steps_to_target"])["activation"]
                          if reached else "none")
                print(f"-- {family}: fastest per step {fastest}; fewest steps to target "
                      f"{fewest}; first to target {soonest}")
        name = r["name"] + (" *" if r["exact"] else "")
        line = (f"{name:15s} {r['steps']:6d} {r['us_per_step']:8.1f} {r['target']:>17s} "
                f"{_fmt_opt(r['steps_to_target'], 'd', 9)} "
                f"{_fmt_opt(r['time_to_target_s'], '.3f', 8)} {r['final_loss']:10.3e} "
                f"{r['final_accuracy']:6.3f}")
        if r["name"] in ref:
            p = ref[r["name"]]["us_per_step"]
            line += f" {p:8.1f} {r['us_per_step'] / p:6.3f}"
        print(line)


_PEER_ORDER = [key for key, _ in PEER_COLUMNS]  # the README's column order


def _report_peers(records: list[dict]) -> None:
    rows: dict[str, dict] = {}
    for r in records:
        rows.setdefault(r["name"], {})[r["backend"]] = r
    keys = [k for k in _PEER_ORDER if any(k in v for v in rows.values())]
    labels = {"cython": "ours", "eager": "ours eager", "jax-scan-shuf": "scan+shuf"}
    print("\n== peers: the same training in each framework, us per step (median); "
          "ratio = ours / peer (< 1: ours is faster)")
    for r in records:
        if r["name"] == records[0]["name"]:
            busy = statistics.median(q["cpu_per_wall"] for q in records
                                     if q["backend"] == r["backend"])
            print(f"   {r['backend']:9s} {r['framework']}, threads {r['threads']}, "
                  f"cores kept busy (cpu/wall, median) {busy:.2f}")
    head = f"{'workload':12s} {'steps':>6s}" + "".join(f"{labels.get(k, k):>11s}" for k in keys)
    head += "".join(f"{'/' + labels.get(k, k):>12s}" for k in keys[1:])
    print(head)
    for name, v in rows.items():
        ours = v["cython"]["us_per_step"]
        line = f"{name:12s} {v['cython']['steps']:6d}"
        line += "".join(_fmt_opt(v[k]["us_per_step"] if k in v else None, ".1f", 11)
                        for k in keys)
        line += "".join(_fmt_opt(ours / v[k]["us_per_step"] if k in v else None, ".3f", 12)
                        for k in keys[1:])
        print(line)
    print("\n-- final loss on the full training set (float64 forward from each framework's "
          "weights); agree = max relative difference to ours")
    print(f"{'workload':12s}" + "".join(f"{labels.get(k, k):>11s}" for k in keys)
          + f" {'max rel':>9s} {'to target':>16s}")
    for name, v in rows.items():
        ours = v["cython"]["final_loss"]
        rel = max(abs(v[k]["final_loss"] - ours) / max(abs(ours), 1e-12)
                  for k in keys if k in v and k not in _OTHER_ORDERS)
        steps = sorted({str(v[k]["steps_to_target"]) for k in keys if k in v})
        print(f"{name:12s}" + "".join(_fmt_opt(v[k]["final_loss"] if k in v else None, ".4e", 11)
                                      for k in keys)
              + f" {rel:9.2e} {'/'.join(steps):>16s}")
    print("   (to target: the steps to target of every framework; one value when all agree; "
          "max rel leaves out " + ", ".join(sorted(_OTHER_ORDERS)) + ": other orders)")


def _report_sweep(records: list[dict], notes: dict[str, str]) -> None:
    print("\n== sweep: issue 14's S1/S2 (nets of W3's relu shape), us per net-step = wall / "
          "(nets x steps), median of\n   interleaved repeats; ratio = the loop of fit / this "
          "(> 1: faster than the loop); engine: what trained")
    for peer, note in notes.items():
        print(f"   {peer:9s} {note}")
    print(f"{'sweep':5s} {'how':24s} {'nets':>5s} {'steps':>6s} {'us/net-step':>12s} "
          f"{'ratio':>6s} {'same bits':>9s} {'mean loss':>10s}  engine")
    loops = {r["sweep"]: r for r in records if r["how"] == "loop of fit"}
    for r in records:
        if r["sweep"] == "W1 many":
            continue
        base = loops[r["sweep"]]["us_per_net_step"]
        same = "-" if r["same_bits"] is None else "yes" if r["same_bits"] else "NO"
        print(f"{r['sweep']:5s} {r['how']:24s} {r['nets']:5d} {r['steps']:6d} "
              f"{r['us_per_net_step']:12.2f} {base / r['us_per_net_step']:6.2f} {same:>9s} "
              f"{r['final_loss_mean']:10.4f}  {r['backend']}")
    for kind in loops:
        for suffix in ("", " batched"):
            one = next((r for r in records if r["sweep"] == kind
                        and r["how"] == "sweep serial" + suffix), None)
            two = next((r for r in records if r["sweep"] == kind
                        and r["how"] == "sweep 2 workers" + suffix), None)
            if one and two:
                print(f"   {kind}: 2 workers / serial{suffix}: "
                      f"{one['median_s'] / two['median_s']:.2f}x (target >= 1.8x)")
    for r in records:
        if r["sweep"] == "W1 many":
            print(f"   {r['name']}: {r['median_s']:.2f} s, inside fit {r['inside_fit_s']:.2f} "
                  f"s per worker: {r['outside_share']:.1%} outside fit ({r['backend']})")


# --------------------------------------------------------------------------- charts


def _series_by(records: list[dict], group: Callable[[dict], str], label: Callable[[dict], str],
               value: Callable[[dict], float]) -> tuple[list[str], dict[str, list]]:
    """The groups (in order of first appearance) and, per label, a value per group (None where
    a label has none) of records, for _grouped_bars."""
    groups = list(dict.fromkeys(group(r) for r in records))
    series: dict[str, list] = {}
    for r in records:
        series.setdefault(label(r), [None] * len(groups))[groups.index(group(r))] = value(r)
    return groups, series


def _grouped_bars(ax, groups: list[str], series: dict[str, list[float | None]],
                  ylabel: str, log: bool = True) -> None:
    """Bars of each series side by side within each group."""
    width = 0.8 / max(len(series), 1)
    xs = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(xs + (i - (len(series) - 1) / 2) * width, heights, width, label=label)
    ax.set_xlim(-0.5, len(groups) - 0.5)  # a group without bars keeps its place
    ax.set_xticks(xs)
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _chart_kernels(fig, records):
    dtype = "float32"
    size = max(r["size"] for r in records if r["dtype"] == dtype)
    acts = list(dict.fromkeys(r["activation"] for r in records))
    axes = fig.subplots(1, 2)
    for ax, phase in zip(axes, ("forward", "backward"), strict=True):
        series = {}
        for backend in ("cython", "numpy"):
            got = {r["activation"]: r["median_s"] / size * 1e9 for r in records
                   if r["backend"] == backend and r["size"] == size and r["dtype"] == dtype
                   and r["name"].endswith(phase)}
            series[backend] = [got.get(a) for a in acts]
        _grouped_bars(ax, acts, series, "ns per element")
        ax.set_title(f"{phase}, {size:,} {dtype}")


def _chart_gemm(fig, records):
    small = [r for r in records if "shape" in r and r.get("table") != "small"]
    records = [r for r in records if "shape" not in r]
    ax, ax2 = fig.subplots(1, 2) if small else (fig.subplots(), None)
    for dtype in dict.fromkeys(r["dtype"] for r in records):
        for label in dict.fromkeys((r["name"], r["backend"]) for r in records):
            pts = sorted((r["size"], r["gflops"]) for r in records
                         if (r["name"], r["backend"]) == label and r["dtype"] == dtype)
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"{label[0]} ({label[1]}) {dtype}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (n x n @ n x n)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if ax2 is not None:
        groups, series = _series_by(small, lambda r: f"{r['shape']} {r['dtype']}",
                                    lambda r: r["name"], lambda r: r["median_s"] * 1e6)
        _grouped_bars(ax2, groups, series, "us per call")
        ax2.set_title("C = A B.T (m x n x k), one thread")
        ax2.legend(fontsize=7)


def _chart_overhead(fig, records):
    ax = fig.subplots()
    names = list(dict.fromkeys(r["name"] for r in records))
    series: dict[str, list] = {}
    for r in records:
        series.setdefault(r["framework"], [None] * len(names))[names.index(r["name"])] = (
            r["median_s"] * 1e6)
    _grouped_bars(ax, names, series, "us per call")
    ax.set_title("per-op cost, (32, 32) float32")


def _chart_activations(fig, records):
    ax = fig.subplots()
    acts = list(dict.fromkeys(r["activation"] for r in records))
    labels = {"cython": "ours (cython)", "numpy": "ours (numpy backend)"}
    series: dict[str, list] = {}
    for r in records:
        label = labels.get(r["backend"], r["framework"] if r["backend"] in ("torch", "jax")
                           else r["backend"])
        series.setdefault(label, [None] * len(acts))[acts.index(r["activation"])] = (
            r["median_s"] / r["size"] * 1e9)
    _grouped_bars(ax, acts, series, "ns per element")
    peers = "".join(name for key, name in (("torch", ", PyTorch eager"), ("jax", ", JAX jit"))
                    if any(r["backend"] == key for r in records))
    ax.set_title(f"forward+backward, {records[0]['size']:,} float32: ours through the Tensor "
                 f"API, numpy by hand{peers}")


def _chart_derivatives(fig, records):
    size = max(r["size"] for r in records)
    acts = list(dict.fromkeys(r["activation"] for r in records))
    axes = fig.subplots(2, 1)
    for ax, phase in zip(axes, ("backward", "forward+backward"), strict=True):
        series: dict[str, list] = {}
        for key, label in _DERIV_COLUMNS:
            got = {r["activation"]: r["median_s"] / size * 1e9 for r in records
                   if (r["name"], r["backend"]) == key and r["phase"] == phase
                   and r["size"] == size}
            if got:
                series[label] = [got.get(a) for a in acts]
        _grouped_bars(ax, acts, series, "ns per element")
        ax.set_title(f"{phase}, {size:,} float32")


def _chart_training(fig, records):
    ours = [r for r in records if r["backend"] == "cython"]
    names = [r["name"] for r in ours]
    axes = fig.subplots(3, 1)
    panels = (("us_per_step", "us per step"), ("steps_to_target", "steps to target"),
              ("time_to_target_s", "seconds to target"))
    ref = {r["name"]: r for r in records if r["backend"] == "numpy"}
    for ax, (field, label) in zip(axes, panels, strict=True):
        series = {"microgradnet (cython)": [r[field] for r in ours]}
        if field == "us_per_step":
            series["numpy reference backend"] = [
                ref[n][field] if n in ref else None for n in names]
        _grouped_bars(ax, names, series, label)
    axes[0].set_title("training with each activation (no bar: target not reached)")


def _chart_peers(fig, records):
    names = list(dict.fromkeys(r["name"] for r in records))
    axes = fig.subplots(2, 1)
    for ax, field, label in ((axes[0], "us_per_step", "us per step"),
                             (axes[1], "final_loss", "final loss")):
        series: dict[str, list] = {}
        for r in records:
            series.setdefault(r["framework"], [None] * len(names))[names.index(r["name"])] = (
                r[field])
        _grouped_bars(ax, names, series, label)
    axes[0].set_title("the same training in each framework")


def _chart_animation(fig, records):
    ax = fig.subplots()
    ax.bar([r["format"] for r in records], [r["frames_per_s"] for r in records])
    ax.set_ylabel("frames per second")
    ax.set_title(f"mg.viz.animate_predictions, {records[0]['frames']} frames")


def _chart_playground(fig, records):
    steps = [r for r in records if "steps_per_s" in r]
    fps = [r for r in records if "frames_per_s" in r]
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    axes[0].barh([r["name"] for r in steps], [r["steps_per_s"] for r in steps])
    axes[0].set_xlabel("training steps per second")
    axes[0].set_title("6x8 net: the server's training speed")
    if fps:
        axes[1].bar([f"{r['steps_per_frame']}\nsteps/frame" for r in fps],
                    [r["frames_per_s"] for r in fps])
        axes[1].axhline(20, color="k", linestyle="--", linewidth=1)
        axes[1].set_ylabel("frames drawn per second (target 20)")
    axes[1].set_title("headless Chromium")


def _chart_sweep(fig, records):
    rows = [r for r in records if r["sweep"] != "W1 many"]
    names = list(dict.fromkeys(r["how"] for r in rows))
    series: dict[str, list] = {}
    for r in rows:
        series.setdefault(r["sweep"], [None] * len(names))[names.index(r["how"])] = (
            r["us_per_net_step"])
    ax = fig.subplots()
    _grouped_bars(ax, names, series, "us per net-step")
    ax.set_title("a sweep of small nets, by engine")


def _chart_batched(fig, records):
    ax = fig.add_subplot(1, 1, 1)
    names = [r["name"] for r in records]
    ax.barh(names, [r["median_s"] * 1e6 for r in records])
    ax.set_xlabel("us per net-step (setup: per net)")
    ax.set_title("batched capture (fit_many) vs a loop of fit, W3's shape")


def _chart_eager(fig, records):
    ax = fig.subplots()
    names, series = _series_by(records, lambda r: r["name"], lambda r: r["backend"],
                               lambda r: r["us"])
    _grouped_bars(ax, names, series, "us per call")
    ax.set_title("eager: seed-002 loop and (32, 32) float32 ops with autograd")


def _chart_elementwise(fig, records):
    ax = fig.subplots()
    names, series = _series_by(records, lambda r: f"{r['name']} {r['shape']} {r['dtype']}",
                               lambda r: r["backend"], lambda r: r["median_s"] * 1e6)
    _grouped_bars(ax, names, series, "us per call")
    ax.set_title("elementwise kernels of the eager path against numpy's own op")


CHARTS = {
    "kernels": _chart_kernels, "gemm": _chart_gemm, "overhead": _chart_overhead,
    "activations": _chart_activations, "derivatives": _chart_derivatives,
    "training": _chart_training, "peers": _chart_peers, "animation": _chart_animation,
    "playground": _chart_playground,
    "sweep": _chart_sweep,
    "batched": _chart_batched,
    "eager": _chart_eager,
    "elementwise": _chart_elementwise,
}


def write_charts(records: list[dict], json_path: Path) -> list[Path]:
    """One PNG per section present, beside the JSON: <stem>-<section>.png."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    paths = []
    for section, chart in CHARTS.items():
        part = [r for r in records if r["section"] == section]
        if not part:
            continue
        tall = section in ("derivatives", "training", "peers")
        fig = plt.figure(figsize=(12, 9 if tall else 5))
        chart(fig, part)
        fig.suptitle(f"microgradnet benchmarks: {section}")
        fig.tight_layout()
        path = json_path.with_name(f"{json_path.stem}-{section}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- machine


def machine() -> dict:
    """What ran the benchmark: CPU, load, threads, versions."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "microgradnet": mg.__version__,
        "microgradnet_backend": mg.backend_name(),
        # the default of mg.set_num_threads (1 when built without OpenMP); sections set --threads
        "microgradnet_threads_default": mg.get_num_threads(),
    }
    with contextlib.suppress(AttributeError, OSError):
        info["load_average"] = os.getloadavg()  # the machine is shared: how busy it was
    with contextlib.suppress(AttributeError):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    torch = _torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads_default"] = torch.get_num_threads()
    jax = _jax()
    if jax is not None:
        info["jax"] = jax.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
        info["jax_threads"] = "XLA CPU default"
        info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "filepath")}
            for p in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections, print tables, write JSON and one PNG per section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    parser.add_argument("--smoke", action="store_true",
                        default=os.environ.get("MG_BENCH_SMOKE", "") not in ("", "0"),
                        help="a reduced set that runs in seconds (also MG_BENCH_SMOKE=1)")
    parser.add_argument("--only", action="append", choices=list(SECTIONS),
                        help="run only this section (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS, PyTorch and microgradnet kernel threads (mg.set_num_threads) "
                             "in activations, training and peers (default 1: on this shared "
                             "2-core machine a second BLAS thread made W4 5-10x slower; JAX's "
                             "XLA pool cannot be limited and is left alone)")
    args = parser.parse_args(argv)
    chosen = args.only or list(SECTIONS)
    bench = Bench(args.quick, args.smoke, args.threads)
    mode = "smoke" if bench.smoke else "quick" if bench.quick else "full"
    print(f"microgradnet {mg.__version__} benchmarks ({mode}): {', '.join(chosen)}", flush=True)
    for name in chosen:
        t0 = time.perf_counter()
        bench.section = name
        bench.progress("running ...")
        SECTIONS[name](bench)
        bench.progress(f"done in {time.perf_counter() - t0:.1f} s")
    report(bench.records, bench.notes)
    out = args.out
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = HERE / "results" / f"run-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["mode"] = mode
    info["training_threads"] = {"blas": bench.threads, "torch": bench.threads,
                                "jax": "XLA default (not limitable after import)"}
    info["notes"] = bench.notes
    info["command"] = " ".join(["python benchmarks/run.py", *(argv if argv is not None
                                                              else sys.argv[1:])])
    out.write_text(json.dumps({"machine": info, "results": bench.records}, indent=1))
    print(f"\nwrote {out}")
    for path in write_charts(bench.records, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
