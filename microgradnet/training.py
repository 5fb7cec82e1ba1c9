"""The eager half of Sequential.fit, the batch pieces evaluate shares, find_nonfinite.

`Epochs.run` trains epoch by epoch: through autograd, or through the captured step one call
per epoch (or per batch, when a callback or a metric looks at every batch). It calls the
callbacks, records every batch in the History and scores the validation set after each epoch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import callbacks as cbks
from . import fastpath
from .autograd import Tensor, no_grad
from .random import generator

__all__ = ["batch_metrics", "batch_sizes", "Epochs", "evaluate", "find_nonfinite", "forward_loss",
           "regularization", "setup"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def setup(model: Any) -> None:
    """Choose the fused loss for the model's output and build the optimizer for its weights."""
    last = model.layers[-1]
    model._fused_loss = model.loss.fused(last.output_activation())
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


class Epochs:
    """One fit's training set in batches, trained epoch by epoch."""

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                 batch_size: int) -> None:
        self.model = model
        self.x, self.y, self.weights = x, y, weights
        self.batch_size = batch_size
        self.steps = math.ceil(len(x) / batch_size)  # batches per epoch
        self.params = model.parameters()
        self.optimizer = model.optimizer

    def run(self, cb: cbks.CallbackList, fast: Any, captured_xy: tuple | None, epochs: range,
            shuffle: bool, val: tuple | None) -> None:
        """Train the epochs until done or model.stop_training: through autograd, or through
        the captured step `fast` (reading `captured_xy`) when it is not None."""
        model = self.model
        n, steps, batch_size = len(self.x), self.steps, self.batch_size
        per_batch = cb.wants_batches or bool(model.metrics)
        for epoch in epochs:
            cb.call("on_epoch_begin", epoch, {})
            order = generator().permutation(n) if shuffle else None
            if fast is not None and not per_batch:
                orders = None if order is None else order.reshape(1, n)
                losses = fast.run(*captured_xy, orders, 0, steps)
                model.history.record_batches(losses)
                sums = {"loss": float(losses @ batch_sizes(n, batch_size, steps))}
                seen = n
            else:
                sums, seen = self._batches(cb, fast, captured_xy, order)
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
                 order: np.ndarray | None) -> tuple[dict[str, float], int]:
        """One epoch batch by batch, in `order` (None: as given): (summed logs, samples)."""
        model, history = self.model, self.model.history
        x, y, weights, batch_size = self.x, self.y, self.weights, self.batch_size
        params, opt = self.params, self.optimizer
        xf, yf = captured_xy or (None, None)
        orders = None if order is None else order.reshape(1, len(x))
        sums: dict[str, float] = {}
        seen = 0
        for step in range(self.steps):
            if order is None:
                sl = slice(step * batch_size, (step + 1) * batch_size)
                xb, yb = x[sl], y[sl]
                wb = None if weights is None else weights[sl]
            else:
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                wb = None if weights is None else weights[idx]
            if cb.wants_batches:
                cb.call("on_batch_begin", step, {"batch": step, "size": len(xb)})
            model._last_batch = xb
            if fast is not None:
                logs = {"loss": float(fast.run(xf, yf, orders, step, step + 1)[0])}
                out = fast.output(len(xb)) if model.metrics else None
            else:
                # In the captured step's floating-point mode: the same bits.
                with fastpath.training_fpenv():
                    loss, out = forward_loss(model, xb, yb, wb, True)
                    reg = regularization(model)
                    total = loss if reg is None else loss + reg
                    for p in params:
                        p.grad = None
                    total.backward()
                    opt.step()
                logs = {"loss": float(total.data)}
            size = len(xb)
            seen += size
            sums["loss"] = sums.get("loss", 0.0) + logs["loss"] * size
            if model.metrics:
                for name, values in batch_metrics(model, yb, out).items():
                    logs[name] = float(values.mean())
                    sums[name] = sums.get(name, 0.0) + float(values.sum())
            history.record_batch(logs)
            if cb.wants_batches:
                cb.call("on_batch_end", step, logs)
            if model.stop_training:
                break
        return sums, seen
