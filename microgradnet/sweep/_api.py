"""`mg.sweep`: train a grid of configs, serially, on local processes (joblib) or on Dask."""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..callbacks import ProgbarLogger
from ._grid import Grid, config_id, grid
from ._results import Run, Store, SweepResults
from ._train import FIT_KEYS, Task, run_task

__all__ = ["SweepInterrupted", "sweep"]

BACKENDS = (None, "loky", "dask")
_TASKS_PER_WORKER = 4  # enough to balance uneven runs, few enough to amortize scheduling
_MAX_CRASHES = 2  # a run alone in a worker that dies this often is recorded as an error


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: `.results` holds the runs that finished (and results_path
    has them on disk)."""

    def __init__(self, results: SweepResults) -> None:
        super().__init__(f"sweep interrupted after {len(results)} finished runs")
        self.results = results


def _in_worker() -> bool:
    """Whether this is a worker process (loky, Dask's nanny-started workers)."""
    return multiprocessing.parent_process() is not None


def _worker_task(number: int, task: Task, x: Any = None, y: Any = None) -> tuple[int, list]:
    # Runs in a worker: pin its threads (one process per core), train, say which task it was.
    if x is not None:
        # Arrays that came over the network may sit at unaligned addresses, which fit
        # refuses: the same values, copied to aligned memory.
        x = np.require(x, requirements=["C", "A"])
        y = None if y is None else np.require(y, requirements=["C", "A"])
        task = replace(task, x=x, y=y)
    return number, run_task(replace(task, pin_threads=_in_worker()))


def _check_arguments(build: Any, configs: Any, x: Any, n_jobs: Any, backend: Any,
                     target: Any, epochs: Any, batch_size: Any) -> Grid:
    if not callable(build):
        raise TypeError(f"sweep: build must be a function of a config returning a compiled "
                        f"model, got {type(build).__name__} {build!r}")
    if not isinstance(configs, Grid):
        if isinstance(configs, Mapping) or not isinstance(configs, Iterable):
            raise TypeError(f"sweep: the grid must be mg.grid(...) or a list of config dicts, "
                            f"got {type(configs).__name__}")
        configs = grid(list(configs)) if configs else Grid([])
    if len(configs) == 0:
        raise ValueError("sweep: the grid is empty (an axis with no values?): nothing to run")
    ids: dict[str, int] = {}
    for i, c in enumerate(configs):
        j = ids.setdefault(config_id(c), i)
        if j != i:
            raise ValueError(f"sweep: config {c!r} appears twice in the grid (runs {j} and "
                             f"{i}); the same config gives the same run to the bit")
    if x is None:
        raise ValueError("sweep: x (the training inputs) is required")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"sweep: n_jobs must be a non-zero int (1: serial, -1: every core, "
                         f"n: n processes), got {n_jobs!r}")
    if backend not in BACKENDS:
        raise ValueError(f"sweep: unknown backend {backend!r}; known: None (serial when "
                         f"n_jobs=1, else joblib and its parallel_config), 'loky', 'dask'")
    if target is not None:
        if not isinstance(target, Mapping) or not target:
            raise TypeError(f"sweep: target must be a dict like {{'loss': 0.05}}, got "
                            f"{target!r}")
        for k, v in target.items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(
                    v, (int, float, np.number)):
                raise TypeError(f"sweep: target maps metric names to numbers, got {k!r}: "
                                f"{v!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"sweep: epochs must be a positive int, got {epochs!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"sweep: batch_size must be a positive int or None, got "
                         f"{batch_size!r}")
    return configs


def _group_key(config: dict, group_by: Iterable[str] | None) -> str:
    """Which runs go in the same tasks: those that agree on their fit arguments and on
    `group_by`'s keys (default: every key whose value is not a number, as an activation or
    an optimizer's name; numbers such as seeds and learning rates vary within a group)."""
    if group_by is None:
        keys = [k for k, v in config.items() if k in FIT_KEYS or isinstance(v, (str, bool))
                or not isinstance(v, (int, float))]
    else:
        keys = [k for k in config if k in FIT_KEYS or k in group_by]
    return repr(sorted((k, config[k]) for k in keys))


def _split(pending: list[tuple[int, dict, str]], group_by: Any, workers: int,
           task_size: int | None) -> list[list[tuple[int, dict, str]]]:
    """Tasks of runs: structure groups kept together, cut to a few tasks per worker."""
    groups: dict[str, list] = {}
    for entry in pending:
        groups.setdefault(_group_key(entry[1], group_by), []).append(entry)
    if task_size is None:
        task_size = (len(pending) if workers <= 1
                     else math.ceil(len(pending) / (workers * _TASKS_PER_WORKER)))
    size = max(1, task_size)
    return [members[i:i + size] for members in groups.values()
            for i in range(0, len(members), size)]


def _workers(n_jobs: int) -> int:
    if n_jobs > 0:
        return n_jobs
    return max(1, (os.cpu_count() or 1) + 1 + n_jobs)  # joblib's meaning of -1, -2, ...


def sweep(build: Callable[[dict], Any], configs: Grid | Iterable[Mapping[str, Any]], x: Any,
          y: Any = None, *, epochs: int = 1, batch_size: int | None = None,
          validation_data: Any = None, target: Mapping[str, float] | None = None,
          n_jobs: int = 1, backend: str | None = None, client: Any = None,
          batched: bool = True, keep_weights: bool = False,
          results_path: str | os.PathLike | None = None, rerun_errors: bool = False,
          progress: bool = True, group_by: Iterable[str] | None = None,
          task_size: int | None = None, **fit_kwargs: Any) -> SweepResults:
    """Train `build(config)` on (x, y) for every config of the grid; return the results.

    build(config) returns a compiled model (Keras Tuner's idiom); config["seed"] (default 0)
    seeds the run, so its result depends only on its config. Config keys named epochs,
    batch_size or shuffle set fit's for that run. n_jobs > 1 trains on joblib processes
    ("loky", or joblib's parallel_config when backend is None), backend="dask" on the
    current distributed.Client (or `client`). Failed and diverged runs are recorded; with
    results_path each run is saved as it finishes and a rerun skips the finished ones.
    """
    configs = _check_arguments(build, configs, x, n_jobs, backend, target, epochs, batch_size)
    if backend is None and n_jobs != 1 or backend == "loky":
        try:
            import joblib  # noqa: F401
            import threadpoolctl  # noqa: F401
        except ImportError as e:
            raise ImportError(f"sweep with n_jobs={n_jobs} runs on joblib's processes: pip "
                              f"install 'microgradnet[sweep]' (joblib, threadpoolctl); "
                              f"missing: {e.name}") from e
    kwargs = {"epochs": int(epochs), "batch_size": batch_size,
              "validation_data": validation_data, **fit_kwargs}
    entries = [(i, c, config_id(c)) for i, c in enumerate(configs)]
    by_index: dict[int, Run] = {}
    store = None
    if results_path is not None:
        store = Store(results_path)
        store.check_sweep(_fingerprint(x, y, kwargs, target))
        done = store.finished()
        for i, _c, cid in entries:
            run = done.get(cid)
            stale = run is not None and (rerun_errors and run.status == "error" or (
                keep_weights and run.status == "ok" and run.weights is None))
            if run is not None and not stale:
                run.index = i
                by_index[i] = run
        store.save_data(x, y)
    pending = [e for e in entries if e[0] not in by_index]
    base = Task(build, x, y, [], kwargs, target=dict(target) if target else None,
                keep_weights=keep_weights, batched=batched)
    bar = _Progress(len(entries), len(by_index), progress)
    start = time.perf_counter()

    def finished(runs: list[Run]) -> None:
        for run in runs:
            by_index[run.index] = run
            if store is not None:
                store.append(run)
        bar.advance(len(runs))

    def results() -> SweepResults:
        runs = [by_index[i] for i in sorted(by_index)]
        info = {"engine": sorted({r.engine for r in runs if r.engine}),
                "seconds": time.perf_counter() - start, "backend": backend, "n_jobs": n_jobs}
        return SweepResults(runs, build=build, x=x, y=y, info=info)

    try:
        if pending:
            if backend == "dask":
                _run_dask(base, pending, client, group_by, task_size, finished)
            elif backend is None and n_jobs == 1:
                for chunk in _split(pending, group_by, 1, task_size):
                    run_task(replace(base, runs=chunk), report=finished)
            else:
                _run_joblib(base, pending, n_jobs, backend, group_by, task_size, finished)
    except KeyboardInterrupt:
        bar.close()
        raise SweepInterrupted(results()) from None
    bar.close()
    return results()


def _describe(value: Any) -> Any:
    """value as JSON for a sweep's fingerprint: arrays by dtype, shape and SHA-256 of their
    bytes; objects (callbacks) by their type's name."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and not all(
            isinstance(v, (int, float, np.number)) for v in value):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "__array__"):
        a = np.ascontiguousarray(np.asarray(value))
        if a.dtype != object:
            digest = hashlib.sha256(a.view(np.uint8).reshape(-1)).hexdigest()[:16]
            return f"array {a.dtype.str} {list(a.shape)} sha256 {digest}"
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _fingerprint(x: Any, y: Any, fit_kwargs: dict, target: Any) -> dict:
    """What a sweep's runs depend on besides their configs: a rerun on the same
    results_path must agree on it to reuse the finished runs."""
    return {"x": _describe(x), "y": _describe(y), "target": _describe(target),
            **{f"fit {k}": _describe(v) for k, v in sorted(fit_kwargs.items())}}


class _Progress:
    """The sweep's bar over runs: fit's own progress bar (ProgbarLogger), one step a run."""

    def __init__(self, total: int, done: int, show: bool) -> None:
        self.bar = ProgbarLogger(1) if show else None
        self.done = done
        if self.bar is not None:
            self.bar.set_params({"epochs": 1, "steps": total, "verbose": 1})
            self.bar.on_epoch_begin(0)
            if done:
                self.bar.on_batch_end(done - 1, {})

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None and n:
            self.bar.on_batch_end(self.done - 1, {})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.on_epoch_end(0, {})
            self.bar = None


def _run_joblib(base: Task, pending: list, n_jobs: int, backend: str | None, group_by: Any,
                task_size: int | None, finished: Callable[[list[Run]], None]) -> None:
    """Tasks on joblib (loky processes unless a parallel_config says otherwise). A worker
    that dies fails joblib's call and the tasks in flight: their unfinished runs are sent
    again, each a task of its own; after a second death, one run per call, so the run that
    kills its worker is known, retried, and recorded as an error after _MAX_CRASHES."""
    from joblib import Parallel, delayed
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    queue = _split(pending, group_by, _workers(n_jobs), task_size)
    crashes: dict[int, int] = {}
    retried = alone = False
    while queue:
        batch = queue[:1] if alone else queue
        done: set[int] = set()
        try:
            parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
            for number, runs in parallel(delayed(_worker_task)(i, replace(base, runs=t))
                                         for i, t in enumerate(batch)):
                done.add(number)
                finished(runs)
            queue = queue[len(batch):]
        except TerminatedWorkerError as e:
            left = [t for i, t in enumerate(batch) if i not in done]
            rest = queue[len(batch):]
            if alone:
                (index, config, cid), = left[0]
                crashes[index] = crashes.get(index, 0) + 1
                if crashes[index] >= _MAX_CRASHES:
                    finished([_died(index, config, cid, type(e).__name__,
                                    f"the worker process training this run died "
                                    f"{crashes[index]} times: {e}")])
                    left = []
                queue = left + rest
            else:
                queue = [[entry] for t in left for entry in t] + rest
                alone, retried = retried, True


def _died(index: int, config: dict, cid: str, kind: str, message: str) -> Run:
    return Run(config=config, config_id=cid, status="error", index=index,
               error={"type": kind, "message": message, "traceback": ""})


def _run_dask(base: Task, pending: list, client: Any, group_by: Any, task_size: int | None,
              finished: Callable[[list[Run]], None]) -> None:
    """Tasks on a Dask cluster: the data scattered once, results as they complete; a worker
    that dies has its task rescheduled by the scheduler (KilledWorker after its allowed
    failures: that task's runs are sent again one by one, then recorded as errors)."""
    try:
        import distributed
    except ImportError as e:
        raise ImportError("sweep with backend='dask' needs distributed: pip install "
                          "'microgradnet[dask]'") from e
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError as e:
            raise ValueError("sweep with backend='dask' needs a distributed.Client: start one "
                             "(distributed.Client(...)) or pass client=") from e
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    # hash=False: keys of their own. Hashed keys are the same for the same data, so a sweep
    # right after another reuses the key the last one's futures are releasing, and its tasks
    # are cancelled for "lost dependencies".
    x, y = (*client.scatter([base.x, base.y] if base.y is not None else [base.x],
                             broadcast=True, hash=False), None)[:2]
    bare = replace(base, x=None, y=None)
    tasks = _split(pending, group_by, workers, task_size)
    futures = {}
    for i, t in enumerate(tasks):
        futures[client.submit(_worker_task, i, replace(bare, runs=t), x, y, pure=False)] = t
    queue = distributed.as_completed(list(futures))
    try:
        for future in queue:
            task = futures[future]
            try:
                _number, runs = future.result()
            except distributed.KilledWorker as e:
                if len(task) > 1:
                    for entry in task:
                        retry = client.submit(_worker_task, -1, replace(bare, runs=[entry]), x,
                                              y, pure=False)
                        futures[retry] = [entry]
                        queue.add(retry)
                    continue
                (index, config, cid), = task
                runs = [_died(index, config, cid, "KilledWorker", str(e))]
            finished(runs)
    except BaseException:
        client.cancel(list(futures))
        raise
