"""The benchmark harness runs end to end and writes what it promises (never its timings)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

RECORD_KEYS = {"section", "name", "backend", "dtype", "median_s", "min_s", "repeats"}
TRAINING_KEYS = {"steps", "final_loss", "steps_to_target", "time_to_target_s", "activation",
                 "framework", "target", "exact", "us_per_step"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run of every section (a reduced set, seconds), shared by the tests below."""
    run = _load("run")
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    assert run.main(["--quick", "--smoke", "--out", str(out)]) == 0
    return run, out, json.loads(out.read_text())


def test_json_schema(smoke_run):
    run, _, data = smoke_run
    assert set(data) == {"machine", "results"}
    machine = data["machine"]
    for key in ("date", "cpu_count", "python", "numpy", "microgradnet", "training_threads",
                "mode", "command"):
        assert key in machine, key
    assert machine["mode"] == "smoke"
    records = data["results"]
    assert {r["section"] for r in records} >= set(run.SECTIONS) - {"peers"}
    for r in records:
        missing = RECORD_KEYS - set(r)
        assert not missing, (r["section"], r["name"], missing)
        assert r["median_s"] > 0 and r["min_s"] > 0 and r["min_s"] <= r["median_s"]
        assert isinstance(r["repeats"], int) and r["repeats"] >= 1
        if r["section"] in ("kernels", "activations", "derivatives"):
            assert r["activation"] in run.ACTIVATIONS and r["size"] > 0
        if r["section"] in ("training", "peers"):
            missing = TRAINING_KEYS - set(r)
            assert not missing, (r["section"], r["name"], missing)
            assert r["steps"] > 0 and np.isfinite(r["final_loss"])
            assert r["repeats_agree"]
            if r["steps_to_target"] is None:
                assert r["time_to_target_s"] is None
            else:
                assert 0 < r["steps_to_target"] <= r["steps"] and r["time_to_target_s"] > 0


def test_derivatives_agree(smoke_run):
    _, _, data = smoke_run
    derivs = [r for r in data["results"] if r["section"] == "derivatives"]
    names = {r["name"] for r in derivs}
    assert {"kernel from y", "kernel from x", "Tensor op (autograd)", "composed ops (autograd)",
            "numpy by hand"} <= names
    assert {r["backend"] for r in derivs} >= {"cython", "numpy"}
    assert all(r["max_abs_diff"] < 1e-4 for r in derivs)
    # sigmoid has both formulations of its derivative, from y and from x, on both backends.
    sig = {(r["name"], r["backend"]) for r in derivs if r["activation"] == "sigmoid"}
    assert {("kernel from y", "cython"), ("kernel from x", "cython"),
            ("kernel from x", "numpy")} <= sig


def test_peers_agree_on_the_final_loss(smoke_run):
    bench, _, data = smoke_run
    peers = [r for r in data["results"] if r["section"] == "peers"]
    assert {r["backend"] for r in peers} >= {"cython", "numpy"}  # the rest when installed
    by_name: dict[str, list[float]] = {}
    for r in peers:
        if r["backend"] not in bench._OTHER_ORDERS:  # shuffled with other orders
            by_name.setdefault(r["name"], []).append(r["final_loss"])
    for name, losses in by_name.items():
        assert max(losses) - min(losses) <= 1e-3 * max(losses), (name, losses)


def test_charts_written_and_readable(smoke_run):
    import matplotlib.image

    _, out, data = smoke_run
    for section in {r["section"] for r in data["results"]}:
        path = out.with_name(f"{out.stem}-{section}.png")
        assert path.exists(), path
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_only_selects_a_section(tmp_path):
    run = _load("run")
    out = tmp_path / "gemm.json"
    assert run.main(["--smoke", "--only", "gemm", "--out", str(out)]) == 0
    records = json.loads(out.read_text())["results"]
    assert records and {r["section"] for r in records} == {"gemm"}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["gemm-gemm.png"]


@pytest.mark.parametrize("make", ["w1", "w2b", "w3", "w4", "perceptron"])
def test_numpy_by_hand_trains_like_microgradnet(make):
    """The numpy peer is the same training: same weights after a few epochs."""
    wl = _load("workloads")
    w = {"w1": lambda: wl.w1("relu", 5), "w2b": lambda: wl.w2b("tanh", 3),
         "w3": lambda: wl.w3("gelu", 2), "w4": lambda: wl.w4(1),
         "perceptron": lambda: wl.perceptron("sigmoid", 20)}[make]()
    ours, peer = wl.run_microgradnet(w), wl.run_numpy(w)
    assert ours.steps == peer.steps == w.steps
    assert len(ours.snapshots) == len(peer.snapshots) == w.epochs
    for a, b in zip(ours.snapshots[-1], peer.snapshots[-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
