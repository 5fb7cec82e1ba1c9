#!/usr/bin/env python
"""microgradnet microbenchmarks: kernels, GEMM, per-op overhead, activations via the Tensor API.

    python benchmarks/run.py                 # everything (a few minutes)
    python benchmarks/run.py --quick         # reduced sizes and repeats (well under 2 minutes)
    python benchmarks/run.py --only overhead --only gemm

Every number is a median over repeats (min also recorded) measured in this one process, so
ratios compare like with like on a noisy machine. PyTorch is measured as a peer when it is
installed; it is never a dependency. Results go to a table per section and to JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import microgradnet as mg
from microgradnet.backend import kernel_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workloads.py beside this file

ACTIVATIONS = ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "gelu", "silu", "step"]
# What each backward kernel takes: the output y or the input x (csrc/README.md).
SAVES_OUTPUT = {"relu", "elu", "sigmoid", "tanh"}

# Plain numpy forward + backward, the way one writes them by hand (several passes each).
NUMPY_ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": (lambda x: np.maximum(x, 0), lambda dy, x, y: dy * (x > 0)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x),
                   lambda dy, x, y: dy * np.where(x > 0, 1.0, 0.01).astype(x.dtype)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)),
            lambda dy, x, y: dy * np.where(x > 0, 1, y + 1)),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda dy, x, y: dy * y * (1 - y)),
    "tanh": (np.tanh, lambda dy, x, y: dy * (1 - y * y)),
    "softplus": (lambda x: np.logaddexp(x, 0), lambda dy, x, y: dy / (1 + np.exp(-x))),
    "gelu": None,  # filled below (needs scipy's erf)
    "silu": (lambda x: x / (1 + np.exp(-x)),
             lambda dy, x, y: dy * (s := 1 / (1 + np.exp(-x))) * (1 + x * (1 - s))),
    "step": (lambda x: (x >= 0).astype(x.dtype), lambda dy, x, y: np.zeros_like(dy)),
}


def _numpy_gelu():
    from scipy.special import erf

    def fwd(x):
        return 0.5 * x * (1 + erf(x * np.float32(0.7071067811865476)))

    def bwd(dy, x, y):
        cdf = 0.5 * (1 + erf(x * np.float32(0.7071067811865476)))
        return dy * (cdf + x * np.exp(-0.5 * x * x) * np.float32(0.3989422804014327))

    return fwd, bwd


NUMPY_ACTIVATIONS["gelu"] = _numpy_gelu()


# --------------------------------------------------------------------------- timing


def measure(fn: Callable[[], Any], repeats: int, min_repeat_s: float) -> dict:
    """Median and min seconds per call of fn over `repeats` timed loops (after a warm-up)."""
    fn()
    number, elapsed = 1, 0.0
    while True:  # calibrate: enough calls per loop that one loop takes min_repeat_s
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_repeat_s or number >= 1 << 20:
            break
        number = max(number * 2, int(number * min_repeat_s / max(elapsed, 1e-9) * 1.1))
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


class Bench:
    """Collects records and prints progress."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.repeats = 5 if quick else 9
        self.min_repeat_s = 0.01 if quick else 0.05
        self.records: list[dict] = []

    def run(self, section: str, name: str, fn: Callable[[], Any], **fields: Any) -> dict:
        """Time fn and keep the record."""
        record = {"section": section, "name": name, **fields}
        record.update(measure(fn, self.repeats, self.min_repeat_s))
        self.records.append(record)
        return record


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("MG_BENCH_THREADS", "0")) or torch.get_num_threads())
    return torch


# --------------------------------------------------------------------------- sections


def section_kernels(b: Bench) -> None:
    """Forward and backward of every activation kernel: ns per element, both backends."""
    sizes = [1_000, 100_000] if b.quick else [100, 10_000, 1_000_000]
    dtypes = [np.float32] if b.quick else [np.float32, np.float64]
    rng = np.random.default_rng(0)
    tables = {name: kernel_table(name) for name in ("cython", "numpy")}
    for act in ACTIVATIONS:
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
                                  size=size)
                    b.run("kernels", f"{act}_forward", lambda: fwd(x, out=out), **common)
                    b.run("kernels", f"{act}_backward", lambda: bwd(dy, saved, out=out),
                          **common)


def section_gemm(b: Bench) -> None:
    """GEMM GFLOP/s: the kernel on both backends against numpy's @."""
    sizes = [64, 256] if b.quick else [64, 128, 256, 512, 1024]
    dtypes = [np.float32] if b.quick else [np.float32, np.float64]
    rng = np.random.default_rng(0)
    tables = {name: kernel_table(name) for name in ("cython", "numpy")}
    for dtype in dtypes:
        for n in sizes:
            a = rng.standard_normal((n, n)).astype(dtype)
            c = rng.standard_normal((n, n)).astype(dtype)
            out = np.empty((n, n), dtype)
            common = dict(dtype=np.dtype(dtype).name, size=n)
            flops = 2.0 * n**3
            for backend, k in tables.items():
                gemm = k["gemm"]
                r = b.run("gemm", "gemm", lambda: gemm(a, c, out=out), backend=backend, **common)
                r["gflops"] = flops / r["median_s"] / 1e9
            r = b.run("gemm", "numpy @", lambda: np.matmul(a, c, out=out), backend="numpy @",
                      **common)
            r["gflops"] = flops / r["median_s"] / 1e9
            at, ct = mg.tensor(a, dtype=dtype), mg.tensor(c, dtype=dtype)
            r = b.run("gemm", "Tensor @", lambda: at @ ct, backend="cython", **common)
            r["gflops"] = flops / r["median_s"] / 1e9


def _one_blas_thread():
    """Context pinning BLAS to one thread: otherwise OpenBLAS threads that spin after a call
    steal the second core from whatever runs next (PyTorch's ops were 1.5x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def section_overhead(b: Bench) -> None:
    """Per-op cost on (32, 32) float32 tensors, recording autograd, against PyTorch eager."""
    with _one_blas_thread():
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
    cases = _overhead_cases(*[mg.tensor(a, requires_grad=True) for a in arrays], mg.relu)
    for name, fn in cases.items():
        b.run("overhead", name, fn, backend="cython", framework="microgradnet", threads=1,
              **common)
    with mg.no_grad():
        for name in ("add", "relu", "matmul"):
            b.run("overhead", name + " (no grad)", cases[name], backend="cython",
                  framework="microgradnet", **common)
    xa, wa = arrays[0], arrays[1]
    b.run("overhead", "add", lambda: xa + wa, backend="numpy", framework="numpy", **common)
    torch = _torch()
    if torch is None:
        return
    tcases = _overhead_cases(*[torch.tensor(a, requires_grad=True) for a in arrays], torch.relu)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like our BLAS here; with 2, a busy core costs it a time slice
    try:
        for name, fn in tcases.items():
            b.run("overhead", name, fn, backend="torch", framework="torch " + torch.__version__,
                  threads=1, **common)
    finally:
        torch.set_num_threads(threads)


def section_activations(b: Bench) -> None:
    """Activation forward+backward on 1e6 float32 through the Tensor API vs plain numpy."""
    size = 100_000 if b.quick else 1_000_000
    rng = np.random.default_rng(0)
    xa = rng.standard_normal(size).astype(np.float32)
    dya = rng.standard_normal(size).astype(np.float32)
    for act in ACTIVATIONS:
        fn = getattr(mg, act)
        for backend in ("cython", "numpy"):
            def tensor_api(fn=fn, backend=backend):
                with mg.use_backend(backend):
                    x = mg.Tensor(xa, requires_grad=True)
                    fn(x).backward(dya)

            b.run("activations", act, tensor_api, activation=act, backend=backend,
                  framework="microgradnet", dtype="float32", size=size)
        np_fwd, np_bwd = NUMPY_ACTIVATIONS[act]

        def by_hand(np_fwd=np_fwd, np_bwd=np_bwd):
            y = np_fwd(xa)
            return np_bwd(dya, xa, y)

        b.run("activations", act, by_hand, activation=act, backend="numpy by hand",
              framework="numpy", dtype="float32", size=size)


def section_training(b: Bench) -> None:
    """The reference workloads (WORKLOADS.md) through Sequential.fit, and PyTorch eager."""
    import workloads

    torch = _torch()
    with _one_blas_thread():
        threads = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(1)  # tiny nets: no framework gains from a second thread
        try:
            for w in workloads.all_workloads(b.quick):
                runners = [("microgradnet", "cython", workloads.run_microgradnet)]
                if torch is not None:
                    runners.append(("torch " + torch.__version__, "torch",
                                    lambda w, torch=torch: workloads.run_torch(w, torch)))
                for framework, backend, run in runners:
                    times, final, steps = [], None, None
                    for _ in range(1 if b.quick else 3):
                        seconds, steps, final = run(w)
                        times.append(seconds)
                    b.records.append({
                        "section": "training", "name": w.name, "framework": framework,
                        "backend": backend, "dtype": "float32", "activation": w.hidden,
                        "median_s": statistics.median(times), "min_s": min(times),
                        "repeats": len(times), "steps": steps, "final_loss": final,
                        "us_per_step": statistics.median(times) / steps * 1e6,
                    })
        finally:
            if torch is not None:
                torch.set_num_threads(threads)


SECTIONS = {
    "kernels": section_kernels,
    "gemm": section_gemm,
    "overhead": section_overhead,
    "activations": section_activations,
    "training": section_training,
}


# --------------------------------------------------------------------------- report


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e3:9.2f} ms"


def report(records: list[dict]) -> None:
    """Print one readable table per section, with the ratios that matter."""
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
            rows.setdefault((r["dtype"], r["size"]), {})[r["name"] + ":" + r["backend"]] = r[
                "gflops"]
        print(f"{'dtype':8s} {'n':>5s} {'cython':>8s} {'Tensor@':>8s} {'numpy@':>8s} "
              f"{'reference':>9s} {'ratio':>6s}")
        for (dtype, n), v in rows.items():
            c, t, npy, ref = (v["gemm:cython"], v["Tensor @:cython"], v["numpy @:numpy @"],
                              v["gemm:numpy"])
            print(f"{dtype:8s} {n:5d} {c:8.1f} {t:8.1f} {npy:8.1f} {ref:9.1f} {c / npy:6.3f}")

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

    if "training" in by_section:
        _report_training(by_section["training"])

    if "activations" in by_section:
        print("\n== activations: forward+backward through the Tensor API, float32 (median)")
        rows = {}
        for r in by_section["activations"]:
            rows.setdefault(r["activation"], {})[r["backend"]] = r["median_s"] / r["size"] * 1e9
        print(f"{'activation':12s} {'cython':>8s} {'numpy ref':>10s} {'by hand':>8s} "
              f"{'cython/by hand':>15s}  (ns per element)")
        for act, v in rows.items():
            print(f"{act:12s} {v['cython']:8.3f} {v['numpy']:10.3f} {v['numpy by hand']:8.3f} "
                  f"{v['cython'] / v['numpy by hand']:15.3f}")


def _report_training(records: list[dict]) -> None:
    print("\n== training: the WORKLOADS.md runs, us per step (median); ratio = ours / torch")
    rows: dict[str, dict] = {}
    for r in records:
        rows.setdefault(r["name"], {})[r["backend"]] = r
    print(f"{'workload':12s} {'steps':>6s} {'ours':>9s} {'torch':>9s} {'ratio':>7s} "
          f"{'our loss':>10s} {'torch loss':>10s}")
    for name, v in rows.items():
        ours, peer = v["cython"], v.get("torch")
        line = f"{name:12s} {ours['steps']:6d} {ours['us_per_step']:9.1f} "
        if peer:
            line += (f"{peer['us_per_step']:9.1f} {ours['us_per_step'] / peer['us_per_step']:7.3f}"
                     f" {ours['final_loss']:10.3e} {peer['final_loss']:10.3e}")
        else:
            line += f"{'-':>9s} {'-':>7s} {ours['final_loss']:10.3e}"
        print(line)


def machine() -> dict:
    """What ran the benchmark: CPU, threads, versions."""
    info = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "microgradnet": mg.__version__,
    }
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
        info["torch_threads"] = torch.get_num_threads()
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
    """Run the selected sections, print tables, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes and repeats")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS),
                        help="run only this section (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    chosen = args.only or list(SECTIONS)
    bench = Bench(args.quick)
    for name in chosen:
        t0 = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        SECTIONS[name](bench)
        print(f"[{name}] done in {time.perf_counter() - t0:.1f} s", flush=True)
    report(bench.records)
    out = args.out
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(__file__).resolve().parent / "results" / f"run-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "results": bench.records}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
