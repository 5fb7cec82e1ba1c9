"""mg.grid and mg.sweep: grids, records, files, resume, faults, executors (same bits)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.layers import Dense
from microgradnet.sweep import Grid, SweepInterrupted, config_id

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 2)).astype(np.float32)
Y = (X[:, :1] * X[:, 1:] > 0).astype(np.float32)
FIT = {"epochs": 3, "batch_size": 16, "progress": False}


def build(config: dict):
    """A 2-4-1 classifier (or regressor: loss "mse"); the config picks the activation and
    the learning rate."""
    loss = config.get("loss", "binary_crossentropy")
    model = mg.Sequential([Dense(4, activation=config.get("activation", "tanh"), input_dim=2),
                           Dense(1, activation="sigmoid" if loss != "mse" else None)])
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=config.get("lr", 0.1)),
                  loss=loss, metrics=["accuracy"])
    return model


def solo(config: dict, epochs: int = 3, batch_size: int = 16) -> np.ndarray:
    """One run as a user writes it by hand: the batch losses of its fit."""
    mg.set_random_seed(config.get("seed", 0))
    history = build(config).fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0)
    return np.asarray(history.batch_history["loss"])


def same_runs(a, b) -> None:
    assert [r.config for r in a] == [r.config for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.status == rb.status == "ok", (ra.config, ra.error, rb.error)
        assert ra.batch_losses.tobytes() == rb.batch_losses.tobytes(), ra.config
        for wa, wb in zip(ra.weights, rb.weights, strict=True):
            assert wa.tobytes() == wb.tobytes(), ra.config


# --------------------------------------------------------------------------- grids


def test_grid_product_order_len_repr():
    g = mg.grid(activation=["relu", "tanh"], seed=range(3))
    assert len(g) == 6
    assert list(g) == [{"activation": a, "seed": s} for a in ("relu", "tanh") for s in range(3)]
    assert g[4] == {"activation": "tanh", "seed": 1}
    assert repr(g) == "Grid(6 configs: activation=['relu', 'tanh'] x seed=[0, 1, 2])"
    assert list(g) == list(mg.grid(activation=["relu", "tanh"], seed=range(3)))  # fixed order


def test_grid_lists_sums_products_and_dict_axes():
    listed = mg.grid([{"lr": 0.1}, {"lr": 0.01, "momentum": 0.9}])
    assert list(listed) == [{"lr": 0.1}, {"lr": 0.01, "momentum": 0.9}]
    assert "2 configs" in repr(listed)
    both = mg.grid([{"lr": 0.1}, {"lr": 0.01}], seed=[0, 1])
    assert list(both) == [{"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 1},
                          {"lr": 0.01, "seed": 0}, {"lr": 0.01, "seed": 1}]
    total = mg.grid(a=[1, 2]) + mg.grid([{"b": 3}])
    assert list(total) == [{"a": 1}, {"a": 2}, {"b": 3}]
    assert list(mg.grid(a=[1, 2]) * mg.grid(b=["x"])) == [{"a": 1, "b": "x"},
                                                         {"a": 2, "b": "x"}]
    arch = mg.grid(arch=[{"units": 60, "depth": 1}, {"units": 10, "depth": 2}],
                   optimizer=["sgd", "adam"])
    assert arch[1] == {"units": 60, "depth": 1, "optimizer": "adam"}
    assert len(arch) == 4
    # One value (a str, a number) is a fixed key; numpy scalars become Python's.
    fixed = mg.grid(activation="relu", seed=np.arange(2))
    assert list(fixed) == [{"activation": "relu", "seed": 0}, {"activation": "relu", "seed": 1}]
    assert type(fixed[1]["seed"]) is int
    assert len(mg.grid(seed=[])) == 0


def test_grid_bad_input():
    with pytest.raises(ValueError, match="give axes"):
        mg.grid()
    with pytest.raises(TypeError, match="key 'act'.*put a name in the grid"):
        mg.grid(act=[mg.relu])
    with pytest.raises(TypeError, match="dicts or lists of dicts"):
        mg.grid(3)
    with pytest.raises(TypeError, match="must be a dict"):
        mg.grid([{"a": 1}, 2])


def test_config_id_is_stable_and_order_free():
    assert config_id({"a": 1, "b": "x"}) == config_id({"b": "x", "a": 1})
    assert config_id({"a": 1}) != config_id({"a": 1.5})
    canonical = b'{"activation":"relu","seed":3}'  # sorted keys, no spaces
    assert config_id({"seed": 3, "activation": "relu"}) == hashlib.sha256(
        canonical).hexdigest()[:16]


# --------------------------------------------------------------------------- records


def test_records_hold_the_run():
    g = mg.grid(activation=["relu", "tanh"], seed=[0, 1])
    r = mg.sweep(build, g, X, Y, target={"loss": 10.0, "accuracy": 0.0}, keep_weights=True,
                 validation_data=(X, Y), **FIT)
    assert len(r) == 4 and isinstance(r, mg.SweepResults)
    run = r[2]
    assert run.config == {"activation": "tanh", "seed": 0} and run.index == 2
    assert run.status == "ok" and run.error is None and run.engine == "fit"
    assert run.steps == 12 and run.batch_losses.shape == (12,)
    assert run.epoch_ends == [4, 8, 12]
    assert set(run.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert run.loss == run.history["loss"][-1] == run["loss"]
    assert run.metrics["val_accuracy"] == run.history["val_accuracy"][-1]
    # The loss (per batch) after step 1, the accuracy (per epoch) after the first epoch.
    assert run.steps_to_target == 4 and 0 < run.seconds_to_target <= run.fit_time
    assert run.dead_units == {"layer_0": 0.0}
    assert 0 < run.fit_time <= run.wall_time
    assert [w.shape for w in run.weights] == [(2, 4), (4,), (4, 1), (1,)]
    assert run.batch_losses.tobytes() == solo(run.config).tobytes()
    unreachable = mg.sweep(build, g[:1], X, Y, target={"loss": -1.0}, **FIT)[0]
    assert unreachable.steps_to_target is None and unreachable.seconds_to_target is None


def test_config_sets_fit_arguments_and_dead_units_counted():
    def dead(config):
        model = mg.Sequential([Dense(4, activation="relu", input_dim=2,
                                     bias_initializer=mg.initializers.Constant(-100.0)),
                               Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        return model

    r = mg.sweep(dead, mg.grid(batch_size=[16, 64]), X, Y, epochs=2, progress=False)
    assert [run.steps for run in r] == [8, 2]
    assert all(run.dead_units == {"layer_0": 1.0} for run in r)


def test_results_table_filter_best_pandas():
    r = mg.sweep(build, mg.grid(activation=["relu", "tanh"], lr=[0.1, 0.5]), X, Y, **FIT)
    text = repr(r)
    assert text.startswith("SweepResults(4 runs: 4 ok)")
    assert "activation" in text and "accuracy" in text and "tanh" in text
    assert len(r.filter(activation="relu")) == 2
    assert len(r.filter(lambda run: run["lr"] > 0.2, status="ok")) == 2
    best = r.best("loss")
    assert best.loss == min(run.loss for run in r)
    assert r.best("accuracy").metrics["accuracy"] == max(run["accuracy"] for run in r)
    assert r.best("accuracy", mode="min")["accuracy"] == min(run["accuracy"] for run in r)
    with pytest.raises(ValueError, match="no finished run has a value of 'f1'"):
        r.best("f1")
    df = r.to_pandas()
    assert list(df["activation"]) == ["relu", "relu", "tanh", "tanh"]
    assert {"status", "loss", "accuracy", "wall_time", "dead_layer_0"} <= set(df.columns)


def test_to_pandas_without_pandas(monkeypatch):
    r = mg.sweep(build, mg.grid(seed=[0]), X, Y, **FIT)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        r.to_pandas()


def test_progress_bar_over_runs(capsys):
    mg.sweep(build, mg.grid(seed=range(3)), X, Y, epochs=1, batch_size=16)
    out = capsys.readouterr().out
    assert "3/3" in out


def test_the_callers_random_streams_are_left_alone():
    mg.manual_seed(123)
    np.random.seed(5)  # noqa: NPY002
    expect_mg = np.random.default_rng(123).random()
    expect_np = np.random.RandomState(5).random_sample()
    mg.sweep(build, mg.grid(seed=[7, 8]), X, Y, **FIT)
    assert mg.random.generator().random() == expect_mg
    assert np.random.random_sample() == expect_np  # noqa: NPY002


# --------------------------------------------------------------------------- same bits


def test_a_run_depends_only_on_its_config():
    g = mg.grid(activation=["relu", "tanh"], seed=[0, 3])
    r = mg.sweep(build, g, X, Y, keep_weights=True, **FIT)
    other = mg.grid([{"activation": "tanh", "seed": 3}, {"activation": "relu", "seed": 9}])
    r2 = mg.sweep(build, other, X, Y, keep_weights=True, batched=False, task_size=1, **FIT)
    same_runs([r[3]], [r2[0]])
    for run in r:
        assert run.batch_losses.tobytes() == solo(run.config).tobytes()


def build_plain(config: dict):
    """build's model without metrics, which fit computes in Python: the batched engine's."""
    model = build(config)
    model.compile(optimizer=mg.optimizers.SGD(learning_rate=config.get("lr", 0.1),
                                              momentum=config.get("momentum", 0.0)),
                  loss="binary_crossentropy")
    return model


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_batched_runs_keep_the_bits_of_their_own_fit(n_jobs):
    g = mg.grid(activation=["relu", "tanh"], lr=[0.05, 0.2], momentum=[0.0, 0.9],
                seed=[0, 1])
    fits = mg.sweep(build_plain, g, X, Y, keep_weights=True, batched=False, **FIT)
    many = mg.sweep(build_plain, g, X, Y, keep_weights=True, n_jobs=n_jobs, **FIT)
    assert {r.engine for r in fits} == {"fit"}
    assert {r.engine for r in many} == {"batched"}
    same_runs(fits, many)
    # Another grouping (one task per activation and momentum) gives each run the same bits.
    alone = mg.sweep(build_plain, g[5:7], X, Y, keep_weights=True, **FIT)
    same_runs(fits[5:7], alone)


def test_serial_equals_loky_processes(tmp_path):
    g = mg.grid(activation=["relu", "tanh"], seed=range(3))
    serial = mg.sweep(build, g, X, Y, keep_weights=True, **FIT)
    procs = mg.sweep(build, g, X, Y, keep_weights=True, n_jobs=2, backend="loky", **FIT)
    same_runs(serial, procs)
    assert procs.info["n_jobs"] == 2


def test_joblib_parallel_config_is_honoured_with_the_same_bits():
    joblib = pytest.importorskip("joblib")
    g = mg.grid(activation=["relu", "tanh"], seed=range(8))  # runs enough to overlap
    serial = mg.sweep(build, g, X, Y, keep_weights=True, **FIT)
    with joblib.parallel_config(backend="threading"):
        threads = mg.sweep(build, g, X, Y, keep_weights=True, n_jobs=2, task_size=1, **FIT)
    same_runs(serial, threads)


def _report_threads(config):
    from threadpoolctl import threadpool_info

    path = Path(config["dir"]) / f"{os.getpid()}-{config['seed']}.json"
    path.write_text(json.dumps({"mg": mg.get_num_threads(),
                                "pools": [p["num_threads"] for p in threadpool_info()]}))
    return build(config)


def test_workers_pin_their_threads(tmp_path):
    g = mg.grid(dir=str(tmp_path), seed=range(4))
    r = mg.sweep(_report_threads, g, X, Y, n_jobs=2, **FIT)
    assert r.counts()["ok"] == 4
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(seen) == 4
    assert all(s["mg"] == 1 and all(n == 1 for n in s["pools"]) for s in seen)


def test_a_serial_sweep_runs_blas_on_one_thread_and_gives_the_pools_back(tmp_path):
    # In the caller's own process: BLAS and OpenMP on one thread while the runs train and
    # are checked, our kernels' setting left alone, and every pool as it was afterwards.
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2):
        before = [p["num_threads"] for p in threadpool_info()]
        threads_before = mg.get_num_threads()
        r = mg.sweep(_report_threads, mg.grid(dir=str(tmp_path), seed=range(2)), X, Y, **FIT)
        after = [p["num_threads"] for p in threadpool_info()]
    assert r.counts()["ok"] == 2
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(seen) == 2
    assert all(all(n == 1 for n in s["pools"]) and s["mg"] == threads_before for s in seen)
    assert before == after and any(n == 2 for n in before)


def _dies_once(config):
    marker = Path(config["dir"]) / "died"
    if config["seed"] == 2 and not marker.exists():
        marker.write_text("x")
        os._exit(3)  # the worker process dies mid-sweep, as if killed
    return build(config)


def _always_dies(config):
    if config["seed"] == 1:
        os._exit(4)
    return build(config)


def test_a_killed_loky_worker_loses_nothing(tmp_path):
    g = mg.grid(dir=str(tmp_path), seed=range(6))
    r = mg.sweep(_dies_once, g, X, Y, n_jobs=2, keep_weights=True, task_size=2, **FIT)
    assert (tmp_path / "died").exists()
    assert r.counts() == {"ok": 6, "diverged": 0, "error": 0}
    same_runs(r, mg.sweep(build, g, X, Y, keep_weights=True, **FIT))


@pytest.mark.slow  # four worker deaths and restarts
def test_a_run_that_always_kills_its_worker_is_an_error(tmp_path):
    g = mg.grid(seed=range(3))
    r = mg.sweep(_always_dies, g, X, Y, n_jobs=2, **FIT)
    assert [run.status for run in r] == ["ok", "error", "ok"]
    assert r[1].error["type"] == "TerminatedWorkerError"
    assert "died 2 times" in r[1].error["message"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own notices about ports and memory
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_serial_equals_dask(dask_client):
    g = mg.grid(activation=["relu", "tanh"], seed=range(3))
    serial = mg.sweep(build, g, X, Y, keep_weights=True, **FIT)
    on_dask = mg.sweep(build, g, X, Y, keep_weights=True, backend="dask", client=dask_client,
                       **FIT)
    same_runs(serial, on_dask)
    # The current client is found without being passed; sweeps one right after another on the
    # same data each scatter it anew (hashed keys made them race the last one's release).
    for _ in range(4):
        again = mg.sweep(build, g[:2], X, Y, keep_weights=True, backend="dask", **FIT)
        same_runs(serial[:2], again)


def test_a_killed_dask_worker_loses_nothing(dask_client, tmp_path):
    g = mg.grid(dir=str(tmp_path), seed=range(4))
    r = mg.sweep(_dies_once, g, X, Y, backend="dask", client=dask_client, keep_weights=True,
                 task_size=1, **FIT)
    assert (tmp_path / "died").exists()
    assert r.counts() == {"ok": 4, "diverged": 0, "error": 0}
    same_runs(r, mg.sweep(build, g, X, Y, keep_weights=True, **FIT))


def test_dask_without_a_client_says_so(monkeypatch):
    distributed = pytest.importorskip("distributed")

    def no_client():  # as distributed.get_client when no client was started
        raise ValueError("No global client found and no address provided")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match="needs a distributed.Client"):
        mg.sweep(build, mg.grid(seed=[0]), X, Y, backend="dask", **FIT)


# --------------------------------------------------------------------------- faults


def test_failures_are_recorded_and_the_sweep_goes_on():
    def flaky(config):
        if config["case"] == "raises":
            raise RuntimeError("no such layer")
        if config["case"] == "not a model":
            return "a string"
        if config["case"] == "uncompiled":
            return mg.Sequential([Dense(1, input_dim=2)])
        return build(config)

    g = mg.grid([{"case": "ok"}, {"case": "raises"}, {"case": "not a model"},
                 {"case": "uncompiled"}, {"case": "diverges", "lr": 1e3, "loss": "mse"},
                 {"case": "bad batch", "batch_size": 0}, {"case": "ok", "seed": 1}])
    r = mg.sweep(flaky, g, X, Y, **FIT)
    assert [run.status for run in r] == ["ok", "error", "error", "error", "diverged", "error",
                                         "ok"]
    assert r[1].error["type"] == "RuntimeError" and r[1].error["message"] == "no such layer"
    assert "flaky" in r[1].error["traceback"]
    assert r[2].error["type"] == "TypeError" and "compiled microgradnet model" in \
        r[2].error["message"]
    assert "not compiled" in r[3].error["message"]
    assert not np.all(np.isfinite(r[4].batch_losses)) and r[4].error is None
    assert r[5].error["type"] == "ValueError" and "batch_size" in r[5].error["message"]
    assert r.counts() == {"ok": 2, "diverged": 1, "error": 4}
    with pytest.raises(ValueError, match="no finished run"):
        r.filter(status="error").best()


def test_bad_arguments_are_named():
    g = mg.grid(seed=[0])
    with pytest.raises(ValueError, match="grid is empty"):
        mg.sweep(build, mg.grid(seed=[]), X, Y, **FIT)
    with pytest.raises(ValueError, match="grid is empty"):
        mg.sweep(build, [], X, Y, **FIT)
    with pytest.raises(ValueError, match="n_jobs must be a non-zero int"):
        mg.sweep(build, g, X, Y, n_jobs=0, **FIT)
    with pytest.raises(ValueError, match="unknown backend 'ray'"):
        mg.sweep(build, g, X, Y, backend="ray", **FIT)
    with pytest.raises(TypeError, match="build must be a function"):
        mg.sweep("model", g, X, Y, **FIT)
    with pytest.raises(ValueError, match="appears twice"):
        mg.sweep(build, mg.grid(seed=[1, 1]), X, Y, **FIT)
    with pytest.raises(TypeError, match="target must be a dict"):
        mg.sweep(build, g, X, Y, target=0.05, **FIT)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        mg.sweep(build, g, X, Y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="x .* is required"):
        mg.sweep(build, g, None, Y, **FIT)
    with pytest.raises(TypeError, match="the grid must be"):
        mg.sweep(build, {"seed": 0}, X, Y, **FIT)


def test_processes_without_joblib_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib", None)
    with pytest.raises(ImportError, match=r"microgradnet\[sweep\]"):
        mg.sweep(build, mg.grid(seed=[0, 1]), X, Y, n_jobs=2, **FIT)


# --------------------------------------------------------------------------- files


def test_save_load_round_trip_without_pickle(tmp_path):
    g = mg.grid([{"seed": 0}, {"seed": 1, "lr": 1e3, "loss": "mse"},
                 {"seed": 2, "activation": "nope"}])
    r = mg.sweep(build, g, X, Y, keep_weights=True, target={"loss": 10.0}, **FIT)
    assert [run.status for run in r] == ["ok", "diverged", "error"]
    r.save(tmp_path / "res")
    back = mg.sweep.load(tmp_path / "res")
    assert len(back) == 3 and back.build is None
    for a, b in zip(r, back, strict=True):
        assert json.dumps(a.to_json()) == json.dumps(b.to_json())  # NaN != NaN: as text
        assert a.batch_losses.tobytes() == b.batch_losses.tobytes()
        assert (a.weights is None) == (b.weights is None)
        for wa, wb in zip(a.weights or (), b.weights or (), strict=True):
            assert wa.dtype == wb.dtype and wa.tobytes() == wb.tobytes()
    assert np.array_equal(back.x, X) and np.array_equal(back.y, Y)
    for f in (tmp_path / "res" / "arrays").iterdir():  # plain arrays: no pickled objects
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    with pytest.raises(FileExistsError):
        r.save(tmp_path)  # not a results directory: never wiped
    assert mg.sweep.load(tmp_path / "res", build=build).build is build
    with pytest.raises(FileNotFoundError, match="no sweep results"):
        mg.sweep.load(tmp_path / "missing")


def test_results_path_appends_and_a_rerun_skips_finished_runs(tmp_path):
    calls = []

    def counted(config):
        calls.append(config["seed"])
        return build(config)

    path = tmp_path / "runs"
    first = mg.sweep(counted, mg.grid(seed=range(3)), X, Y, results_path=path, **FIT)
    assert calls == [0, 1, 2]
    lines = (path / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["config"]["seed"] for line in lines] == [0, 1, 2]
    calls.clear()
    second = mg.sweep(counted, mg.grid(seed=range(5)), X, Y, results_path=path, **FIT)
    assert calls == [3, 4]
    assert [run.config["seed"] for run in second] == [0, 1, 2, 3, 4]
    assert second[1].batch_losses.tobytes() == first[1].batch_losses.tobytes()
    # A crash while writing leaves a torn last line: ignored on reading, the run redone.
    log = path / "runs.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]) + lines[-1][:25])
    assert [run.config["seed"] for run in mg.sweep.load(path)] == [0, 1, 2, 3]
    calls.clear()
    third = mg.sweep(counted, mg.grid(seed=range(5)), X, Y, results_path=path, **FIT)
    assert calls == [4] and len(third) == 5
    assert [run.config["seed"] for run in mg.sweep.load(path)] == [0, 1, 2, 3, 4]


def test_rerun_errors_on_request(tmp_path):
    fail = {"on": True}

    def sometimes(config):
        if fail["on"] and config["seed"] == 1:
            raise RuntimeError("flaky")
        return build(config)

    path = tmp_path / "runs"
    g = mg.grid(seed=range(2))
    assert mg.sweep(sometimes, g, X, Y, results_path=path, **FIT)[1].status == "error"
    fail["on"] = False
    assert mg.sweep(sometimes, g, X, Y, results_path=path, **FIT)[1].status == "error"
    assert mg.sweep(sometimes, g, X, Y, results_path=path, rerun_errors=True,
                    **FIT)[1].status == "ok"
    assert [run.status for run in mg.sweep.load(path)] == ["ok", "ok"]


def test_a_rerun_with_other_data_or_fit_arguments_refuses_the_path(tmp_path):
    path = tmp_path / "runs"
    g = mg.grid(seed=range(2))
    first = mg.sweep(build, g, X, Y, results_path=path, **FIT)
    # The same data elsewhere in memory (Fortran order) is the same sweep: runs reused.
    again = mg.sweep(build, g, np.asfortranarray(X), Y.copy(), results_path=path, **FIT)
    assert again[1].batch_losses.tobytes() == first[1].batch_losses.tobytes()
    changes = [({"epochs": 5}, "fit epochs was 3, now 5"), ({"batch_size": 8}, "batch_size"),
               ({"x": X * 2}, "x was"), ({"y": 1 - Y}, "y was"),
               ({"target": {"loss": 0.5}}, "target was"), ({"shuffle": False}, "shuffle")]
    for change, named in changes:
        args = {"x": X, "y": Y, **FIT, **change}
        with pytest.raises(ValueError, match=f"different sweep.*{named}"):
            mg.sweep(build, g, args.pop("x"), args.pop("y"), results_path=path, **args)
    assert [run.batch_losses.tobytes() for run in mg.sweep.load(path)] == [
        run.batch_losses.tobytes() for run in first]  # nothing written by the refusals


def test_a_rerun_that_keeps_weights_retrains_runs_saved_without(tmp_path):
    path = tmp_path / "runs"
    g = mg.grid(seed=range(2))
    mg.sweep(build, g, X, Y, results_path=path, **FIT)
    kept = mg.sweep(build, g, X, Y, results_path=path, keep_weights=True, **FIT)
    assert all(run.weights is not None for run in kept)
    assert all(run.weights is not None for run in mg.sweep.load(path))


@pytest.mark.parametrize("batched", [True, False])
def test_a_build_that_hands_out_a_model_or_layer_again_is_an_error(batched):
    # Each run must start from its own build: a cached model (or a shared layer) would go
    # on training from another run's weights, a result that depends on the other runs.
    cached = build({})
    shared = Dense(4, activation="tanh", input_dim=2)

    def with_shared_layer(config):
        model = mg.Sequential([shared, Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        return model

    for bad in (lambda config: cached, with_shared_layer):
        r = mg.sweep(bad, mg.grid(seed=range(3)), X, Y, batched=batched, **FIT)
        assert [run.status for run in r] == ["ok", "error", "error"]
        assert "{'seed': 0}" in r[1].error["message"]
        assert "new model" in r[2].error["message"]
    first = mg.sweep(build, mg.grid(seed=range(2)), X, Y, batched=batched, **FIT)
    assert first.counts()["ok"] == 2  # a build of new models each time is fine, again
    assert mg.sweep(build, mg.grid(seed=range(2)), X, Y, batched=batched, **FIT).counts() == \
        first.counts()


def test_results_paths_that_are_not_a_sweeps_get_clear_errors(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(NotADirectoryError, match="is a file"):
        mg.sweep(build, mg.grid(seed=[0]), X, Y, results_path=tmp_path / "file", **FIT)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a sweep's results directory"):
        mg.sweep(build, mg.grid(seed=[0]), X, Y, results_path=tmp_path / "home", **FIT)
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()  # an empty directory is fine
    mg.sweep(build, mg.grid(seed=[0]), X, Y, results_path=tmp_path / "empty", **FIT)
    path = tmp_path / "runs"
    mg.sweep(build, mg.grid(seed=[0, 1]), X, Y, results_path=path, **FIT)
    log = path / "runs.jsonl"
    good = log.read_text()
    first = json.loads(good.splitlines()[0])
    for line, named in (("[1, 2]", "line 3 is not a run's record"),
                        ('{"config_id": "../../x"}', "line 3 is not a run's record"),
                        (json.dumps({**first, "config_id": "0" * 16}), "arrays .* missing"),
                        (json.dumps({**first, "n_weights": 2}), "does not match its arrays")):
        log.write_text(good + line + "\n")
        for read in (lambda: mg.sweep.load(path),
                     lambda: mg.sweep(build, mg.grid(seed=[0, 1]), X, Y, results_path=path,
                                      **FIT)):
            with pytest.raises(ValueError, match=named):
                read()


def test_ctrl_c_keeps_what_finished(tmp_path):
    def interrupted(config):
        if config["seed"] == 2:
            raise KeyboardInterrupt
        return build(config)

    class CtrlC(mg.callbacks.Callback):  # pressed during the fourth run's fit
        def on_train_begin(self, logs=None):
            if self.model.config_seed == 3:
                raise KeyboardInterrupt

    def interrupted_in_fit(config):
        model = build(config)
        model.config_seed = config["seed"]
        return model

    path = tmp_path / "runs"
    with pytest.raises(SweepInterrupted) as caught:  # tasks of one run: build, then fit
        mg.sweep(interrupted, mg.grid(seed=range(4)), X, Y, results_path=path, task_size=1,
                 **FIT)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert [run.config["seed"] for run in caught.value.results] == [0, 1]
    assert [run.config["seed"] for run in mg.sweep.load(path)] == [0, 1]
    # One task of several runs, interrupted in fit: the runs trained before it are kept.
    path = tmp_path / "runs2"
    with pytest.raises(SweepInterrupted) as caught:
        mg.sweep(interrupted_in_fit, mg.grid(seed=range(5)), X, Y, results_path=path,
                 callbacks=[CtrlC()], **FIT)
    assert [run.config["seed"] for run in caught.value.results] == [0, 1, 2]
    assert [run.status for run in mg.sweep.load(path)] == ["ok"] * 3


def test_module_is_callable_and_exported():
    assert mg.sweep.sweep is not None and callable(mg.sweep)
    assert mg.grid is mg.sweep.grid and isinstance(mg.grid(a=[1]), Grid)
    assert mg.SweepResults is mg.sweep.SweepResults
