"""The driver of a captured fit: `Sequential.fit` hands it the run when the model can be
captured and only History and recorders listen between batches.

It trains through the captured step in as few calls as the callbacks allow, records what
the recorders ask for inside those calls, and gives History and the callbacks the batches
and epoch ends in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import callbacks as cbks
from ..random import generator
from .capture import counted_accuracies, explain, shuffles_like_numpy
from .step import CapturedStep, captured_step

__all__ = ["batch_accuracies", "captured_inputs", "counted_metrics", "epoch_accuracies",
           "fit_captured", "runs_between_callbacks", "summed"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def captured_inputs(model: Any, batch_size: int, x: np.ndarray, y: np.ndarray,
                    weights: np.ndarray | None) -> tuple | None:
    """(x, y) as the captured step reads them, with the step in model._captured; or None
    when fit runs eagerly (jit_compile=False, or the model cannot be captured)."""
    if not model.jit_compile:
        return None
    why = None
    if weights is not None:
        why = "sample and class weights are not captured"
    else:
        # A batch larger than the data is all of it (eager slices that): the plan's buffers
        # need no more rows.
        step = captured_step(model, min(batch_size, len(x)))
        if step is None:
            why = explain(model)
        elif x.dtype != step.dtype:
            why = f"x has dtype {x.dtype}, the parameters {np.dtype(step.dtype)}"
    if why is not None:
        if model.jit_compile is True:
            raise ValueError(f"fit: jit_compile=True, but {why}")
        return None
    if step.loss != "sparse_softmax_xent":
        y = y.astype(step.dtype, copy=False)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def counted_metrics(model: Any, step: CapturedStep | None) -> tuple[str, ...] | None:
    """The accuracy kinds the captured step counts for model.metrics, in their order (()
    for no metrics); None when a metric is computed in Python between batches."""
    if not model.metrics:
        return ()
    if step is None:
        return None
    got = counted_accuracies(model.metrics, step.loss, step.out_dim)
    return None if isinstance(got, str) else got


def batch_accuracies(model: Any, counts: np.ndarray, sizes: np.ndarray) -> dict[str, list]:
    """Each metric's value on each batch of a run, by name, from the counts of its right
    samples per batch (steps, metrics) and the batches' sizes: count / size is the mean of
    the 0s and 1s numpy's metric gives, to the bit."""
    return {name: (counts[:, j] / sizes).tolist()
            for j, (name, _) in enumerate(model.metrics)}


def epoch_accuracies(model: Any, epoch_counts: np.ndarray, n: int) -> dict[str, list]:
    """Each metric's value on each epoch, by name, from the epochs' summed counts (epochs,
    metrics): the right samples over the epoch's n."""
    return {name: (epoch_counts[:, j] / n).tolist()
            for j, (name, _) in enumerate(model.metrics)}


def runs_between_callbacks(model: Any, cb: cbks.CallbackList, validation: Any) -> bool:
    """Whether fit can hand the whole run to fit_captured: no validation, no metric but
    those the captured step counts, and only callbacks that follow captured runs
    (Callback.follows_captured_runs)."""
    step = getattr(model, "_captured", None)
    return (counted_metrics(model, step) is not None and validation is None
            and not cb.hooked("on_epoch_begin") and not cb.hooked("on_batch_begin")
            and all(c.follows_captured_runs() for c in cb.callbacks))


@dataclass
class _Run:
    """One captured fit: the step, the data, and how its steps fall into epochs."""

    step: CapturedStep
    x: np.ndarray
    y: np.ndarray
    batch_size: int
    steps: int  # per epoch
    orders: np.ndarray | None  # the epochs' orders drawn in Python, or
    rng: Any  # the generator the run draws them from in C, or None (no shuffle)

    @property
    def n(self) -> int:
        return len(self.x)

    def last_batch(self, step: int) -> np.ndarray:
        """The rows of step `step` of the run (for find_nonfinite)."""
        epoch, b = divmod(step, self.steps)
        rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
        if self.rng is not None:
            return self.x[self.step.plan.last_order()[rows]]
        if self.orders is not None:
            return self.x[self.orders[epoch][rows]]
        return self.x[rows]


class _Recorders:
    """The recorders that record inside the run, in C: one PredictionRecorder (its
    predictions) and one WeightRecorder by batches (copies of the parameters)."""

    def __init__(self, model: Any, step: CapturedStep, followers: list, in_dim: int) -> None:
        self.step = step
        self.rec = next((c for c in followers if type(c) is cbks.PredictionRecorder), None)
        self.rows = None
        if self.rec is not None:
            self.rows = np.ascontiguousarray(
                model._prepare(self.rec.x, None, "PredictionRecorder")[0], dtype=step.dtype)
            if len(self.rows):
                followers.remove(self.rec)
            else:  # nothing to compute: it follows in Python, as the others
                self.rec = None
        self.wrec = next((c for c in followers if type(c) is cbks.WeightRecorder
                          and c.follows_captured_runs()), None)
        if self.wrec is not None:
            followers.remove(self.wrec)
        self.out_shape = model.layers_output_shape((None, in_dim))[1:]
        self.outputs: np.ndarray | None = None
        self.weights: list | None = None

    @property
    def in_c(self) -> tuple:
        """They see the run in C: no live hooks for them."""
        return (self.rec, self.wrec)

    def plan_arguments(self, k: int) -> dict:
        """The record and record_weights arguments of a run of k steps."""
        args: dict = {"record": None, "record_weights": None}
        dtype = self.step.dtype
        if self.rec is not None:
            wanted = len(self.rec.snapshot_steps(k))
            self.outputs = np.empty((wanted, len(self.rows), *self.out_shape), dtype)
            args["record"] = (self.rows, self.rec.every, self.rec.batches_done, self.outputs)
        if self.wrec is not None:
            wanted = len(self.wrec.snapshot_steps(k))
            self.weights = [None if p is None else np.empty((wanted, *p.shape), dtype)
                            for p in self.step.params]
            args["record_weights"] = (self.wrec.every, self.wrec.batches_done, self.weights)
        return args

    def hand_over(self, losses: np.ndarray, epochs_ended: int) -> None:
        """Give the recorders what the run recorded for them, and its batches."""
        k = len(losses)
        if self.rec is not None:
            steps = self.rec.snapshot_steps(k)  # fewer than planned when a signal stopped it
            self.rec.add_snapshots(steps, list(self.outputs[:len(steps)]))
        if self.wrec is not None:
            steps = self.wrec.snapshot_steps(k)
            kept = [o for o in self.weights if o is not None]  # get_weights() has no None
            self.wrec.add_snapshots(steps, [[o[i].copy() for o in kept]
                                            for i in range(len(steps))])
        for r in self.in_c:
            if r is not None:  # it saw every batch and epoch end of the run, in C
                r.on_batches_end(losses, epochs_ended)


def _epoch_orders(n: int, count: int, shuffle: bool) -> tuple[np.ndarray | None, Any]:
    """(orders drawn now, or the generator the run draws them from in C)."""
    if not (shuffle and count):
        return None, None
    # The same draws as the epoch loop's, one permutation(n) per epoch, in order: in C
    # from the same generator when that gives numpy's permutations.
    if shuffles_like_numpy():
        return None, generator()
    return np.stack([generator().permutation(n) for _ in range(count)]), None


def summed(w: np.ndarray, start: float = 0.0) -> float:
    """start + w[0] + w[1] + ..., left to right: the order in which the batch-by-batch path
    (training.Epochs) sums an epoch's loss x samples, which fixes the bits of the sum."""
    if not len(w):
        return start
    return float(np.cumsum(np.concatenate(([start], w)))[-1])  # accumulate: left to right


def _row_sums(rows: np.ndarray) -> np.ndarray:
    """summed() of each row of a 2-D array, in as few numpy calls as the shorter side."""
    if len(rows) >= rows.shape[1]:
        total = rows[:, 0] + 0.0  # 0.0 + w[0], as summed(): -0.0 becomes +0.0
        for j in range(1, rows.shape[1]):
            total += rows[:, j]
        return total
    return np.array([summed(r) for r in rows])


class _EpochSums:
    """The summed loss x samples of the epochs a run's segments end, and of the open one,
    each summed left to right as the batch-by-batch path sums it (summed())."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.last_size = run.n - (run.steps - 1) * run.batch_size  # the last batch may be short
        self.carry, self.carry_seen = 0.0, 0
        self.carry_counts: np.ndarray | None = None  # the open epoch's counted accuracies

    def _ends(self, k: int, done: int) -> np.ndarray:
        """The indices, among the k steps from `done`, of the epochs' last batches."""
        steps = self.run.steps
        return np.arange(steps - 1 - done % steps, k, steps)

    def sizes(self, k: int, done: int) -> np.ndarray:
        """The sizes of the segment's k batches from `done` (each epoch's last may be short)."""
        sizes = np.full(k, self.run.batch_size, np.int64)
        sizes[self._ends(k, done)] = self.last_size
        return sizes

    def count_segment(self, counts: np.ndarray, done: int) -> np.ndarray:
        """The summed counts (epochs, metrics) of the epochs the segment of the counts of
        steps from `done` ends (segment's ends); the open epoch's are carried on."""
        k = len(counts)
        ends = self._ends(k, done)
        cum = np.cumsum(counts, axis=0)
        if self.carry_counts is None:
            self.carry_counts = np.zeros(counts.shape[1], np.int64)
        if not len(ends):
            if k:
                self.carry_counts = self.carry_counts + cum[-1]
            return np.zeros((0, counts.shape[1]), np.int64)
        at_ends = cum[ends]
        sums = at_ends.copy()
        sums[1:] -= at_ends[:-1]
        sums[0] += self.carry_counts
        self.carry_counts = cum[-1] - at_ends[-1]
        return sums

    def open_epoch_metrics(self, model: Any) -> dict[str, float]:
        """The open epoch's metrics so far, as its loss (open_epoch_loss)."""
        if self.carry_counts is None:
            return {}
        seen = max(self.carry_seen, 1)
        return {name: float(self.carry_counts[j]) / seen
                for j, (name, _) in enumerate(model.metrics)}

    def segment(self, losses: np.ndarray, done: int) -> tuple[np.ndarray, np.ndarray]:
        """(the indices in the segment of the epochs' last batches, their epochs' summed
        losses) for the k steps from `done`; the open epoch's part is carried on."""
        k, steps, batch_size = len(losses), self.run.steps, self.run.batch_size
        ends = self._ends(k, done)
        w = losses * batch_size
        if self.last_size != batch_size:
            w[ends] = losses[ends] * self.last_size
        if not len(ends):
            self.carry = summed(w, self.carry)
            self.carry_seen += k * batch_size
            return ends, np.zeros(0)
        first, last = int(ends[0]), int(ends[-1])
        sums = np.empty(len(ends))
        sums[0] = summed(w[:first + 1], self.carry)
        if len(ends) > 1:  # the whole epochs after the first: `steps` batches each
            sums[1:] = _row_sums(w[first + 1:last + 1].reshape(-1, steps))
        self.carry = summed(w[last + 1:])
        self.carry_seen = (k - 1 - last) * batch_size
        return ends, sums

    @property
    def open_epoch_loss(self) -> float:
        return self.carry / max(self.carry_seen, 1)


def fit_captured(model: Any, step: CapturedStep, x: np.ndarray, y: np.ndarray, n: int,
                 batch_size: int, steps: int, initial_epoch: int, epochs: int, shuffle: bool,
                 cb: cbks.CallbackList, history: cbks.History) -> None:
    """Train through the captured step in as few calls as the callbacks allow.

    Every callback follows captured runs (Callback.follows_captured_runs): each call to
    C runs to the next batch at which one of them looks at the model. The batches and
    epoch ends in between are handed over in bulk; the segment's last batch, and an
    epoch that ends with it, go through the hooks live."""
    count = max(0, epochs - initial_epoch)
    total = count * steps
    orders, rng = _epoch_orders(n, count, shuffle)
    run = _Run(step, x, y, batch_size, steps, orders, rng)
    followers = [c for c in cb.callbacks if c is not history]
    recorders = _Recorders(model, step, followers, x.shape[1])
    sums = _EpochSums(run)
    counted = counted_metrics(model, step)  # not None: runs_between_callbacks said so
    names = [name for name, _ in model.metrics]
    done = 0
    while done < total:
        k = max(1, min([total - done, *(c.batches_until_live() for c in followers)]))
        if not model.optimizer.rates_known_ahead:
            k = 1  # a schedule of no argument, set by a callback: asked before each step
        try:
            losses = step.run(x, y, orders, done, done + k, shuffle_with=rng,
                              **recorders.plan_arguments(k), counted=counted)
        except BaseException:
            if step.stopped_losses is not None:  # a signal stopped the run after some steps
                _hand_over_stopped(model, run, sums, history, followers, recorders,
                                   step.stopped_losses, step.counts, done, initial_epoch)
            raise
        counts, sizes, epoch_counts = step.counts, None, None
        if names:  # the batches' sizes and the epochs' counts, for the metrics' values
            sizes = sums.sizes(k, done)
            epoch_counts = sums.count_segment(counts, done)
        ends, epoch_sums = sums.segment(losses, done)
        epoch0 = initial_epoch + done // steps
        live_end = len(ends) and ends[-1] == k - 1
        nbulk = len(ends) - 1 if live_end else len(ends)
        history.record_batches(losses, batch_accuracies(model, counts, sizes) if names else None)
        history.record_epochs(list(range(epoch0, epoch0 + nbulk)),
                              (ends[:nbulk] + (done + 1)).tolist(),
                              (epoch_sums[:nbulk] / n).tolist(),
                              epoch_accuracies(model, epoch_counts[:nbulk], n) if names else None)
        for c in followers:
            c.on_batches_end(losses[:-1], nbulk)
        recorders.hand_over(losses, len(ends))
        done += k
        model._last_batch = run.last_batch(done - 1)
        batch_logs = {"loss": float(losses[-1])}
        batch_logs.update({name: float(counts[-1, j] / sizes[-1])
                           for j, name in enumerate(names)})
        cb.call("on_batch_end", (done - 1) % steps, batch_logs, skip=recorders.in_c)
        if live_end:
            epoch_logs = {"loss": float(epoch_sums[-1]) / n}
            epoch_logs.update({name: float(epoch_counts[-1, j]) / n
                               for j, name in enumerate(names)})
            cb.call("on_epoch_end", epoch0 + len(ends) - 1, epoch_logs, skip=recorders.in_c)
        elif model.stop_training:  # stopped within an epoch: it ends here, as eagerly
            cb.call("on_epoch_end", initial_epoch + (done - 1) // steps,
                    {"loss": sums.open_epoch_loss, **sums.open_epoch_metrics(model)},
                    skip=recorders.in_c)
        if model.stop_training:
            return


def _hand_over_stopped(model: Any, run: _Run, sums: _EpochSums, history: cbks.History,
                       followers: list, recorders: _Recorders, losses: np.ndarray,
                       counts: np.ndarray, done: int, initial_epoch: int) -> None:
    """After a run stopped early (Ctrl-C), History, the callbacks and the recorders get its
    steps and the epochs they ended, as the eager loop had given them when interrupted
    there. None of them was the segment's live batch: all go in bulk."""
    epoch_counts = sums.count_segment(counts, done)
    ends, epoch_sums = sums.segment(losses, done)
    epoch0 = initial_epoch + done // run.steps
    history.record_batches(losses, batch_accuracies(model, counts,
                                                    sums.sizes(len(losses), done)))
    history.record_epochs(list(range(epoch0, epoch0 + len(ends))),
                          (ends + (done + 1)).tolist(), (epoch_sums / run.n).tolist(),
                          epoch_accuracies(model, epoch_counts, run.n))
    for c in followers:
        c.on_batches_end(losses, len(ends))
    recorders.hand_over(losses, len(ends))
    model._last_batch = run.last_batch(done + len(losses) - 1)
