"""A sweep's results: one record per run, a table of them, and their files (JSON lines and
.npz, never pickle: loading results cannot run code)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Run", "SweepResults", "load"]

STATUSES = ("ok", "diverged", "error")
_LOG = "runs.jsonl"
_ARRAYS = "arrays"
_DATA = "data.npz"
_SWEEP = "sweep.json"
_ID = re.compile(r"[0-9a-f]{16}")  # config_id's form: a file name, never a path


@dataclass
class Run:
    """One run of a sweep: its config, how it ended and what it learned."""

    config: dict
    config_id: str
    status: str  # "ok" | "diverged" (a non-finite loss) | "error" (build or fit raised)
    loss: float | None = None  # the last epoch's loss
    metrics: dict = field(default_factory=dict)  # the last epoch's logs (loss, val_*, ...)
    history: dict = field(default_factory=dict)  # per-epoch logs, as History.history
    epoch_ends: list = field(default_factory=list)  # batches trained when each epoch ended
    batch_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps: int = 0  # training steps (batches) run
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    dead_units: dict = field(default_factory=dict)  # hidden layer -> fraction of dead units
    wall_time: float = 0.0  # seconds: seeding, build, fit and the checks after
    fit_time: float = 0.0  # seconds inside fit
    engine: str = ""  # what trained it: "fit" (a loop of model.fit) or "batched"
    weights: list | None = None  # the trained weights (keep_weights=True)
    error: dict | None = None  # {"type", "message", "traceback"} when status is "error"
    index: int = -1  # its position in the sweep's grid

    def __getitem__(self, key: str) -> Any:
        """A config value, or a record field (`run["activation"]`, `run["loss"]`)."""
        if key in self.config:
            return self.config[key]
        if key in self.metrics:
            return self.metrics[key]
        if key in _FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """As __getitem__, with a default."""
        try:
            return self[key]
        except KeyError:
            return default

    # ---- files: metadata as one JSON line, arrays in a sidecar .npz
    def to_json(self) -> dict:
        """The record without its arrays (batch losses and weights go to the .npz)."""
        out = {name: getattr(self, name) for name in _FIELDS
               if name not in ("batch_losses", "weights")}
        out["n_weights"] = None if self.weights is None else len(self.weights)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The record's arrays, named as in its .npz."""
        out = {"batch_losses": np.asarray(self.batch_losses)}
        for i, w in enumerate(self.weights or ()):
            out[f"weight_{i}"] = np.asarray(w)
        return out

    @classmethod
    def from_files(cls, meta: dict, arrays: dict[str, np.ndarray]) -> Run:
        """A record from its JSON line and its arrays."""
        n_weights = meta.pop("n_weights", None)
        kwargs = {k: v for k, v in meta.items() if k in _FIELDS}
        kwargs["batch_losses"] = arrays.get("batch_losses", np.zeros(0))
        kwargs["weights"] = (None if n_weights is None
                             else [arrays[f"weight_{i}"] for i in range(n_weights)])
        return cls(**kwargs)


_FIELDS = tuple(Run.__dataclass_fields__)


def _lower_is_better(metric: str) -> bool:
    name = metric.removeprefix("val_")
    return any(w in name for w in ("loss", "error", "mse", "mae", "crossentropy")) or (
        name in ("steps_to_target", "seconds_to_target", "wall_time", "fit_time"))


class SweepResults:
    """The runs of a sweep, in the grid's order: iterate, index, `len`, `filter`, `best`,
    `to_pandas`, `save`; printed as a table."""

    def __init__(self, runs: Sequence[Run], build: Callable | None = None, x: Any = None,
                 y: Any = None, info: dict | None = None) -> None:
        self.runs = list(runs)
        self.build = build  # kept in memory only: load(path, build=...) takes it again
        self.x, self.y = x, y
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]

    def _like(self, runs: Sequence[Run]) -> SweepResults:
        return SweepResults(runs, self.build, self.x, self.y, self.info)

    def filter(self, predicate: Callable[[Run], bool] | None = None, **match: Any
               ) -> SweepResults:
        """The runs for which `predicate(run)` holds and whose values equal `match`'s
        (config keys or fields: `results.filter(activation="relu", status="ok")`)."""
        missing = object()

        def keep(run: Run) -> bool:
            if predicate is not None and not predicate(run):
                return False
            return all(run.get(k, missing) == v for k, v in match.items())

        return self._like([r for r in self.runs if keep(r)])

    def best(self, metric: str = "loss", mode: str = "auto") -> Run:
        """The finished ("ok") run with the lowest `metric` (mode "min") or highest ("max");
        "auto": lowest for losses and errors, highest otherwise (accuracy)."""
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"best: mode must be 'auto', 'min' or 'max', got {mode!r}")
        lower = _lower_is_better(metric) if mode == "auto" else mode == "min"
        scored = [(r.get(metric), r) for r in self.runs if r.status == "ok"]
        scored = [(v, r) for v, r in scored if isinstance(v, (int, float)) and math.isfinite(v)]
        if not scored:
            known = sorted({k for r in self.runs for k in r.metrics})
            raise ValueError(f"best: no finished run has a value of {metric!r} (metrics "
                             f"recorded: {known}; statuses: {self.counts()})")
        pick = min if lower else max
        return pick(scored, key=lambda vr: vr[0])[1]

    def counts(self) -> dict[str, int]:
        """How many runs ended in each status."""
        return {s: sum(r.status == s for r in self.runs) for s in STATUSES}

    def config_keys(self) -> list[str]:
        """The config keys of the runs, in order of first appearance."""
        return list(dict.fromkeys(k for r in self.runs for k in r.config))

    def rows(self) -> list[dict]:
        """One flat dict per run: config, status, final metrics, target, dead units, times."""
        rows = []
        for r in self.runs:
            row = dict(r.config)
            row["status"] = r.status
            row.update({k: v for k, v in r.metrics.items()})
            row["steps"] = r.steps
            row["steps_to_target"] = r.steps_to_target
            row["seconds_to_target"] = r.seconds_to_target
            row.update({f"dead_{k}": v for k, v in r.dead_units.items()})
            row["wall_time"] = r.wall_time
            row["fit_time"] = r.fit_time
            row["error"] = None if r.error is None else f"{r.error['type']}: " \
                f"{r.error['message']}"
            rows.append(row)
        return rows

    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is optional: `pip install pandas`)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("SweepResults.to_pandas needs pandas, which microgradnet does "
                              "not require: pip install pandas") from e
        return pd.DataFrame(self.rows())

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        head = f"SweepResults({len(self)} runs: {counts or 'none'})"
        if not self.runs:
            return head
        keys = self.config_keys()
        metrics = [k for k in dict.fromkeys(m for r in self.runs for m in r.metrics)]
        columns = [*keys, "status", *metrics, "steps", "time"]
        table = []
        for r in self.runs[:20]:
            cells = [_cell(r.config.get(k, "")) for k in keys] + [r.status]
            cells += [_cell(r.metrics.get(m, "")) for m in metrics]
            cells += [str(r.steps), f"{r.wall_time:.2f}s"]
            table.append(cells)
        widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
        lines = [head, "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                  for row in table]
        if len(self) > 20:
            lines.append(f"... ({len(self) - 20} more)")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the results to directory `path` (replaced if it exists): runs.jsonl, one
        arrays/<config_id>.npz per run and data.npz (x, y); no pickle."""
        path = Path(path)
        if path.exists():
            if not (path / _LOG).exists():
                raise FileExistsError(f"save: {path} exists and is not a sweep's results "
                                      "directory; not overwriting it")
            shutil.rmtree(path)
        store = Store(path)
        for run in self.runs:
            store.append(run)
        store.save_data(self.x, self.y)
        return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Store:
    """A results directory written run by run as runs finish (crash-safe: a run's arrays are
    written before its line, and a torn last line is dropped when the file is opened)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"results_path {self.path} is a file; a sweep's results "
                                     f"go in a directory")
        if (self.path.is_dir() and not (self.path / _LOG).exists()
                and any(p.name != _ARRAYS for p in self.path.iterdir())):
            raise FileExistsError(f"results_path {self.path} holds other files and no "
                                  f"{_LOG}: not a sweep's results directory; not writing "
                                  f"into it (give a new or empty directory)")
        (self.path / _ARRAYS).mkdir(parents=True, exist_ok=True)
        self.log = self.path / _LOG
        _drop_torn_tail(self.log)

    def append(self, run: Run) -> None:
        """Add one finished run: its arrays (atomically), then its JSON line."""
        target = self.path / _ARRAYS / f"{run.config_id}.npz"
        tmp = target.with_suffix(".tmp.npz")
        np.savez(tmp, **run.arrays())
        os.replace(tmp, target)
        line = json.dumps(run.to_json(), default=_json_default)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def save_data(self, x: Any, y: Any) -> None:
        """Keep the training data beside the runs (for pictures after loading)."""
        if x is None:
            return
        arrays = {"x": np.asarray(x)}
        if y is not None:
            arrays["y"] = np.asarray(y)
        np.savez(self.path / _DATA, **arrays)

    def check_sweep(self, fingerprint: dict) -> None:
        """Record what the sweep's runs depend on besides their configs (data, fit's
        arguments, target); refuse a directory that holds runs of a different sweep, whose
        records would be passed off as this one's."""
        fingerprint = json.loads(json.dumps(fingerprint))  # as read back: tuples as lists
        stored_path = self.path / _SWEEP
        if stored_path.exists():
            try:
                stored = json.loads(stored_path.read_text(encoding="utf-8"))
            except ValueError:
                raise ValueError(f"{stored_path} is not JSON: delete it (or the whole "
                                 f"directory) to start over") from None
            differ = [k for k in sorted(set(stored) | set(fingerprint))
                      if stored.get(k) != fingerprint.get(k)]
            if differ:
                shown = "; ".join(f"{k} was {_short(stored.get(k))}, now "
                                  f"{_short(fingerprint.get(k))}" for k in differ)
                raise ValueError(f"sweep: results_path {self.path} holds the runs of a "
                                 f"different sweep ({shown}): its records would not be this "
                                 f"sweep's runs. Use another results_path, or delete it to "
                                 f"start over")
            return
        if self.log.exists() and self.log.stat().st_size:
            return  # written by SweepResults.save, or before fingerprints: nothing to check
        tmp = stored_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(fingerprint, sort_keys=True), encoding="utf-8")
        os.replace(tmp, stored_path)

    def finished(self) -> dict[str, Run]:
        """The runs already in the directory, by config id (the last line of an id wins)."""
        if not self.log.exists():
            return {}
        return {run.config_id: run for run in _read_runs(self.path)}


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a sweep's results")


def _drop_torn_tail(log: Path) -> None:
    """Cut a last line that a crash left without its newline, so appends start clean."""
    if not log.exists():
        return
    data = log.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(log, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _read_runs(path: Path) -> list[Run]:
    log = path / _LOG
    if not log.exists():
        raise FileNotFoundError(f"no sweep results in {path} (no {_LOG})")
    runs: dict[str, Run] = {}
    lines = log.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            meta = json.loads(line)
        except json.JSONDecodeError:
            if number >= len(lines) - 1:  # a torn last line: the run did not finish
                continue
            raise ValueError(f"{log}: line {number} is not JSON") from None
        cid = meta.get("config_id") if isinstance(meta, dict) else None
        if not (isinstance(cid, str) and _ID.fullmatch(cid) and isinstance(
                meta.get("config"), dict) and meta.get("status") in STATUSES):
            raise ValueError(f"{log}: line {number} is not a run's record (a JSON object "
                             f"with config, a 16-hex-digit config_id and a status)")
        arrays_path = path / _ARRAYS / f"{cid}.npz"
        if not arrays_path.exists():
            raise ValueError(f"{log}: line {number}'s arrays ({arrays_path}) are missing: "
                             f"delete that line to run it again")
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        try:
            run = Run.from_files(meta, arrays)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{log}: line {number} does not match its arrays "
                             f"({arrays_path}): {e}") from None
        runs.pop(run.config_id, None)  # a rerun's line replaces the earlier one, in order
        runs[run.config_id] = run
    return list(runs.values())


def load(path: str | os.PathLike, build: Callable | None = None) -> SweepResults:
    """Read results written by `SweepResults.save` or a sweep's `results_path` (no pickle);
    `build` is needed again for the pictures that rebuild models."""
    path = Path(path)
    runs = _read_runs(path)
    x = y = None
    if (path / _DATA).exists():
        with np.load(path / _DATA, allow_pickle=False) as z:
            x = z["x"]
            y = z["y"] if "y" in z.files else None
    return SweepResults(runs, build=build, x=x, y=y)
