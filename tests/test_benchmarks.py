"""The benchmark harness runs end to end and writes what it promises (never its timings)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from _load import load_script

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

RECORD_KEYS = {"section", "name", "backend", "dtype", "median_s", "min_s", "repeats"}
TRAINING_KEYS = {"steps", "final_loss", "steps_to_target", "time_to_target_s", "activation",
                 "framework", "target", "exact", "us_per_step"}


def _load(name: str):
    return load_script(BENCHMARKS / f"{name}.py", f"bench_{name}")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run of every section (a reduced set, seconds), shared by the tests below."""
    run = _load("run")
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    assert run.main(["--quick", "--smoke", "--out", str(out)]) == 0
    return run, out, json.loads(out.read_text())


@pytest.mark.slow  # the smoke run of every section
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


@pytest.mark.slow  # the smoke run of every section
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


def _activation_rows(records: list[dict]) -> dict[str, dict[str, dict]]:
    """{activation: {backend: record}} of the activations section."""
    rows: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["section"] == "activations":
            rows.setdefault(r["activation"], {})[r["backend"]] = r
    return rows


@pytest.mark.slow  # the smoke run of every section
@pytest.mark.parametrize("peer", ["torch", "jax"])
def test_activations_include_the_installed_peers(smoke_run, peer):
    run, _, data = smoke_run
    if getattr(run, f"_{peer}")() is None:
        assert data["machine"]["notes"]["activations"][peer] == "not installed: skipped"
        pytest.skip(f"{peer} is not installed")
    rows = _activation_rows(data["results"])
    assert set(rows) == {"relu", "sigmoid"}  # the smoke set
    for act, v in rows.items():
        assert peer in v, (act, set(v))
        assert {"cython", "numpy", "numpy by hand"} <= set(v) <= {
            "cython", "numpy", "numpy by hand", "torch", "jax"}, (act, set(v))
        r, ours = v[peer], v["cython"]
        assert r["framework"].startswith(peer + " ") and r["activation"] == act
        assert r["dtype"] == "float32" and r["size"] == ours["size"] > 0
        assert r["name"] == act and r["repeats"] == ours["repeats"]  # interleaved: same count
        assert r["ns_per_element"] == pytest.approx(r["median_s"] / r["size"] * 1e9)
        # PyTorch runs on --threads (1 by default); JAX's pool cannot be limited.
        assert r["threads"] == (1 if peer == "torch" else "xla default")
        assert r["checked_against"] == "microgradnet cython"
        assert 0 <= r["max_abs_diff_y"] < 1e-5 and 0 <= r["max_abs_diff_dx"] < 1e-5
        assert r["cpu_per_wall"] > 0


@pytest.mark.slow  # the smoke run of every section
def test_report_prints_the_activation_ratios(smoke_run, capsys):
    run, _, data = smoke_run
    records = [r for r in data["results"] if r["section"] == "activations"]
    run.report(records, data["machine"]["notes"])
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("activation "))
    assert lines[head].split() == ["activation", "ours", "ours", "np", "by", "hand", "torch",
                                   "jax", "/by", "hand", "/torch", "/jax", "target"]
    printed = {}
    for line in lines[head + 1:]:
        if not line or line.startswith(" "):  # the table ends: a note or a blank line
            break
        cells = line.split()
        assert len(cells) == 10, line
        printed[cells[0]] = cells[1:]
    rows = _activation_rows(records)
    assert set(printed) == set(rows)
    for act, v in rows.items():
        ns = {k: r["median_s"] / r["size"] * 1e9 for k, r in v.items()}
        cells = printed[act]
        for cell, key in zip(cells[:5], ["cython", "numpy", "numpy by hand", "torch", "jax"],
                             strict=True):
            assert cell == ("-" if key not in ns else f"{ns[key]:.3f}"), (act, key, cell)
        ratios = {k: ns["cython"] / ns[k] for k in ("torch", "jax") if k in ns}
        for cell, key in zip(cells[6:8], ["torch", "jax"], strict=True):
            assert cell == ("-" if key not in ratios else f"{ratios[key]:.3f}"), (act, key)
        if len(ratios) == 2:
            assert cells[8] == ("yes" if max(ratios.values()) <= 1 else "no"), (act, cells)
        elif ratios:
            assert cells[8] == ("no" if max(ratios.values()) > 1 else "?"), (act, cells)
        else:
            assert cells[8] == "-"


def test_activations_without_peers(monkeypatch, capsys):
    """Neither peer installed: ours and numpy only, a note for each peer, '-' in its columns."""
    run = _load("run")
    monkeypatch.setattr(run, "_torch", lambda: None)
    monkeypatch.setattr(run, "_jax", lambda: None)
    bench = run.Bench(quick=False, smoke=True)
    bench.activations = ["relu", "step"]
    run.section_activations(bench)
    assert {r["backend"] for r in bench.records} == {"cython", "numpy", "numpy by hand"}
    assert bench.notes["activations"] == {"torch": "not installed: skipped",
                                          "jax": "not installed: skipped"}
    capsys.readouterr()
    run.report(bench.records, bench.notes)
    out = capsys.readouterr().out
    assert "torch         not installed: skipped" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("relu ", "step "))]
    assert len(rows) == 2 and all(row[4:6] == ["-", "-"] and row[7:] == ["-", "-", "-"]
                                  for row in rows), rows


def test_activation_check_catches_a_different_result():
    run = _load("run")
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000).astype(np.float32)
    dy = rng.standard_normal(1000).astype(np.float32)
    y = np.maximum(x, 0)
    dx = dy * (x > 0)
    ours = (y, dx)
    diffs = run._check_activation("relu", "peer", x, dy, (y.copy(), dx.copy()), ours)
    assert diffs == {"max_abs_diff_y": 0.0, "max_abs_diff_dx": 0.0}
    # A few ulp apart passes: another formula of the same function.
    run._check_activation("relu", "peer", x, dy, (np.nextafter(y, np.float32(9)), dx), ours)
    leaky = np.where(x > 0, x, np.float32(0.01) * x)  # another function: caught
    with pytest.raises(AssertionError, match=r"relu y by peer differs from ours \(cython\)"):
        run._check_activation("relu", "peer", x, dy, (leaky, dx), ours)
    bad_dx = dx.copy()
    bad_dx[7] += 1e-4 * abs(dy[7]) + 1e-4
    with pytest.raises(AssertionError,
                       match=r"relu dx by peer differs from ours \(cython\) at 1 of 1000 "):
        run._check_activation("relu", "peer", x, dy, (y, bad_dx), ours)
    with pytest.raises(AssertionError, match="float64"):
        run._check_activation("relu", "peer", x, dy, (y.astype(np.float64), dx), ours)


@pytest.mark.slow  # the smoke run of every section
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


@pytest.mark.slow  # the smoke run of every section
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


@pytest.mark.parametrize(
    "make", ["w1", "w2b", "w3", pytest.param("w4", marks=pytest.mark.slow), "perceptron"]
)
def test_numpy_by_hand_trains_like_microgradnet(make):
    """The numpy peer is the same training: same weights after a few epochs (W4: after 8
    steps. Its Adam on a wide ReLU net amplifies the rounding differences of two BLAS builds
    (numpy's and scipy's) step by step: on an AMD EPYC 3e-7 after one step, 1e-5 after 16,
    2e-3 after its epoch of 64, beyond any tolerance that still tests something.)"""
    wl = _load("workloads")
    w = {"w1": lambda: wl.w1("relu", 5), "w2b": lambda: wl.w2b("tanh", 3),
         "w3": lambda: wl.w3("gelu", 2), "w4": lambda: wl.w4(1),
         "perceptron": lambda: wl.perceptron("sigmoid", 20)}[make]()
    if make == "w4":
        w = dataclasses.replace(w, x=w.x[: 8 * w.batch], y=w.y[: 8 * w.batch])
    ours, peer = wl.run_microgradnet(w), wl.run_numpy(w)
    assert ours.steps == peer.steps == w.steps
    assert len(ours.snapshots) == len(peer.snapshots) == w.epochs
    for a, b in zip(ours.snapshots[-1], peer.snapshots[-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # the smoke run of every section
def test_readme_tables_render_every_record(smoke_run):
    """The README's tables come from the JSON: every timed row appears, with its number."""
    tables = _load("readme_tables")
    _, out, data = smoke_run
    text = tables.render(data)
    assert text.startswith(data["machine"]["date"][:10])
    lines = text.splitlines()
    for r in data["results"]:
        if r["section"] == "activations" and r["backend"] == "cython":
            ns = r["median_s"] / r["size"] * 1e9
            row = next(line for line in lines if line.startswith(f"| {r['activation']} |"))
            assert row.split(" | ")[1] == tables._num(ns, 2), row
        if r["section"] == "peers" and r["backend"] == "cython":
            row = next(line for line in lines if line.startswith(f"| {r['name']} | {r['steps']:,}"))
            assert row.split(" | ")[2] == tables._num(r["us_per_step"]), row
    for section in {r["section"] for r in data["results"]} - {"kernels", "gemm"}:
        assert f"<!-- {section} -->" in text, section
    # Every table row has as many cells as its head.
    head = None
    for line in lines:
        if not line.startswith("|"):
            head = None
        elif head is None:
            head = line.count(" | ")
        else:
            assert line.count(" | ") == head, line
    assert tables.main([str(out)]) == 0


@pytest.mark.parametrize("value, text", [(None, ""), (0.0312, "0.0312"), (1.234, "1.23"),
                                         (12.34, "12.3"), (123.4, "123"), (3041.4, "3,041")])
def test_readme_number_format(value, text):
    assert _load("readme_tables")._num(value) == text


@pytest.mark.slow  # the smoke run of every section
def test_sweep_section_engines_agree_to_the_bit(smoke_run):
    _, _, data = smoke_run
    records = [r for r in data["results"] if r["section"] == "sweep"]
    hows = {r["how"] for r in records}
    assert {"loop of fit", "sweep serial", "sweep serial batched", "sweep 2 workers",
            "sweep 2 workers batched", "serial"} <= hows
    assert {r["sweep"] for r in records} == {"S1", "S2", "W1 many"}
    for r in records:
        assert r["us_per_net_step"] > 0 and r["nets"] > 0 and r["steps"] > 0
        if r["framework"] == "microgradnet" and r["sweep"] != "W1 many":
            assert r["same_bits"] is True, r["name"]
        if r["sweep"] == "W1 many":
            assert 0 <= r["outside_share"] < 1


@pytest.mark.slow  # imports the peers (seconds)
def test_eager_section_smoke(tmp_path, capsys):
    """The eager section alone (seconds): seed 002's loop in every framework agrees with the
    numpy by hand loop, every op has numpy's own op beside it, and the report prints."""
    run = _load("run")
    out = tmp_path / "eager.json"
    assert run.main(["--smoke", "--only", "eager", "--out", str(out)]) == 0
    records = json.loads(out.read_text())["results"]
    assert {r["section"] for r in records} == {"eager"}
    for r in records:
        assert not RECORD_KEYS - set(r), r
        assert r["median_s"] > 0 and r["threads"] == 1
    loop = {r["backend"]: r for r in records if r["name"] == "seed-002 loop"}
    assert {"numpy", "microgradnet"} <= set(loop)
    for backend, r in loop.items():  # the same weights after the same steps
        assert r["max_abs_diff_w"] < (1e-5 if backend == "jax" else 1e-12), r
    ops = {(r["name"], r["backend"]) for r in records if r["name"] != "seed-002 loop"}
    for name in ("add", "relu", "matmul", run._EXPRESSION):
        assert {(name, "cython"), (name, "numpy")} <= ops, name
    assert (tmp_path / "eager-eager.png").exists()
    printed = capsys.readouterr().out
    assert "== eager" in printed and "seed-002 loop" in printed
