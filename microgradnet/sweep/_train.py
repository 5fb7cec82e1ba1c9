"""Training a sweep's runs: one task (several runs) in whatever process runs it.

A run is seeded from its config alone (`seed`, default 0): `mg.set_random_seed(seed)`, then
`build(config)`, then `fit` drawing its shuffles from the same generator, continued. So its
result does not depend on the process, the task or the other runs. `train_group` is the one
place that trains built models, batched (fastpath.fit_many) where it can.
"""

from __future__ import annotations

import contextlib
import math
import random as _py_random
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import random as mgrandom
from ..callbacks import History
from ..fastpath import batch_key, fit_many
from ..models import Sequential
from ._results import Run

__all__ = ["Task", "run_task", "train_group"]

# fit arguments that a config may set for its own run (seeds 000/001 sweep the batch size).
FIT_KEYS = ("epochs", "batch_size", "shuffle")
_RUN_LOCK = threading.Lock()
_DEAD_SAMPLES = 2048  # rows of x the dead-unit check runs on (as DeadUnitMonitor)
# The layers of every model a run trained in this process -> that run's config: a build
# that hands out a model (or a layer) again would train it on from another run's weights.
_TRAINED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Task:
    """Runs to train together in one process, and what they share."""

    build: Callable[[dict], Any]
    x: Any
    y: Any
    runs: list[tuple[int, dict, str]]  # (index in the grid, config, config id)
    fit_kwargs: dict
    target: dict | None = None
    keep_weights: bool = False
    batched: bool = True
    pin_threads: bool = False  # in a worker: our kernels on one thread too (see _threads_pinned)


def run_fit_kwargs(fit_kwargs: dict, config: dict) -> dict:
    """The fit arguments of one run: the sweep's, with the config's FIT_KEYS over them."""
    return {**fit_kwargs, **{k: config[k] for k in FIT_KEYS if k in config}}


def train_group(models: Sequence[Any], gens: Sequence[np.random.Generator], x: Any, y: Any,
                fit_kwargs: dict, batched: bool,
                done: Callable[[int, Any, float, str], None] | None = None) -> str:
    """Train models that share `fit_kwargs`; model i draws from generator `gens[i]` (seeded
    from its config, continued from its build). As each model finishes, call
    done(i, its History or the exception its fit raised, seconds in fit, engine); return
    the engines that trained them: "batched" (fastpath.fit_many, when `batched` and several
    models share a batch_key), "fit" (one model.fit after another), or both joined by "+"."""
    engines = set()
    alone = list(range(len(models)))
    if batched and len(models) > 1:
        # Runs of one batch_key train together in one call into C (fastpath.fit_many), each
        # drawing from its own generator: the bits of its own fit (tests/test_batched.py).
        groups: dict[Any, list[int]] = {}
        for i, model in enumerate(models):
            try:
                key = batch_key(model, x, y, fit_kwargs)
            except Exception:  # fit raises it again below, and records it with the run
                key = None
            groups.setdefault(key, []).append(i)
        alone = groups.pop(None, [])
        for members in groups.values():
            if len(members) == 1:
                alone += members
                continue
            start = time.perf_counter()
            try:
                histories = fit_many([models[i] for i in members], x, y,
                                     generators=[gens[i] for i in members], verbose=0,
                                     **fit_kwargs)
            except Exception:  # refused before any step: each fit says why, for its run
                alone += members
                continue
            share = (time.perf_counter() - start) / len(members)
            engines.add("batched")
            if done is not None:
                for i, history in zip(members, histories, strict=True):
                    done(i, history, share, "batched")
    for i in sorted(alone):
        start = time.perf_counter()
        try:
            with mgrandom.using_generator(gens[i]):
                outcome: Any = models[i].fit(x, y, verbose=0, **fit_kwargs)
        except Exception as e:  # recorded with the run; the sweep goes on
            outcome = e
        engines.add("fit")
        if done is not None:
            done(i, outcome, time.perf_counter() - start, "fit")
    return "+".join(sorted(engines)) or "fit"


def _error(e: BaseException) -> dict:
    return {"type": type(e).__name__, "message": str(e),
            "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))}


def _target_reached(history: History, batch_losses: np.ndarray, target: dict) -> int | None:
    """The first step after which every metric of `target` is reached: a loss (or error)
    at or below its value, by the batch losses for "loss", else by the epoch logs; any
    other metric (accuracy) at or above it. None if it never was."""
    step = 0
    for name, goal in target.items():
        lower = any(w in name for w in ("loss", "error", "mse", "mae"))
        if name == "loss" and len(batch_losses):
            hits = np.flatnonzero(batch_losses <= goal)
            if not len(hits):
                return None
            step = max(step, int(hits[0]) + 1)
            continue
        values = history.history.get(name)
        if values is None:
            raise ValueError(f"target: the runs log no {name!r} (they log "
                             f"{sorted(history.history)}); add it to compile's metrics")
        hit = next((i for i, v in enumerate(values) if (v <= goal if lower else v >= goal)),
                   None)
        if hit is None:
            return None
        step = max(step, history.epoch_ends[hit] if hit < len(history.epoch_ends) else 0)
    return step


def dead_units(model: Any, x: Any) -> dict[str, float]:
    """Per hidden layer with an activation ("layer_<i>", i its index in model.layers: names
    differ from process to process), the fraction of its units that output zero for every
    one of (up to 2048 of) the samples `x` (dead ReLUs: they get no gradient)."""
    from ..autograd import Tensor, no_grad

    out: dict[str, float] = {}
    hidden = [i for i, layer in enumerate(model.layers[:-1])
              if layer.output_activation() not in (None, "linear")]
    if not hidden:
        return out  # no hidden activation (a single neuron): no forward pass needed
    h = Tensor(np.asarray(x)[:_DEAD_SAMPLES])
    with no_grad():
        for i, layer in enumerate(model.layers[:hidden[-1] + 1]):
            h = layer(h)
            if layer.output_activation() in (None, "linear"):
                continue
            values = h.data.reshape(len(h.data), -1)
            out[f"layer_{i}"] = float(np.mean(np.all(values == 0, axis=0))) if len(values) else 0.0
    return out


def _finish(run: Run, model: Any, history: History, fit_time: float, x: Any,
            task: Task) -> None:
    """Fill a trained run's record from its History and model."""
    run.fit_time = fit_time
    # Copies of fit's lists as they are (floats; numpy scalars are stored as numbers too):
    # converting every element would cost a W1-sized run a tenth of its training time.
    run.history = {k: list(vs) for k, vs in history.history.items()}
    run.epoch_ends = list(history.epoch_ends)
    losses = getattr(history, "batch_losses", None)  # the batched engine's, as an array
    if losses is None:
        losses = history.batch_history.get("loss", [])
        losses = np.fromiter(losses, np.float64, len(losses))
    run.batch_losses = np.asarray(losses, dtype=np.float64)
    run.steps = len(run.batch_losses)
    run.metrics = {k: vs[-1] for k, vs in run.history.items() if vs}
    run.loss = run.metrics.get("loss")
    finite = bool(np.all(np.isfinite(run.batch_losses))) and all(
        math.isfinite(v) for v in run.metrics.values())
    run.status = "ok" if finite else "diverged"
    if task.target and finite:
        step = _target_reached(history, run.batch_losses, task.target)
        run.steps_to_target = step
        if step is not None and run.steps:
            # Training runs in C without a clock per step: the time is its share of the fit.
            run.seconds_to_target = fit_time * step / run.steps
    if finite:
        run.dead_units = dead_units(model, x)
    if task.keep_weights:
        run.weights = [np.array(w) for w in model.get_weights()]


def _threads_pinned(pin: bool) -> contextlib.AbstractContextManager:
    """One BLAS and OpenMP thread while a task runs; in a worker (`pin`), one thread for our
    kernels too. In the sweep's own process BLAS is limited only when threadpoolctl is there
    (the sweep extra): the checks after each fit (the dead-unit forward on up to 2,048 rows)
    are products big enough for BLAS to wake its pool, which for a small net's products
    costs more than it computes, and more still while other processes hold the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if pin:
            raise
        return contextlib.nullcontext()

    from ..backend import get_num_threads, set_num_threads

    stack = contextlib.ExitStack()
    stack.enter_context(threadpool_limits(1))  # BLAS and OpenMP
    if not pin:
        return stack
    before = get_num_threads()
    set_num_threads(1)  # our kernels, and no prefetch thread beside the training one
    stack.callback(set_num_threads, before)
    return stack


def run_task(task: Task, report: Callable[[list[Run]], None] | None = None) -> list[Run]:
    """Build, train and record every run of `task`; a run that fails is recorded with its
    error and the others go on. `report` (in the sweep's own process) gets each run as it
    finishes, so that an interrupted task keeps what finished."""
    # Seeding a run reseeds numpy's and Python's global streams (build may draw from them):
    # the caller's are put back after the task.
    # The generators are per process: tasks on threads (joblib's threading backend) take
    # turns, so that each run still draws from its own stream only.
    with _RUN_LOCK:
        np_state, py_state = np.random.get_state(), _py_random.getstate()  # noqa: NPY002
        try:
            with _threads_pinned(task.pin_threads):
                return _run_task(task, report or (lambda runs: None))
        finally:
            np.random.set_state(np_state)  # noqa: NPY002
            _py_random.setstate(py_state)


def _run_task(task: Task, report: Callable[[list[Run]], None]) -> list[Run]:
    x, y = task.x, task.y
    records: list[Run] = []
    built: list[tuple[Run, Any, np.random.Generator, float]] = []
    for index, config, cid in task.runs:
        start = time.perf_counter()
        run = Run(config=config, config_id=cid, status="error", index=index)
        records.append(run)
        try:
            gen = _seeded_generator(config)
            with mgrandom.using_generator(gen):
                model = task.build(dict(config))
            if not isinstance(model, Sequential):
                raise TypeError(f"build(config) must return a compiled microgradnet model "
                                f"(a Sequential), got {type(model).__name__} {model!r}")
            if model.optimizer is None or model.loss is None:
                raise ValueError("build(config) returned a model that is not compiled: call "
                                 "model.compile(optimizer=..., loss=...) before returning it")
            _claim(model, config)
        except Exception as e:
            run.error = _error(e)
            run.wall_time = time.perf_counter() - start
            report([run])
            continue
        built.append((run, model, gen, time.perf_counter() - start))
    # Runs whose fit arguments agree may train together (train_group's batched engine).
    groups: dict[str, list[int]] = {}
    for i, (run, *_rest) in enumerate(built):
        key = repr(sorted(run_fit_kwargs(task.fit_kwargs, run.config).items()))
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        items = [built[i] for i in members]

        def done(i: int, outcome: Any, fit_time: float, engine: str, items=items) -> None:
            run, model, _gen, build_time = items[i]
            start = time.perf_counter()
            run.engine = engine
            if isinstance(outcome, BaseException):
                run.error = _error(outcome)
                run.fit_time = fit_time
            else:
                try:
                    _finish(run, model, outcome, fit_time, x, task)
                except Exception as e:
                    run.status, run.error = "error", _error(e)
            run.wall_time = build_time + fit_time + time.perf_counter() - start
            report([run])

        train_group([m for _, m, _, _ in items], [g for _, _, g, _ in items], x, y,
                    run_fit_kwargs(task.fit_kwargs, items[0][0].config), task.batched, done)
    return records


def _claim(model: Any, config: dict) -> None:
    """Mark the model's layers as this run's, or raise if another run's model had one."""
    for layer in model.layers:
        other = _TRAINED.get(layer)
        if other is not None:
            raise ValueError(
                f"build(config) returned a model whose layer {layer.name!r} belongs to the "
                f"model of the run of config {other!r}: this run would train on from that "
                f"run's weights. build must make a new model, with new layers, on every call")
    for layer in model.layers:
        _TRAINED[layer] = config


def _seeded_generator(config: dict) -> np.random.Generator:
    """Seed Python's, numpy's global and microgradnet's generators from config["seed"]
    (default 0), as mg.set_random_seed, and return microgradnet's: the run's own stream."""
    seed = config.get("seed", 0)
    before = mgrandom._generator
    try:
        mgrandom.set_random_seed(seed)
        return mgrandom.generator()
    finally:
        mgrandom._generator = before
