"""The eager half of Sequential.fit, the batch pieces evaluate shares, find_nonfinite.

`Epochs.run` trains epoch by epoch: through autograd, or through the captured step one call
per epoch (or per batch, when a callback looks at every batch or a metric is not one of the
accuracies the captured step counts). It calls the callbacks, records every batch in the
History and scores the validation set after each epoch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import callbacks as cbks
from . import fastpath
from .autograd import Tensor, no_grad
from .fastpath.driver import summed
from .random import generator

__all__ = ["batch_metrics", "batch_sizes", "Epochs", "evaluate", "find_nonfinite", "forward_loss",
           "regularization", "setup", "train_step"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def setup(model: Any, build_optimizer: bool = True) -> None:
    """Choose the fused loss for the model's output and build the optimizer for its weights
    (evaluate needs no optimizer: one built for another model's weights must not stop it)."""
    last = model.layers[-1]
    model._fused_loss = model.loss.fused(last.output_activation())
    if not build_optimizer:
        return
    params = model.parameters()
    built_for = model._optimizer_params
    if built_for is None or len(built_for) != len(params) or any(
        a is not b for a, b in zip(built_for, params, strict=True)
    ):
        model.optimizer.build(params)
        model._optimizer_params = params


def forward_loss(model: Any, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None,
                 training: bool) -> tuple[Tensor, np.ndarray]:
    """(loss, output array) for one batch, through the fused loss when the output
    activation and the loss have one."""
    h = Tensor._wrap(xb)
    for layer in model.layers[:-1]:
        h = layer(h, training)
    last = model.layers[-1]
    fused = model._fused_loss
    if fused is not None:
        logits = last.pre_activation(h, training)
        loss = fused(yb, logits, wb)
        out = fused.activate(logits.data) if model.metrics else None
    else:
        out_t = last(h, training)
        loss = model.loss(yb, out_t, wb)
        out = out_t.data
    return loss, out


def regularization(model: Any) -> Tensor | None:
    """The sum of the layers' regularization losses, or None when no layer has one."""
    total = None
    for layer in model.layers:
        term = layer.regularization_loss()
        if term is not None:
            total = term if total is None else total + term
    return total


def batch_metrics(model: Any, yb: np.ndarray, out: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric's values on one batch, by name."""
    return {name: np.asarray(fn(yb, out), dtype=np.float64) for name, fn in model.metrics}


def batch_sizes(n: int, batch_size: int, steps: int) -> np.ndarray:
    """The number of samples in each batch of an epoch (the last one may be short)."""
    sizes = np.full(steps, batch_size, np.float64)
    if steps:
        sizes[-1] = n - (steps - 1) * batch_size
    return sizes


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray | None,
             batch_size: int) -> dict[str, float]:
    """The mean loss (with regularization) and metrics over (x, y), without a graph."""
    sums: dict[str, float] = {}
    n = len(x)
    with no_grad():
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            wb = None if w is None else w[start:start + batch_size]
            loss, out = forward_loss(model, xb, yb, wb, False)
            reg = regularization(model)
            value = float(loss.data) + (float(reg.data) if reg is not None else 0.0)
            sums["loss"] = sums.get("loss", 0.0) + value * len(xb)
            for name, values in batch_metrics(model, yb, out).items():
                sums[name] = sums.get(name, 0.0) + float(values.sum())
    return {k: v / n for k, v in sums.items()}


def train_step(model: Any, params: list[Tensor], xb: np.ndarray, yb: np.ndarray,
               wb: np.ndarray | None) -> tuple[float, np.ndarray | None]:
    """One eager training step on a batch: forward, loss with regularization, backward and
    the optimizer's update. Returns the loss and, when the model has metrics, its outputs."""
    # In the captured step's floating-point mode: the same bits.
    with fastpath.training_fpenv():
        loss, out = forward_loss(model, xb, yb, wb, True)
        reg = regularization(model)
        total = loss if reg is None else loss + reg
        for p in params:
            p.grad = None
        total.backward()
        model.optimizer.step()
    return float(total.data), out


def find_nonfinite(layers: list, batch: np.ndarray | None) -> str:
    """Where `batch`, the last one trained on, first went non-finite through `layers`:
    a layer's output or a weight's gradient."""
    if batch is None:
        return "no batch has run yet"
    with no_grad():
        h = Tensor._wrap(batch)
        if not np.isfinite(h.data).all():
            return "the input batch is not finite"
        for layer in layers:
            h = layer(h, training=False)
            if not np.isfinite(h.data).all():
                return f"the output of layer {layer.name!r} is the first that is not finite"
    for layer in layers:
        for name, w in zip(layer.weight_names, layer.weights, strict=True):
            if not np.isfinite(w.data).all():
                return f"weight {name!r} is not finite"
            if w.grad is not None and not np.isfinite(w.grad.data).all():
                return f"the gradient of {name!r} is the first that is not finite"
    return "the loss alone is not finite (outputs and gradients are)"


def _captured_now(fast: Any, optimizer: Any) -> bool:
    """Whether the next steps go through the captured step: a callback may have given the
    optimizer a schedule of no argument since fit began (answers known only step by step),
    and those steps train eagerly, with the same results."""
    return fast is not None and optimizer.rates_known_ahead


class Epochs:
    """One fit's training set in batches, trained epoch by epoch.

    An epoch is a pass over the data or, with steps_per_epoch, that many batches of a pass:
    as Keras does with arrays, each epoch goes on where the last one stopped, an epoch ends
    early where its pass ends, and the next epoch starts a new pass (shuffled anew).
    """

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                 batch_size: int, steps_per_epoch: int | None = None) -> None:
        self.model = model
        self.x, self.y, self.weights = x, y, weights
        self.batch_size = batch_size
        self.pass_steps = math.ceil(len(x) / batch_size)  # batches in a pass over the data
        self.steps = steps_per_epoch or self.pass_steps  # batches per epoch
        self.params = model.parameters()
        self._order: np.ndarray | None = None  # the order of the pass in progress
        self._next = 0  # its next batch

    def run(self, cb: cbks.CallbackList, fast: Any, captured_xy: tuple | None, epochs: range,
            shuffle: bool, val: tuple | None) -> None:
        """Train the epochs until done or model.stop_training: through autograd, or through
        the captured step `fast` (reading `captured_xy`) when it is not None."""
        model = self.model
        n, batch_size, pass_steps = len(self.x), self.batch_size, self.pass_steps
        # Accuracies are counted inside the captured run; other metrics need every batch.
        counted = fastpath.counted_metrics(model, fast)
        per_batch = cb.wants_batches or counted is None
        for epoch in epochs:
            cb.call("on_epoch_begin", epoch, {})
            if self._next == 0:
                self._order = generator().permutation(n) if shuffle else None
            order, first = self._order, self._next
            last = min(first + self.steps, pass_steps)
            if _captured_now(fast, model.optimizer) and not per_batch:
                orders = None if order is None else order.reshape(1, n)
                sizes = batch_sizes(n, batch_size, pass_steps)[first:last]
                try:
                    losses = fast.run(*captured_xy, orders, first, last, counted=counted)
                except BaseException:  # Ctrl-C: History keeps the batches trained
                    if fast.stopped_losses is not None:
                        stopped = fast.stopped_losses
                        model.history.record_batches(stopped, fastpath.batch_accuracies(
                            model, fast.counts, sizes[:len(stopped)]))
                    raise
                model.history.record_batches(
                    losses, fastpath.batch_accuracies(model, fast.counts, sizes))
                sums = {"loss": summed(losses * sizes)}
                # sums of 0s and 1s: exact, as the batch-by-batch sums of numpy's values
                sums.update({name: float(fast.counts[:, j].sum())
                             for j, (name, _) in enumerate(model.metrics)})
                seen, done = int(sizes.sum()), last
            else:
                sums, seen, done = self._batches(cb, fast, captured_xy, order, first, last)
            # Without steps_per_epoch every epoch is a new pass, even one cut short.
            self._next = done if self.steps < pass_steps and done < pass_steps else 0
            epoch_logs = {k: v / max(seen, 1) for k, v in sums.items()}
            # As Keras: an epoch cut short by stop_training is still validated.
            if val is not None:
                val_logs = model.evaluate(val[0], val[1], batch_size=batch_size, verbose=0,
                                          return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cb.call("on_epoch_end", epoch, epoch_logs)
            if model.stop_training:
                break

    def _batches(self, cb: cbks.CallbackList, fast: Any, captured_xy: tuple | None,
                 order: np.ndarray | None, first: int,
                 last: int) -> tuple[dict[str, float], int, int]:
        """Batches [first, last) of a pass in `order` (None: as given), one by one:
        (summed logs, samples, the batch after the last one trained)."""
        model, history = self.model, self.model.history
        x, y, weights, batch_size = self.x, self.y, self.weights, self.batch_size
        params = self.params
        xf, yf = captured_xy or (None, None)
        orders = None if order is None else order.reshape(1, len(x))
        sums: dict[str, float] = {}
        seen = 0
        step = first - 1
        for step in range(first, last):
            batch = step - first  # the callbacks count batches from 0 in every epoch
            if order is None:
                sl = slice(step * batch_size, (step + 1) * batch_size)
                xb, yb = x[sl], y[sl]
                wb = None if weights is None else weights[sl]
            else:
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                wb = None if weights is None else weights[idx]
            if cb.wants_batches:
                cb.call("on_batch_begin", batch, {"batch": batch, "size": len(xb)})
            model._last_batch = xb
            if _captured_now(fast, model.optimizer):
                logs = {"loss": float(fast.run(xf, yf, orders, step, step + 1)[0])}
                out = fast.output(len(xb)) if model.metrics else None
            else:
                loss, out = train_step(model, params, xb, yb, wb)
                logs = {"loss": loss}
            size = len(xb)
            seen += size
            sums["loss"] = sums.get("loss", 0.0) + logs["loss"] * size
            if model.metrics:
                for name, values in batch_metrics(model, yb, out).items():
                    logs[name] = float(values.mean())
                    sums[name] = sums.get(name, 0.0) + float(values.sum())
            history.record_batch(logs)
            if cb.wants_batches:
                cb.call("on_batch_end", batch, logs)
            if model.stop_training:
                break
        return sums, seen, step + 1
