"""The captured step of one model and batch size: a trainer.Plan, and the tensors and
optimizer state it trains."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..autograd import _bump_version as bump_version
from .capture import describe
from .fpenv import get_flush_denormal, trainer

__all__ = ["captured_step", "CapturedStep"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


class CapturedStep:
    """A plan for one model and batch size, and the tensors it trains."""

    def __init__(self, model: Any, batch_size: int) -> None:
        got = describe(model)
        if isinstance(got, str):
            raise ValueError(f"this model's training step cannot be captured: {got}")
        self.drops = got.dropouts
        self.key = got.key(batch_size, model.optimizer)
        self.model = model
        self.dtype = got.dtype
        self.loss = got.loss
        self.params = got.params
        self.out_dim = got.layers[-1].units
        self.plan = trainer().Plan(self.dtype, [s.as_plan_tuple() for s in got.layers],
                                   self.loss, batch_size, output_logits=got.output_logits)
        self.batch_size = batch_size
        self.recorded = 0
        # The losses of the steps a run did when an exception (a signal handler's: Plan.run
        # polls them) came out of it; None when none came or no step ran.
        self.stopped_losses: np.ndarray | None = None
        # The last run's counted accuracies, (steps, kinds) int64 (of the steps it did).
        self.counts: np.ndarray | None = None
        # Tensors over the plan's gradient buffers, given to the parameters' .grad after
        # each run: callbacks (GradientMonitor) see the gradients as on the eager path.
        self._grads = [None if p is None else Tensor._wrap(g)
                       for p, g in zip(self.params, self.plan.gradients(), strict=True)]

    def run(self, x: np.ndarray, y: np.ndarray, orders: np.ndarray | None, first: int,
            last: int, shuffle_with: np.random.Generator | None = None,
            record: tuple | None = None,
            record_weights: tuple | None = None, _lrs: np.ndarray | None = None,
            counted: tuple = ()) -> np.ndarray:
        """Train steps [first, last) of the run; return their losses (float64).

        Each epoch takes its samples in the order of its row of `orders`, or in the order
        shuffle_with.permutation(n) gives (drawn in C), or in order. record: (rows, every,
        phase, out), the model's outputs for rows after every `every`-th step into out
        (Plan.run); self.recorded then says how many were written. record_weights: (every,
        phase, outs), copies of the parameters likewise into outs, one array (snapshots,
        *shape) per parameter in self.params (None where a bias is missing). counted:
        the accuracy kinds (capture.counted_accuracies) whose counts of right samples per
        step go to self.counts, (steps, len(counted)) int64.
        """
        opt = self.model.optimizer
        lrs = _lrs
        if lrs is None and opt.has_schedule:
            lrs = self._scheduled_rates(x, y, orders, first, last, shuffle_with)
        lr = math.nan if lrs is not None else opt.learning_rate_at(opt.iterations)
        per_epoch = -(-len(x) // self.batch_size)
        losses = np.empty(last - first, np.float64)
        sparse = self.loss == "sparse_softmax_xent"
        params = [None if p is None else p.data for p in self.params]
        states = opt.states_for(self.params)
        self.stopped_losses = None
        counts = np.zeros((last - first, len(counted)), np.int64)
        self.counts = counts
        try:
            self.recorded = self.plan.run(
                x, None if sparse else y, y if sparse else None, orders, first, last,
                per_epoch, params, states, opt.rule, {"lr": lr, **opt.update_arguments()},
                opt.iterations, losses, get_flush_denormal(), shuffle_with, record,
                record_weights, lrs, [None if d is None else d.rng for d in self.drops],
                (counted, counts) if counted else None)
        except BaseException:
            # A signal handler raised (Ctrl-C) after some steps: they are trained, count them.
            done = self.plan.steps_done
            if done:
                self._trained(done)
                self.stopped_losses = losses[:done]
                self.counts = counts[:done]
            raise
        self._trained(last - first)
        return losses

    def _trained(self, steps: int) -> None:
        """The optimizer counts the steps a run did; the parameters' .grad are the last's."""
        self.model.optimizer.iterations += steps
        for p, g in zip(self.params, self._grads, strict=True):
            if p is not None:
                p.grad = g
                bump_version(p, steps)  # updated in place once a step, as eagerly

    def _scheduled_rates(self, x: np.ndarray, y: np.ndarray, orders: np.ndarray | None,
                         first: int, last: int,
                         shuffle_with: np.random.Generator | None) -> np.ndarray:
        """The schedule at each step's iteration, asked in order before the run (a schedule
        of the step: its answers depend on the step alone). If it fails at one, the steps
        before it are trained, then the error is raised: the weights and the iteration count
        are eager's, but not the rest (eager would have drawn that step's shuffle and Dropout
        masks already; the recorders miss the segment's snapshots)."""
        opt = self.model.optimizer
        lrs = np.empty(last - first, np.float64)
        for j in range(last - first):
            try:
                lrs[j] = opt.learning_rate_at(opt.iterations + j)
            except Exception:
                if j:
                    self.run(x, y, orders, first, first + j, shuffle_with,
                             _lrs=lrs[:j].copy())
                raise
        return lrs

    def output(self, rows: int) -> np.ndarray:
        """The model's output for the last batch trained (as the model gives it: activated,
        or the logits of a loss from_logits)."""
        return self.plan.output(rows)


def captured_step(model: Any, batch_size: int) -> CapturedStep | None:
    """The model's captured step for this batch size (cached), or None if not capturable."""
    got = describe(model)
    if isinstance(got, str):
        return None
    key = got.key(batch_size, model.optimizer)
    cached = getattr(model, "_captured", None)
    if cached is not None and cached.key == key:
        return cached
    step = CapturedStep(model, batch_size)
    model._captured = step
    return step
