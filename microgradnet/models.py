"""Sequential: a stack of layers with Keras' compile / fit / evaluate / predict, and saving.

Saved files are numpy .npz archives read with allow_pickle=False: arrays and a JSON
description, never pickles, so loading a file cannot run code. Writes are atomic.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import warnings
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import callbacks as cbks
from . import fastpath
from . import layers as layers_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .autograd import Tensor, _to_numpy, no_grad
from .backend import kernels as K
from .layers import Input, Layer, check_weight_value
from .random import generator

_FORMAT = "microgradnet-1"


def _as_float(name: str, data: Any) -> np.ndarray:
    arr = _to_numpy(data)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension, got a scalar")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        row = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise ValueError(
            f"{name} contains NaN or infinite values (first in row {row}); clean the data first"
        )
    return arr


def _batch_size(what: str, value: Any, default: int) -> int:
    """A batch size: None (the default) or a positive int, else a clear ValueError."""
    if value is None:
        return default
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < 1):
        raise ValueError(f"{what}: batch_size must be a positive int, got {value!r}")
    return int(value)


class Sequential:
    """A linear stack of layers, trained with Keras' compile/fit/evaluate/predict."""

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        self.name = name or "sequential"
        self.layers: list[Layer] = []
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics: list[tuple[str, Any]] = []
        self.stop_training = False
        self.history: cbks.History | None = None
        self.train_inputs: np.ndarray | None = None  # fit's x, while it runs (for monitors)
        self._compile_config: dict | None = None
        self._last_batch: np.ndarray | None = None
        self._optimizer_params: list[Tensor] | None = None
        self.jit_compile: bool | str = "auto"
        self._captured: fastpath.CapturedStep | None = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure
    def add(self, layer: Layer) -> None:
        """Append a layer."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a Layer, got {type(layer).__name__}")
        if isinstance(layer, Input) and self.layers:
            raise ValueError("an Input layer can only come first")
        if any(existing is layer for existing in self.layers):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        self.layers.append(layer)
        if self.input_shape is not None:
            self.build()  # as Keras: with a known input shape, weights exist right away

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self.layers:
            raise ValueError("pop() on a model without layers")
        return self.layers.pop()

    @property
    def input_shape(self) -> tuple | None:
        """The input shape (batch dimension None) if the first layer declares one."""
        return self.layers[0].input_shape if self.layers else None

    @property
    def built(self) -> bool:
        """Whether every layer has made its weights."""
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Make every layer's weights for inputs of `input_shape` (batch dimension first)."""
        if not self.layers:
            raise ValueError("the model has no layers")
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(
                "the model does not know its input shape: give the first layer input_dim= or "
                "input_shape=, call build((None, features)), or fit it on data"
            )
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def output_shape(self) -> tuple:
        """The output shape for the model's input shape."""
        shape = self.input_shape
        if shape is None:
            raise ValueError("the model does not know its input shape yet")
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def __call__(self, x: Any, training: bool = False) -> Tensor:
        """Run the layers on a Tensor (recording the graph unless under no_grad)."""
        if not self.layers:
            raise ValueError("the model has no layers")
        out = x if isinstance(x, Tensor) else Tensor(x)
        for layer in self.layers:
            out = layer(out, training)
        return out

    # ------------------------------------------------------------------ weights
    def parameters(self) -> list[Tensor]:
        """All trainable weights, layer by layer."""
        return [p for layer in self.layers for p in layer.parameters()]

    @property
    def weights(self) -> list[Tensor]:
        """All weights (trainable and statistics), layer by layer, in Keras order."""
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights as numpy arrays, in Keras order."""
        return [w.data.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights from arrays in Keras order; nothing changes unless all fit."""
        current = self.weights
        if len(weights) != len(current):
            raise ValueError(f"the model has {len(current)} weights, got {len(weights)} arrays")
        owners = [(layer.name, name) for layer in self.layers for name in layer.weight_names]
        # Every array is checked before any is assigned: all or nothing.
        arrays = [check_weight_value(layer, name, w, new)
                  for (layer, name), w, new in zip(owners, current, weights, strict=True)]
        for w, new in zip(current, arrays, strict=True):
            w.data[...] = new

    def count_params(self) -> int:
        """The number of weight values."""
        return sum(layer.count_params() for layer in self.layers)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None, jit_compile: bool | str = "auto") -> None:
        """Choose the optimizer, the loss and the metrics reported during training.

        jit_compile: "auto" (default) lets fit run the captured training step in C when
        the model allows it (microgradnet.fastpath: same results, no Python per batch),
        True insists on it (fit raises, saying why, when it cannot), False always trains
        eagerly through autograd.
        """
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"compile: jit_compile must be True, False or 'auto', got "
                             f"{jit_compile!r}")
        self.jit_compile = jit_compile
        self._captured = None
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='mean_squared_error'; known: "
                + ", ".join(sorted(losses_module._BY_NAME))
            )
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self.metrics = [metrics_module.get(m) for m in (metrics or [])]
        self._compile_config = None
        try:
            # The optimizer's settings are read when saving (as Keras does): a learning-rate
            # schedule (a callable) trains fine and is only refused by get_config().
            self._compile_config = {
                "loss": losses_module.serialize(self.loss),
                "metrics": [m for m in (metrics or []) if isinstance(m, str)],
            }
        except ValueError:
            pass  # a custom loss: the model still trains, only its compile state is not saved
        self._optimizer_params: list[Tensor] | None = None

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise ValueError(f"compile the model before calling {what}(): model.compile("
                             f"optimizer='sgd', loss='mean_squared_error')")

    # ------------------------------------------------------------------ data
    def _prepare(self, x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Check and convert x (and y) against the model; clear errors for bad data."""
        if x is None:
            raise ValueError(f"{what}: x is missing")
        x = _as_float("x", x)
        if x.ndim == 1:
            if self.input_shape is None or tuple(self.input_shape[1:]) != (1,):
                expects = ("does not know its input shape" if self.input_shape is None else
                           f"expects inputs of shape {self.input_shape}")
                raise ValueError(
                    f"{what}: x is 1-D (shape {x.shape}) and the model {expects}: pass "
                    f"x.reshape(-1, 1) for {len(x)} samples of one feature, or x.reshape(1, -1) "
                    f"for one sample of {len(x)} features"
                )
            x = x.reshape(-1, 1)  # as Keras: n numbers are n samples of the one feature
        if self.input_shape is not None and x.shape[1:] != tuple(self.input_shape[1:]):
            raise ValueError(
                f"{what}: the model expects inputs of shape {self.input_shape} "
                f"({self.input_shape[-1]} features), got x of shape {x.shape}"
            )
        if not self.built:
            self.build((None, *x.shape[1:]))
        if y is None:
            return x, None
        sparse = getattr(self.loss, "sparse", False)
        y_arr = _to_numpy(y)
        if len(y_arr) != len(x):
            raise ValueError(f"{what}: x and y have different lengths: {len(x)} and {len(y_arr)}")
        out_shape = self.layers_output_shape(x.shape)
        if sparse:
            if y_arr.dtype.kind == "f" and not np.all(y_arr == np.round(y_arr)):
                raise ValueError(f"{what}: {self.loss.name} needs integer class labels in y")
            y_arr = y_arr.astype(np.int64)
            if y_arr.shape not in ((len(x),), (len(x), 1)):
                raise ValueError(
                    f"{what}: {self.loss.name} needs y of shape ({len(x)},) with class labels, "
                    f"got {y_arr.shape}"
                )
            if y_arr.size and (y_arr.min() < 0 or y_arr.max() >= out_shape[-1]):
                raise ValueError(
                    f"{what}: labels must be in [0, {out_shape[-1]}), got "
                    f"{y_arr.min()}..{y_arr.max()}"
                )
            return x, y_arr.reshape(-1)
        y_arr = _as_float("y", y_arr)
        fits = y_arr.shape[1:] == out_shape[1:] or (
            y_arr.ndim == 1 and out_shape[1:] == (1,)
        )
        if not fits:
            raise ValueError(
                f"{what}: y of shape {y_arr.shape} does not fit the model's output of shape "
                f"{(None, *out_shape[1:])}"
            )
        if y_arr.shape != (len(x), *out_shape[1:]):
            y_arr = y_arr.reshape(len(x), *out_shape[1:])
        return x, y_arr

    def layers_output_shape(self, input_shape: tuple) -> tuple:
        """The output shape for a given input shape."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    # ------------------------------------------------------------------ training
    def _forward_loss(self, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None,
                      training: bool) -> tuple[Tensor, np.ndarray]:
        """(loss, output array) for one batch, through the fused loss when the output
        activation and the loss have one."""
        h = Tensor._wrap(xb)
        for layer in self.layers[:-1]:
            h = layer(h, training)
        last = self.layers[-1]
        fused = self._fused_loss
        if fused is not None:
            logits = last.pre_activation(h, training)
            loss = fused(yb, logits, wb)
            out = _ACTIVATE[last.output_activation()](logits.data) if self.metrics else None
        else:
            out_t = last(h, training)
            loss = self.loss(yb, out_t, wb)
            out = out_t.data
        return loss, out

    def _regularization(self) -> Tensor | None:
        total = None
        for layer in self.layers:
            term = layer.regularization_loss()
            if term is not None:
                total = term if total is None else total + term
        return total

    def _setup_training(self) -> None:
        last = self.layers[-1]
        self._fused_loss = self.loss.fused(last.output_activation())
        if self._fused_loss is not None and last.output_activation() not in _ACTIVATE:
            self._fused_loss = None
        params = self.parameters()
        built_for = self._optimizer_params
        if built_for is None or len(built_for) != len(params) or any(
            a is not b for a, b in zip(built_for, params, strict=True)
        ):
            self.optimizer.build(params)
            self._optimizer_params = params

    def _batch_metrics(self, yb: np.ndarray, out: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.asarray(fn(yb, out), dtype=np.float64) for name, fn in self.metrics}

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: Sequence[cbks.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
    ) -> cbks.History:
        """Train for `epochs` passes over (x, y) in batches; return the History."""
        self._require_compiled("fit")
        if y is None:
            raise ValueError("fit: y is missing")
        batch_size = _batch_size("fit", batch_size, 32)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        x, y = self._prepare(x, y, "fit")
        weights = self._sample_weights(y, class_weight, sample_weight, len(x))
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2,
                                                                                          3):
                raise ValueError("fit: validation_data must be (x_val, y_val)")
            val = validation_data[:2]
        elif validation_split:
            # As Keras: the last samples, taken before any shuffling.
            split = int(len(x) * (1 - validation_split))
            if split == 0 or split == len(x):
                raise ValueError(f"fit: validation_split={validation_split} leaves an empty set "
                                 f"for {len(x)} samples")
            val = (x[split:], y[split:])
            x, y = x[:split], y[:split]
            weights = None if weights is None else weights[:split]
        n = len(x)
        if n == 0:
            raise ValueError("fit: no training samples")
        self._setup_training()
        steps = math.ceil(n / batch_size)
        history = cbks.History()
        user = list(callbacks or [])
        extra = [cbks.ProgbarLogger(verbose)] if verbose else []
        cb = cbks.CallbackList([*user, history, *extra], self,
                               {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.history = history
        self.train_inputs = x
        self.stop_training = False
        params = self.parameters()
        opt = self.optimizer
        try:
            cb.call("on_train_begin", {})
            fast = fastpath.captured_inputs(self, batch_size, x, y, weights)
            if fast is not None:
                xf, yf = fast
                fast = self._captured
            per_batch = cb.wants_batches or bool(self.metrics)
            if fast is not None and fastpath.runs_between_callbacks(self, cb, val):
                # Only History and recorders listen: one call to C from each batch where a
                # recorder looks at the model to the next (no callback: the whole run).
                fastpath.fit_captured(self, fast, xf, yf, n, batch_size, steps, initial_epoch,
                                      epochs, shuffle, cb, history)
                cb.call("on_train_end", {})
                return history
            for epoch in range(initial_epoch, epochs):
                cb.call("on_epoch_begin", epoch, {})
                order = generator().permutation(n) if shuffle else None
                orders = None if order is None else order.reshape(1, n)
                sums: dict[str, float] = {}
                seen = 0
                steps_run = steps
                if fast is not None and not per_batch:
                    losses = fast.run(xf, yf, orders, 0, steps)
                    history.record_batches(losses)
                    seen = n
                    sums["loss"] = float(losses @ _batch_sizes(n, batch_size, steps))
                    steps_run = 0  # the epoch is done: no batch loop
                for step in range(steps_run):
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
                    self._last_batch = xb
                    if fast is not None:
                        logs = {"loss": float(fast.run(xf, yf, orders, step, step + 1)[0])}
                        out = fast.output(len(xb)) if self.metrics else None
                    else:
                        # In the captured step's floating-point mode: the same bits.
                        with fastpath.training_fpenv():
                            loss, out = self._forward_loss(xb, yb, wb, True)
                            reg = self._regularization()
                            total = loss if reg is None else loss + reg
                            for p in params:
                                p.grad = None
                            total.backward()
                            opt.step()
                        logs = {"loss": float(total.data)}
                    size = len(xb)
                    seen += size
                    sums["loss"] = sums.get("loss", 0.0) + logs["loss"] * size
                    if self.metrics:
                        for name, values in self._batch_metrics(yb, out).items():
                            logs[name] = float(values.mean())
                            sums[name] = sums.get(name, 0.0) + float(values.sum())
                    history.record_batch(logs)
                    if cb.wants_batches:
                        cb.call("on_batch_end", step, logs)
                    if self.stop_training:
                        break
                epoch_logs = {k: v / max(seen, 1) for k, v in sums.items()}
                # As Keras: an epoch cut short by stop_training is still validated.
                if val is not None:
                    val_logs = self.evaluate(val[0], val[1], batch_size=batch_size, verbose=0,
                                             return_dict=True)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cb.call("on_epoch_end", epoch, epoch_logs)
                if self.stop_training:
                    break
            cb.call("on_train_end", {})
        except BaseException:
            cb.close()  # on_train_end did not run: close CSVLogger's file, the progress bar
            raise
        finally:
            self.train_inputs = None
        return history

    def _sample_weights(self, y: np.ndarray, class_weight: dict | None, sample_weight: Any,
                        n: int) -> np.ndarray | None:
        w = None
        if sample_weight is not None:
            w = _as_float("sample_weight", sample_weight)
            # One weight per sample, as (n,) or (n, 1); not any array that happens to have
            # n values (a (1, n) row would pass a flat length check).
            if w.shape not in ((n,), (n, 1)):
                raise ValueError(f"sample_weight must have shape ({n},) or ({n}, 1), one "
                                 f"weight per sample, got {w.shape}")
            w = w.reshape(-1)
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError("class_weight must be a dict {class: weight}")
            if y.ndim == 1 or y.shape[-1] == 1:
                classes = np.rint(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
            else:
                classes = np.argmax(y, axis=-1)
            missing = sorted(set(np.unique(classes).tolist()) - set(class_weight))
            if missing:
                raise ValueError(f"class_weight has no weight for classes {missing}")
            cw = np.array([class_weight[c] for c in classes.tolist()], dtype=np.float32)
            w = cw if w is None else w * cw
        return w

    # ------------------------------------------------------------------ inference
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int = 0, sample_weight: Any = None,
                 return_dict: bool = False) -> Any:
        """The loss (and metrics) on (x, y): a float, a list [loss, *metrics], or a dict."""
        self._require_compiled("evaluate")
        if y is None:
            raise ValueError("evaluate: y is missing")
        batch_size = _batch_size("evaluate", batch_size, 32)
        x, y = self._prepare(x, y, "evaluate")
        if len(x) == 0:
            raise ValueError("evaluate: x has no samples; the loss of an empty set is undefined")
        self._setup_training()
        w = self._sample_weights(y, None, sample_weight, len(x))
        sums: dict[str, float] = {}
        n = len(x)
        with no_grad():
            for start in range(0, n, batch_size):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                wb = None if w is None else w[start:start + batch_size]
                loss, out = self._forward_loss(xb, yb, wb, False)
                reg = self._regularization()
                value = float(loss.data) + (float(reg.data) if reg is not None else 0.0)
                sums["loss"] = sums.get("loss", 0.0) + value * len(xb)
                for name, values in self._batch_metrics(yb, out).items():
                    sums[name] = sums.get(name, 0.0) + float(values.sum())
        results = {k: v / n for k, v in sums.items()}
        if verbose:
            print(" - ".join(f"{k}: {v:.4g}" for k, v in results.items()))
        if return_dict:
            return results
        if not self.metrics:
            return results["loss"]
        return [results[k] for k in ["loss", *(name for name, _ in self.metrics)]]

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """The model's outputs for x as a numpy array (inference mode, no graph)."""
        batch_size = _batch_size("predict", batch_size, 1024)
        x, _ = self._prepare(x, None, "predict")
        outs = []
        with no_grad():
            for start in range(0, len(x), batch_size):
                outs.append(self(Tensor._wrap(x[start:start + batch_size])).data)
        if not outs:
            return np.zeros((0, *self.layers_output_shape(x.shape)[1:]), dtype=np.float32)
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def find_nonfinite(self) -> str:
        """Where the last training batch first went non-finite: a layer's output or a
        weight's gradient (for TerminateOnNaN)."""
        if self._last_batch is None:
            return "no batch has run yet"
        with no_grad():
            h = Tensor._wrap(self._last_batch)
            if not np.isfinite(h.data).all():
                return "the input batch is not finite"
            for layer in self.layers:
                h = layer(h, training=False)
                if not np.isfinite(h.data).all():
                    return f"the output of layer {layer.name!r} is the first that is not finite"
        for layer in self.layers:
            for name, w in zip(layer.weight_names, layer.weights, strict=True):
                if not np.isfinite(w.data).all():
                    return f"weight {name!r} is not finite"
                if w.grad is not None and not np.isfinite(w.grad.data).all():
                    return f"the gradient of {name!r} is the first that is not finite"
        return "the loss alone is not finite (outputs and gradients are)"

    # ------------------------------------------------------------------ description
    def summary(self, print_fn: Any = print) -> None:
        """Print the layers, their output shapes and parameter counts."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            if shape is not None:
                shape = layer.compute_output_shape(shape)
            params = layer.count_params() if layer.built else 0
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         str(shape) if shape is not None else "?", f"{params:,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "-" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        for i, row in enumerate(rows):
            print_fn("".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            print_fn("=" * sum(widths) if i == 0 else line)
        trainable = sum(p.size for p in self.parameters())
        total = self.count_params()
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")

    def get_config(self) -> dict:
        """The architecture as JSON-able data."""
        return {"name": self.name,
                "layers": [layers_module.serialize(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """Rebuild a model (untrained) from get_config()'s output."""
        return cls([layers_module.deserialize(spec) for spec in config["layers"]],
                   name=config.get("name"))

    def __repr__(self) -> str:
        return f"<Sequential {self.name!r}: {len(self.layers)} layers>"

    # ------------------------------------------------------------------ saving
    def _weight_arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        for i, layer in enumerate(self.layers):
            for j, w in enumerate(layer.weights):
                arrays[f"layer{i}/{j}"] = w.data
        return arrays

    def save_weights(self, path: str | os.PathLike) -> None:
        """Write the weights to an .npz file (atomically)."""
        if not self.built:
            raise ValueError("the model has no weights yet: build or fit it first")
        meta = {"format": _FORMAT, "layers": self._layer_index()}
        _write_npz(path, {"__meta__": np.array(json.dumps(meta)), **self._weight_arrays()})

    def _layer_index(self) -> list[dict]:
        return [{"name": layer.name, "class_name": type(layer).__name__,
                 "weights": len(layer.weights)} for layer in self.layers]

    def load_weights(self, path: str | os.PathLike) -> None:
        """Read weights saved by save_weights (or save); the architecture must match."""
        contents = _read_npz(path)
        meta = _meta(contents, path)
        if not self.built:
            self.build()
        saved_layers = meta["layers"]
        if len(saved_layers) != len(self.layers):
            raise ValueError(
                f"{path}: the file has weights for {len(saved_layers)} layers, the model has "
                f"{len(self.layers)}"
            )
        updates = []
        for i, (layer, saved) in enumerate(zip(self.layers, saved_layers, strict=True)):
            if saved["weights"] != len(layer.weights):
                raise ValueError(
                    f"{path}: layer {i} ({layer.name!r}) has {len(layer.weights)} weights, the "
                    f"file's layer {saved['name']!r} has {saved['weights']}"
                )
            for j, (name, w) in enumerate(zip(layer.weight_names, layer.weights, strict=True)):
                new = contents.get(f"layer{i}/{j}")
                if new is None:
                    raise ValueError(f"{path}: the file lacks weight {j} of layer {i}")
                try:
                    new = check_weight_value(layer.name, name, w, new)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{path}: {exc} in the file") from exc
                updates.append((w, new))
        for w, new in updates:  # only after every check passed: all or nothing
            w.data[...] = new

    def _compile_state(self, path: Any) -> dict | None:
        """compile()'s arguments as JSON, with the optimizer's current settings."""
        if self._compile_config is None or self.optimizer is None:
            return None
        try:
            optimizer = {"class_name": type(self.optimizer).__name__,
                         "config": self.optimizer.get_config()}
        except (TypeError, ValueError) as exc:
            warnings.warn(f"{path}: saved without the compile settings, so load_model() "
                          f"returns an uncompiled model: {exc}", UserWarning, stacklevel=3)
            return None
        return {"optimizer": optimizer, **self._compile_config}

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture, weights and compile settings to one .npz file (atomically)."""
        if not self.built:
            raise ValueError("the model has no weights yet: build or fit it first")
        meta = {"format": _FORMAT, "model": self.get_config(),
                "compile": self._compile_state(path), "layers": self._layer_index()}
        _write_npz(path, {"__meta__": np.array(json.dumps(meta)), **self._weight_arrays()})


# The output activation applied to the logits of a fused loss, for the metrics: the same
# kernels as the activation ops (through K at call time, so use_backend() applies).
_ACTIVATE = {
    "sigmoid": lambda z: K.sigmoid_forward(z),
    "softmax": lambda z: K.softmax_forward(z, -1),
}


def _batch_sizes(n: int, batch_size: int, steps: int) -> np.ndarray:
    """The number of samples in each batch of an epoch (the last one may be short)."""
    sizes = np.full(steps, batch_size, np.float64)
    if steps:
        sizes[-1] = n - (steps - 1) * batch_size
    return sizes


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to `path` through a temporary file and a rename: never half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temporary(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new file next to the target, opened for writing: (descriptor, path).

    Unlike mkstemp (mode 0o600), it is created with mode 0o666 and the kernel applies the
    umask, so the renamed file has the permissions of any file the user writes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.npz")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, without pickles; damaged files give a ValueError."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ValueError(
            f"{path} is not a microgradnet file or it is damaged (truncated?): {exc}"
        ) from exc


def _meta(contents: dict[str, np.ndarray], path: Any) -> dict:
    if "__meta__" not in contents:
        raise ValueError(f"{path} is not a microgradnet file (no __meta__ entry)")
    try:
        meta = json.loads(str(contents["__meta__"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its description is damaged: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its description is not a JSON object")
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: unknown format {meta.get('format')!r}")
    _check_schema(meta, path)
    return meta


def _check_schema(meta: dict, path: Any) -> None:
    """Check the shape of a file's description, so that a malformed one gives a ValueError
    naming the file and the layer, never a KeyError or TypeError from deep inside."""

    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: malformed description: {what}")

    layers = meta.get("layers")
    if not isinstance(layers, list):
        raise bad("'layers' must be a list")
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise bad(f"layer {i} must be an object, got {entry!r:.60}")
        name = entry.get("name")
        if not isinstance(name, str) or not isinstance(entry.get("class_name"), str):
            raise bad(f"layer {i} ({name!r}) needs a string name and class_name")
        count = entry.get("weights")
        if type(count) is not int or count < 0:
            raise bad(f"layer {i} ({name!r}) needs a weight count, got {count!r}")
    if "model" in meta:
        model = meta["model"]
        if not isinstance(model, dict) or not isinstance(model.get("layers"), list):
            raise bad("'model' must be an object with a 'layers' list")
        if not isinstance(model.get("name", ""), str | None):
            raise bad(f"the model's name must be a string, got {model['name']!r}")
        if len(model["layers"]) != len(layers):
            raise bad(f"the model has {len(model['layers'])} layers, the weights are for "
                      f"{len(layers)}")
        for i, spec in enumerate(model["layers"]):
            name = layers[i]["name"]
            if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
                raise bad(f"layer {i} ({name!r}) needs a string class_name")
            if not isinstance(spec.get("config", {}), dict):
                raise bad(f"the config of layer {i} ({name!r}) must be an object")
    compiled = meta.get("compile")
    if compiled is not None:
        if not isinstance(compiled, dict) or not isinstance(compiled.get("optimizer"), dict):
            raise bad("'compile' must be null or an object with an 'optimizer' object")
        if not isinstance(compiled.get("loss"), str | dict):
            raise bad(f"the compiled loss must be a name or an object, got "
                      f"{compiled.get('loss')!r}")
        metrics = compiled.get("metrics", [])
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise bad(f"the compiled metrics must be a list of names, got {metrics!r}")


def _optimizer_from_config(spec: dict) -> Any:
    """An optimizer of a known class from {"class_name", "config"} (nothing else is made)."""
    known = {name.lower(): name for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")}
    name = known.get(str(spec.get("class_name", "")).lower())
    if name is None:
        raise ValueError(f"unknown optimizer class {spec.get('class_name')!r} in the file")
    return getattr(optimizers_module, name).from_config(spec.get("config", {}))


def load_model(path: str | os.PathLike) -> Sequential:
    """Load a model written by Sequential.save: architecture, weights, compile settings."""
    contents = _read_npz(path)
    meta = _meta(contents, path)
    if "model" not in meta:
        raise ValueError(f"{path} holds weights only (save_weights); use model.load_weights")
    layers = []
    for i, spec in enumerate(meta["model"]["layers"]):
        try:
            layers.append(layers_module.deserialize(spec))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"{path}: layer {i} ({meta['layers'][i]['name']!r}) cannot be made from its "
                f"config: {exc}"
            ) from exc
    try:
        model = Sequential(layers, name=meta["model"].get("name"))
        model.build()
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: the model cannot be built from the file: {exc}") from exc
    model.load_weights(path)
    compiled = meta.get("compile")
    if compiled:
        try:
            model.compile(
                optimizer=_optimizer_from_config(compiled["optimizer"]),
                loss=losses_module.get(compiled["loss"]),
                metrics=compiled.get("metrics", []),
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: malformed compile settings: {exc}") from exc
    return model
