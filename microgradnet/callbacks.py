"""Keras-named training callbacks: History, EarlyStopping, ModelCheckpoint, LambdaCallback,
LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN, CSVLogger, and the progress bar.

A callback overrides the hooks it needs (`on_train_begin/end`, `on_epoch_begin/end`,
`on_batch_begin/end`); `self.model` is the model being trained. Batch hooks are called only
on callbacks that define them, so callbacks that watch epochs cost nothing per batch.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Callback", "CallbackList", "CSVLogger", "DeadUnitMonitor", "DeadUnitWarning",
           "EarlyStopping", "ExplodingGradientWarning", "format_logs", "GradientMonitor", "History",
           "LambdaCallback", "LearningRateScheduler", "LivePlot", "ModelCheckpoint",
           "PredictionRecorder", "ProgbarLogger", "ReduceLROnPlateau", "TerminateOnNaN",
           "TrainingWarning", "VanishingGradientWarning", "warn_at_caller", "WeightRecorder"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_batch_begin", "on_batch_end")
# Keras 3's names of the batch hooks: the same hooks, called in their place.
_KERAS3_BATCH_HOOKS = {"on_train_batch_begin": "on_batch_begin",
                       "on_train_batch_end": "on_batch_end"}


class Callback:
    """Base class: override any of the hooks; `self.model` and `self.params` are set by fit."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}

    def set_model(self, model: Any) -> None:
        """Called by fit before training starts."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Called by fit with epochs, steps and verbose."""
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called before each epoch (epochs count from 0)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called after each epoch with its loss, metrics and val_* values."""

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each training batch (counted from 0 in every epoch)."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each training batch with logs["loss"] (and metrics) of that batch."""

    # Keras 3 names for the same hooks.
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Alias of on_batch_begin."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Alias of on_batch_end."""
        self.on_batch_end(batch, logs)

    def _close(self) -> None:
        """Release what the callback holds open (files, progress bars) when fit stops on
        an exception, so on_train_end never ran. Not a Keras hook: fit calls it."""

    # Following a captured run (microgradnet.fastpath) -- not Keras. fit's captured step
    # trains many batches, across epochs, in one call to C. A callback that needs the model
    # only every so many batches says how many (batches_until_live) and takes the losses of
    # the batches in between in bulk (on_batches_end), and promises that its epoch hooks
    # only count or record: they may be called after the batches of the epoch ran. fit then
    # stops in Python only at the batches where such callbacks look at the model, and keeps
    # its per-batch pace. Callbacks that do not opt in see every hook live.
    def follows_captured_runs(self) -> bool:
        """Whether this callback implements batches_until_live and on_batches_end."""
        return False

    def batches_until_live(self) -> int:
        """How many batches may train before on_batch_end must see one live (1: the next)."""
        return 1

    def on_batches_end(self, losses: np.ndarray, epochs_ended: int) -> None:
        """The losses of training batches that ran without a live on_batch_end, in order,
        and how many epochs ended among them (their on_epoch_end is not called)."""


def _overrides(cb: Callback, hook: str) -> bool:
    alias = {v: k for k, v in _KERAS3_BATCH_HOOKS.items()}.get(hook)
    if hook in vars(cb) or alias in vars(cb):  # hooks set on the instance (LambdaCallback)
        return True
    if alias and getattr(type(cb), alias) is not getattr(Callback, alias):
        return True
    return getattr(type(cb), hook, None) is not getattr(Callback, hook)


class CallbackList:
    """Calls a hook on every callback that defines it."""

    def __init__(self, callbacks: Sequence[Callback], model: Any, params: dict) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)
        self._by_hook = {h: [cb for cb in self.callbacks if _overrides(cb, h)] for h in _HOOKS}
        self.wants_batches = bool(self._by_hook["on_batch_begin"] or
                                  self._by_hook["on_batch_end"])

    def hooked(self, hook: str) -> bool:
        """Whether any callback overrides `hook`."""
        return bool(self._by_hook[hook])

    def close(self) -> None:
        """Let every callback release its files after training failed (see Callback._close)."""
        for cb in self.callbacks:
            cb._close()

    def call(self, hook: str, *args: Any, skip: tuple = ()) -> None:
        """Run `hook` on the callbacks that override it (but those in `skip`)."""
        for cb in self._by_hook[hook]:
            if any(cb is s for s in skip):
                continue
            if hook == "on_batch_begin":
                cb.on_train_batch_begin(*args)
            elif hook == "on_batch_end":
                cb.on_train_batch_end(*args)
            else:
                getattr(cb, hook)(*args)


def _defined_in(cls: type, name: str) -> type | None:
    """The class of cls's MRO that defines attribute `name`."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


class History(Callback):
    """Per-epoch logs in `history` (loss, metrics, val_*), and per-batch ones in
    `batch_history` (the loss of every training batch: `batch_history["loss"]`);
    `epoch_ends[i]` is the number of batches trained when epoch `epoch[i]` ended."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.batch_history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.epoch_ends: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []
        self.epoch_ends = []

    def follows_captured_runs(self) -> bool:
        return type(self) is History

    def batches_until_live(self) -> int:
        return 1 << 62  # it only records; fit hands it the batch losses itself

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        # An epoch cut short (stop_training mid-epoch) has fewer batches than the others.
        self.epoch_ends.append(len(self.batch_history.get("loss", ())))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def record_batch(self, logs: dict) -> None:
        """Keep one training batch's logs (the model calls this directly, cheaply)."""
        for key, value in logs.items():
            self.batch_history.setdefault(key, []).append(value)

    def record_batches(self, losses: np.ndarray, metrics: dict | None = None) -> None:
        """Keep the losses of several training batches at once (the captured step's), and
        the values of its metrics by name (lists as long as losses)."""
        self.batch_history.setdefault("loss", []).extend(losses.tolist())
        for key, values in (metrics or {}).items():
            self.batch_history.setdefault(key, []).extend(values)

    def record_epochs(self, epochs: list[int], ends: list[int], losses: list[float],
                      metrics: dict | None = None) -> None:
        """Keep several epochs' ends at once: their numbers, the batches trained when each
        ended, their losses and the values of their metrics by name (the captured step's)."""
        if epochs:
            self.epoch.extend(epochs)
            self.epoch_ends.extend(ends)
            self.history.setdefault("loss", []).extend(losses)
            for key, values in (metrics or {}).items():
                self.history.setdefault(key, []).extend(values)


def _better(mode: str, monitor: str) -> Callable[[float, float], bool]:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.removeprefix("val_")
        mode = "max" if ("acc" in name or name.startswith("auc")) else "min"
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


def _monitored(logs: dict | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        warn_at_caller(
            f"{who}: the monitored value {monitor!r} is not in the logs (have: "
            f"{', '.join(sorted(logs or {}))}); did you mean one of those?",
            RuntimeWarning,
        )
    return value


class EarlyStopping(Callback):
    """Stops training when `monitor` has not improved by `min_delta` for `patience` epochs.

    As Keras 3: `baseline` does not seed the best value; an epoch resets the wait only if it
    beats both the best so far and the baseline, so training stops when the model has not
    got past the baseline within `patience` epochs. restore_best_weights restores the best
    epoch seen (even when that never beat the baseline).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), int(patience)
        self.verbose, self.baseline = verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self._better = _better(mode, monitor)
        self._sign = 1 if self._better(1, 0) else -1

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = -self._sign * math.inf
        self.best_weights = None

    def _improves(self, current: float, reference: float) -> bool:
        return self._better(current - self._sign * self.min_delta, reference)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) after each epoch; `filepath` may hold
    `{epoch:02d}` and log keys such as `{val_loss:.3f}`."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        filepath = os.fspath(filepath)
        ext = os.path.splitext(filepath)[1].lower()
        if ext != ".npz":
            # Keras' .keras / .h5 would be written in another format under that name.
            raise ValueError(
                f"ModelCheckpoint: the filepath must end in .npz (microgradnet's file format, "
                f"read by load_model and load_weights), got {filepath!r}"
            )
        self.filepath, self.monitor, self.verbose = filepath, monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self._better = _better(mode, monitor)
        sign = 1 if self._better(1, 0) else -1
        self.best = initial_value_threshold if initial_value_threshold is not None else (
            -sign * math.inf)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"ModelCheckpoint: cannot fill in the filepath {self.filepath!r} ({exc!r}); "
                f"it may use {{epoch}} and the keys of this epoch's logs: "
                f"{', '.join(sorted(logs)) or 'none'}"
            ) from exc
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not self._better(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_end=lambda epoch, logs: ..., etc."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        super().__init__()
        known = [*_HOOKS, *_KERAS3_BATCH_HOOKS]
        unknown = sorted(set(hooks) - set(known))
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hooks {unknown}; known: {known}")
        for keras3, old in _KERAS3_BATCH_HOOKS.items():
            if hooks.get(keras3) is not None and hooks.get(old) is not None:
                raise ValueError(f"LambdaCallback: {keras3} is the Keras 3 name of {old}; "
                                 f"give one of them, not both")
        for name, fn in hooks.items():
            if fn is not None:
                # Stored under the old name, which the Keras 3 hooks of Callback call.
                setattr(self, _KERAS3_BATCH_HOOKS.get(name, name), fn)


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch's start to schedule(epoch, lr) (or schedule(epoch))."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:
            lr = self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule gave {lr} at epoch {epoch}")
        opt.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `monitor` stalls for `patience` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.verbose, self.min_delta = verbose, min_delta
        self.cooldown, self.min_lr = cooldown, min_lr
        self._better = _better(mode, monitor)
        self._sign = 1 if self._better(1, 0) else -1

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.cooldown_counter = 0, 0
        self.best = -self._sign * math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        opt = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = float(opt.learning_rate)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current - self._sign * self.min_delta, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > self.min_lr:
                    opt.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {float(opt.learning_rate)}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stops training at the first batch whose loss is NaN or infinite, and says where it
    began: the first layer whose output, or whose weights' gradient, is not finite."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        where = self.model.find_nonfinite()
        self.reason = f"Batch {batch}: invalid loss {loss}; {where}"
        print(self.reason + "; terminating training", file=sys.stderr)
        self.model.stop_training = True


class CSVLogger(Callback):
    """Writes each epoch's logs as a row of a CSV file."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = str(filename), separator, append
        self._file = None
        self._writer = None
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(
            self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self._keys = None
        self._header_written = has_rows

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._header_written:
                self._writer.writerow(["epoch", *self._keys])
        self._writer.writerow([epoch, *(logs.get(k, "NA") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def format_logs(logs: dict) -> str:
    """Logs as Keras 3 prints them: `accuracy: 0.8525 - loss: 0.6148`, the names sorted,
    the val_ ones after, 4 decimals (small values in scientific notation)."""
    names = sorted(k for k in logs if not k.startswith("val_"))
    names += sorted(k for k in logs if k.startswith("val_"))
    return " - ".join(f"{k}: {_format_value(logs[k])}" for k in names)


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return str(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_step_time(seconds: float) -> str:
    """The time per step in Keras' unit: `2s/step`, `2ms/step` or `2us/step`."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{seconds // 3600:.0f}:{(seconds % 3600) // 60:02.0f}:{seconds % 60:02.0f}"
    if seconds > 60:
        return f"{seconds // 60:.0f}:{seconds % 60:02.0f}"
    return f"{seconds:.0f}s"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no such method, or a closed stream
        return False


def _terminal_columns() -> int:
    """The terminal's width in characters, 0 when it is unknown (or reported as 0)."""
    return shutil.get_terminal_size((0, 0)).columns


def _bar_char(stream: Any) -> str:
    """Keras' bar character, or "=" where the stream's encoding has no such character."""
    try:
        "━".encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "="
    return "━"


class ProgbarLogger(Callback):
    """What fit prints, in Keras 3's layout. verbose=1: a progress bar per epoch,

        Epoch 1/10
        25/25 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - accuracy: 0.8525 - loss: 0.6148

    redrawn in place as batches end when the output is a terminal, and written once, when
    the epoch ends, when it is not (a file, a pipe, a notebook's captured output: one clean
    line per epoch). verbose=2: that line without the bar, `25/25 - 0s - 2ms/step - ...`.
    As Keras, the `Epoch i/n` line comes only when there are several epochs."""

    width = 20  # the bar's characters, as Keras
    interval = 0.05  # seconds between redraws of a live bar, as Keras

    def __init__(self, verbose: int | str = 1) -> None:
        super().__init__()
        if verbose == "auto":  # Keras' default, which is 1 for fit
            verbose = 1
        if isinstance(verbose, str) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        self.verbose = int(verbose)
        self._live = False
        self._open = 0  # characters of the live line on screen, 0 when none is open

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        # Batch by batch only for a live bar: otherwise fit need not stop in Python after
        # every batch (CallbackList reads the hooks after set_params).
        self._live = self.verbose == 1 and _isatty(sys.stdout)
        if self._live:
            self.on_batch_end = self._batch_end
        else:
            vars(self).pop("on_batch_end", None)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        epochs = self.params.get("epochs", 1)
        if self.verbose and epochs > 1:
            self._write(f"Epoch {epoch + 1}/{epochs}\n")
        self._start = time.perf_counter()
        self._after_first: float | None = None
        self._last_draw = -math.inf
        self._seen = 0
        self._sums: dict[str, list[float]] = {}

    def _batch_end(self, batch: int, logs: dict | None = None) -> None:
        """A live bar's on_batch_end: running means of the batch logs, redrawn at most
        every `interval` seconds."""
        now = time.perf_counter()
        self._seen = batch + 1
        if self._seen == 1:
            self._after_first = now
        for key, value in (logs or {}).items():
            total = self._sums.setdefault(key, [0.0, 0])
            total[0] += value
            total[1] += 1
        if now - self._last_draw < self.interval:
            return
        self._last_draw = now
        target = self.params.get("steps") or 0
        per_step = self._per_step(now, self._seen)
        eta = _format_eta(per_step * max(target - self._seen, 0))
        means = {k: total / count for k, (total, count) in self._sums.items()}
        self._draw(self._bar_line(self._seen, eta, per_step, means), final=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.verbose:
            return
        now = time.perf_counter()
        target = self.params.get("steps") or 0
        per_step = self._per_step(now, target)
        elapsed = f"{now - self._start:.0f}s"
        if self.verbose == 2:
            line = f"{self._count(target)} - {elapsed} - {_format_step_time(per_step)}"
            text = format_logs(logs or {})
            self._write(f"{line} - {text}\n" if text else f"{line}\n")
        else:
            self._draw(self._bar_line(target, elapsed, per_step, logs or {}), final=True)

    def _per_step(self, now: float, steps: int) -> float:
        # As Keras: the first step (which may build or capture) is left out once there are
        # others to time.
        if self._after_first is not None and steps > 1:
            return (now - self._after_first) / (steps - 1)
        return (now - self._start) / max(steps, 1)

    def _count(self, current: int) -> str:
        target = self.params.get("steps") or 0
        if target <= 0:
            return f"{current}/Unknown"
        return f"{current:>{len(str(target))}}/{target}"

    def _bar_line(self, current: int, clock: str, per_step: float,
                  logs: dict) -> tuple[str, str]:
        """A verbose=1 line, plain and with Keras' colors (bold count, green bar done)."""
        target = self.params.get("steps") or 0
        done = self.width * min(current, target) // target if target > 0 else 0
        char = _bar_char(sys.stdout)
        count = self._count(current)
        text = format_logs(logs)
        rest = f" {clock} {_format_step_time(per_step)}" + (f" - {text}" if text else "")
        plain = f"{count} {char * self.width}{rest}"
        colored = (f"\x1b[1m{count}\x1b[0m \x1b[32m{char * done}\x1b[0m"
                   f"\x1b[37m{char * (self.width - done)}\x1b[0m{rest}")
        return plain, colored

    def _draw(self, line: tuple[str, str], final: bool) -> None:
        plain, colored = line
        if not self._live:
            if final:
                self._write(plain + "\n")
            return
        columns = _terminal_columns()
        if columns > 0 and not final and len(plain) >= columns:
            # A line that wraps cannot be taken back with a carriage return: cut it to the
            # terminal. The last one is written whole (it stays); so is every line when the
            # width is unknown (0).
            shown, text = columns - 1, plain[:columns - 1]
        else:
            shown, text = len(plain), colored
        pad = " " * max(self._open - shown, 0)  # what is left of a longer line before
        self._write(f"\r{text}{pad}" + ("\n" if final else ""))
        self._open = 0 if final else shown

    def _write(self, text: str) -> None:
        stream = sys.stdout
        stream.write(text)
        stream.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close()

    def _close(self) -> None:
        if self._open:  # a live line left open (training stopped in the middle of an epoch)
            self._write("\n")
            self._open = 0


# ---------------------------------------------------------------------------- watching


class TrainingWarning(UserWarning):
    """Something in training looks wrong (and what to try about it)."""


class VanishingGradientWarning(TrainingWarning):
    """A layer's gradients are orders of magnitude smaller than the largest layer's."""


class ExplodingGradientWarning(TrainingWarning):
    """A layer's gradient norm is huge or not finite."""


class DeadUnitWarning(TrainingWarning):
    """Many ReLU units of a layer output zero for every sample."""


class _EveryN(Callback):
    """Counts batches (or epochs) and calls `snapshot()` every `every` of them."""

    def __init__(self, every: int, unit: str) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if unit not in ("batch", "epoch"):
            raise ValueError(f"unit must be 'batch' or 'epoch', got {unit!r}")
        self.every, self.unit = every, unit
        self.steps: list[int] = []  # training batches done at each snapshot
        self._batches = 0
        self._epochs = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.steps:
            self._take()  # the starting point is frame 0

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        self._batch_logs(logs or {})
        if self.unit == "batch" and self._batches % self.every == 0:
            self._take()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._epochs += 1
        if self.unit == "epoch" and self._epochs % self.every == 0:
            self._take()

    def _take(self) -> None:
        self.steps.append(self._batches)
        self.snapshot()

    def follows_captured_runs(self) -> bool:
        # Its epoch hook only counts, unless it records at epoch ends; a subclass that
        # changes a hook, or what a batch end records without saying how in bulk, needs
        # every batch live.
        cls = type(self)
        hooks = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_epoch_begin", "on_epoch_end")
        return (self.unit == "batch"
                and all(getattr(cls, h) is getattr(_EveryN, h) for h in hooks)
                and _defined_in(cls, "_batch_logs") is _defined_in(cls, "_batch_logs_bulk"))

    def batches_until_live(self) -> int:
        return self.every - self._batches % self.every

    def on_batches_end(self, losses: np.ndarray, epochs_ended: int) -> None:
        self._batches += len(losses)
        self._epochs += epochs_ended
        self._batch_logs_bulk(losses)

    # Recording inside a captured run (microgradnet.fastpath) -- not Keras: the run takes
    # the snapshots in C at the batches snapshot() would see live, then hands them over.
    @property
    def batches_done(self) -> int:
        """The training batches this recorder has seen end."""
        return self._batches

    def snapshot_steps(self, batches: int) -> range:
        """The batch counts at which the next `batches` batches end with a snapshot."""
        first = (self._batches // self.every + 1) * self.every
        return range(first, self._batches + batches + 1, self.every)

    def add_snapshots(self, steps: range, snapshots: list) -> None:
        """Keep snapshots taken elsewhere (a captured run) at these batch counts."""
        self.steps.extend(steps)
        self._keep(snapshots)

    def _keep(self, snapshots: list) -> None:
        raise NotImplementedError

    def _batch_logs_bulk(self, losses: np.ndarray) -> None:
        pass

    def _batch_logs(self, logs: dict) -> None:
        pass

    def snapshot(self) -> None:
        """Record the model's state now (subclasses implement this)."""
        raise NotImplementedError


class PredictionRecorder(_EveryN):
    """The model's predictions for `x` every `every` batches (or epochs with unit="epoch"),
    starting before the first step: `.predictions`, `.steps`, and `.losses` (every batch)."""

    def __init__(self, x: Any, every: int = 50, unit: str = "batch") -> None:
        super().__init__(every, unit)
        self.x = x
        self.predictions: list = []
        self.losses: list[float] = []

    def _batch_logs(self, logs: dict) -> None:
        self.losses.append(logs.get("loss", float("nan")))

    def _batch_logs_bulk(self, losses: np.ndarray) -> None:
        self.losses.extend(losses.tolist())

    def snapshot(self) -> None:
        # In fit's batches, as a captured run records them in C: a row's output can depend
        # on how many rows share its product (BLAS or a plain loop), and both paths agree.
        self.predictions.append(self.model.predict(self.x,
                                                   batch_size=self.params.get("batch_size")))

    def _keep(self, snapshots: list) -> None:
        self.predictions.extend(snapshots)


class WeightRecorder(_EveryN):
    """Copies of every weight every `every` batches (or epochs): `.weights` (one list of
    arrays per snapshot, in model.get_weights() order), `.names` and `.steps`."""

    def __init__(self, every: int = 50, unit: str = "batch") -> None:
        super().__init__(every, unit)
        self.weights: list[list] = []
        self.names: list[str] = []

    def snapshot(self) -> None:
        self._keep([self.model.get_weights()])

    def _keep(self, snapshots: list) -> None:
        if not self.names:
            self.names = [n for layer in self.model.layers for n in layer.weight_names]
        self.weights.extend(snapshots)


# The diagnostics' warnings point at the user's line that started training (their fit call),
# not at this file: every frame inside the package is skipped.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """Warn, attributed to the first frame outside microgradnet (e.g. the user's fit call)."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=(_PACKAGE_DIR,))
        return
    frame = sys._getframe(0)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# What to try when a layer's gradients vanish, by the activation that follows its weights.
_SATURATING = ("sigmoid", "tanh", "softmax", "softplus", "step")
_VANISH_ADVICE = {
    "saturating": "{act} saturates (its derivative is near 0 for large inputs) and shrinks "
                  "gradients layer by layer in a deep stack: try relu or leaky_relu in the "
                  "hidden layers with He initialization (kernel_initializer='he_normal'), "
                  "BatchNormalization, or fewer layers.",
    "relu": "relu passes no gradient where its input is negative (dead units): try leaky_relu "
            "or elu, a lower learning rate, He initialization "
            "(kernel_initializer='he_normal'), or BatchNormalization.",
    "other": "{act} does not saturate, so look at the scale: try He initialization "
             "(kernel_initializer='he_normal'), BatchNormalization, or fewer layers.",
    "linear": "its output is linear, so the shrinking comes from the layers above it: check "
              "their activations (sigmoid and tanh saturate: try relu or leaky_relu), "
              "He or Glorot initialization, or BatchNormalization.",
}


def _activation_of(layers: list, index: int) -> str:
    """The activation applied to layer `index`'s output: its own, or that of an Activation
    layer (a layer without weights) right after it; "linear" when none."""
    act = layers[index].output_activation()
    if act in (None, "linear") and index + 1 < len(layers):
        after = layers[index + 1]
        if not after.parameters():
            act = after.output_activation()
    return act or "linear"


def _vanish_advice(act: str) -> str:
    if act in _SATURATING:
        kind = "saturating"
    elif act in ("relu", "linear"):
        kind = act
    else:
        kind = "other"
    return _VANISH_ADVICE[kind].format(act=act)


class GradientMonitor(Callback):
    """The gradient norm of every layer at every batch (`.norms[layer name]`); warns when a
    layer's gradients vanish (over an epoch, its median norm is below `vanish` times the
    largest layer's) or explode (a norm above `explode`, or not finite)."""

    def __init__(self, vanish: float = 1e-3, explode: float = 1e3) -> None:
        super().__init__()
        self.vanish, self.explode = vanish, explode
        self.norms: dict[str, list[float]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._epoch_start = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._layers = [layer for layer in self.model.layers if layer.parameters()]
        for layer in self._layers:
            self.norms.setdefault(layer.name, [])

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = len(next(iter(self.norms.values()), []))

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for layer in self._layers:
            total = 0.0
            for p in layer.parameters():
                if p.grad is not None:
                    g = p.grad.data
                    total += float(np.dot(g.ravel(), g.ravel()))
            norm = math.sqrt(total) if math.isfinite(total) else float("inf")
            self.norms[layer.name].append(norm)
            if (norm > self.explode or not math.isfinite(norm)) and (
                    layer.name, "explode") not in self._warned:
                self._warned.add((layer.name, "explode"))
                warn_at_caller(
                    f"exploding gradients in layer {layer.name!r}: its gradient norm is "
                    f"{norm:.3g} at batch {batch} (threshold {self.explode:g}). Try a smaller "
                    f"learning rate, gradient clipping (clipnorm=1.0 on the optimizer) or "
                    f"BatchNormalization.",
                    ExplodingGradientWarning,
                )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if len(self._layers) < 2:
            return  # "vanishing" compares layers with each other
        medians = {name: float(np.median(values[self._epoch_start:]))
                   for name, values in self.norms.items() if len(values) > self._epoch_start}
        top = max(medians.values(), default=0.0)
        if not top > 0:
            return
        for name, value in medians.items():
            if value < self.vanish * top and (name, "vanish") not in self._warned:
                self._warned.add((name, "vanish"))
                layers = self.model.layers
                index = next(i for i, layer in enumerate(layers) if layer.name == name)
                act = _activation_of(layers, index)
                warn_at_caller(
                    f"vanishing gradients in layer {name!r} ({act}): in epoch {epoch + 1} "
                    f"the median norm of its weights' gradients is {value:.3g}, "
                    f"{value / top:.1e} of the largest layer's ({top:.3g}). "
                    + _vanish_advice(act),
                    VanishingGradientWarning,
                )


class DeadUnitMonitor(Callback):
    """After each epoch, the fraction of ReLU units of each layer that output zero for every
    training sample (`.fractions[layer name]`); warns when it reaches `threshold`. Such units
    get no gradient, so they never recover. Uses up to `max_samples` rows of the training
    data (or of `x` when given)."""

    def __init__(self, threshold: float = 0.5, x: Any = None, max_samples: int = 2048) -> None:
        super().__init__()
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.x, self.max_samples = threshold, x, max_samples
        self.fractions: dict[str, list[float]] = {}
        self._warned: set[str] = set()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from .autograd import Tensor, no_grad

        data = self.x if self.x is not None else self.model.train_inputs
        if data is None:
            return
        h = Tensor(np.asarray(data)[: self.max_samples])
        with no_grad():
            for layer in self.model.layers:
                h = layer(h)
                if layer.output_activation() != "relu":
                    continue
                out = h.data.reshape(len(h.data), -1)
                fraction = float(np.mean(np.all(out <= 0, axis=0))) if len(out) else 0.0
                self.fractions.setdefault(layer.name, []).append(fraction)
                if fraction >= self.threshold and layer.name not in self._warned:
                    self._warned.add(layer.name)
                    dead = int(round(fraction * out.shape[1]))
                    warn_at_caller(
                        f"{fraction:.0%} of the units of layer {layer.name!r} (relu; {dead} of "
                        f"{out.shape[1]}) output zero for every one of the {len(out)} samples "
                        f"checked (dead ReLUs): they get no gradient and cannot recover. Try "
                        f"leaky_relu or elu, a smaller learning rate, or He initialization "
                        f"(kernel_initializer='he_normal').",
                        DeadUnitWarning,
                    )


class LivePlot(Callback):
    """Redraws the training curves every `every` epochs: in a notebook in place, elsewhere
    into `.figure` (a matplotlib Figure) without blocking training."""

    def __init__(self, every: int = 1, metrics: Sequence[str] | None = None) -> None:
        super().__init__()
        self.every, self.metrics = every, metrics
        self.logs: dict[str, list[float]] = {}
        self.epoch_ends: list[int] = []
        self.figure = None
        self.draws = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(value)
        batches = self.model.history.batch_history if self.model.history else {}
        self.epoch_ends.append(len(batches.get("loss", ())))
        if (epoch + 1) % self.every:
            return
        from . import viz

        self.figure = viz.plot_history({"history": self.logs, "batch_history": batches,
                                        "epoch_ends": self.epoch_ends}, metrics=self.metrics)
        self.draws += 1
        try:
            from IPython import get_ipython
            from IPython.display import clear_output, display
        except ImportError:
            return
        if get_ipython() is not None:
            clear_output(wait=True)
            display(self.figure)
