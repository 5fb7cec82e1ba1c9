"""Sequential: a stack of layers with Keras' compile / fit / evaluate / predict.

Its parts live beside it: the data checks in data.py, the eager training loop in
training.py, the captured one in fastpath, and the file format in saving.py.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import callbacks as cbks
from . import data, fastpath, saving, training
from . import layers as layers_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .autograd import Tensor, no_grad
from .layers import Input, Layer, check_weight_value

__all__ = ["load_model", "model_from_json", "Sequential"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


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
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='mean_squared_error'; known: "
                + ", ".join(sorted(losses_module._BY_NAME))
            )
        # All made before any is kept: a refused compile leaves the model as it was.
        made = (optimizers_module.get(optimizer), losses_module.get(loss),
                [metrics_module.get(m) for m in (metrics or [])])
        names = ["loss"]  # each metric logs under its name, beside the loss: one value each
        for name, _ in made[2]:
            if name in names:
                raise ValueError(
                    f"compile: two metrics would log as {name!r}"
                    + (" (the loss's own key)" if name == "loss" else "")
                    + "; give each metric once, and name a function metric uniquely "
                    "(its __name__)")
            names.append(name)
        self.jit_compile = jit_compile
        self._captured = None
        self.optimizer, self.loss, self.metrics = made
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
        return data.prepare(self, x, y, what)

    def layers_output_shape(self, input_shape: tuple) -> tuple:
        """The output shape for a given input shape."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    # ------------------------------------------------------------------ training
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
        steps_per_epoch: int | None = None,
    ) -> cbks.History:
        """Train for `epochs` passes over (x, y) in batches (or epochs of steps_per_epoch
        batches, as Keras); return the History."""
        self._require_compiled("fit")
        size_given = batch_size is not None
        batch_size = data.check_fit_arguments(y, batch_size, epochs, validation_split,
                                              initial_epoch)
        x, y = self._prepare(x, y, "fit")
        weights = data.sample_weights(y, class_weight, sample_weight, len(x), x.dtype)
        x, y, weights, val = data.split_validation(x, y, weights, validation_split,
                                                   validation_data)
        n = len(x)
        if n == 0:
            raise ValueError("fit: no training samples")
        batch_size, steps = data.steps_per_epoch(steps_per_epoch, n,
                                                 batch_size if size_given else None)
        training.setup(self)
        loop = training.Epochs(self, x, y, weights, batch_size, steps)
        history = cbks.History()
        extra = [cbks.ProgbarLogger(verbose)] if verbose else []
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            hint = (" (one callback: callbacks=[it])" if isinstance(callbacks, cbks.Callback)
                    else "")
            raise TypeError(f"fit: callbacks must be a list of Callback instances, got "
                            f"{type(callbacks).__name__}{hint}")
        cb = cbks.CallbackList([*(callbacks or []), history, *extra], self,
                               {"epochs": epochs, "steps": loop.steps, "verbose": verbose,
                                "batch_size": min(batch_size, n)})
        self.history = history
        self.train_inputs = x
        self.stop_training = False
        try:
            cb.call("on_train_begin", {})
            captured_xy = fastpath.captured_inputs(self, batch_size, x, y, weights)
            fast = None if captured_xy is None else self._captured
            if fast is not None and loop.steps == loop.pass_steps and (
                    fastpath.runs_between_callbacks(self, cb, val)):
                # Only History and recorders listen: one call to C from each batch where a
                # recorder looks at the model to the next (no callback: the whole run).
                fastpath.fit_captured(self, fast, *captured_xy, n, batch_size, loop.steps,
                                      initial_epoch, epochs, shuffle, cb, history)
            else:
                loop.run(cb, fast, captured_xy, range(initial_epoch, epochs), shuffle, val)
            cb.call("on_train_end", {})
        except BaseException:
            cb.close()  # on_train_end did not run: close CSVLogger's file, the progress bar
            raise
        finally:
            self.train_inputs = None
        return history

    # ------------------------------------------------------------------ inference
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int = 0, sample_weight: Any = None,
                 return_dict: bool = False) -> Any:
        """The loss (and metrics) on (x, y): a float, a list [loss, *metrics], or a dict."""
        self._require_compiled("evaluate")
        if y is None:
            raise ValueError("evaluate: y is missing")
        batch_size = data.batch_size("evaluate", batch_size, 32)
        x, y = self._prepare(x, y, "evaluate")
        if len(x) == 0:
            raise ValueError("evaluate: x has no samples; the loss of an empty set is undefined")
        training.setup(self, build_optimizer=False)
        w = data.sample_weights(y, None, sample_weight, len(x), x.dtype)
        results = training.evaluate(self, x, y, w, batch_size)
        if verbose:
            print(cbks.format_logs(results))  # as fit's progress bar writes them
        if return_dict:
            return results
        if not self.metrics:
            return results["loss"]
        return [results[k] for k in ["loss", *(name for name, _ in self.metrics)]]

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """The model's outputs for x as a numpy array (inference mode, no graph)."""
        batch_size = data.batch_size("predict", batch_size, 1024)
        x, _ = self._prepare(x, None, "predict")
        outs = []
        with no_grad():
            for start in range(0, len(x), batch_size):
                outs.append(self(Tensor._wrap(x[start:start + batch_size])).data)
        if not outs:
            return np.zeros((0, *self.layers_output_shape(x.shape)[1:]), dtype=x.dtype)
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def find_nonfinite(self) -> str:
        """Where the last training batch first went non-finite: a layer's output or a
        weight's gradient (for TerminateOnNaN)."""
        return training.find_nonfinite(self.layers, self._last_batch)

    # ------------------------------------------------------------------ Keras' one-batch
    # methods, get_layer, to_json
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, return_dict: bool = False) -> Any:
        """One optimizer step on all of (x, y), the very step fit takes on a batch. Returns
        this batch's loss and metrics, from before the update, in Keras 3's forms: a float,
        [loss, *metrics] or a dict (Keras 3's values are means since its last reset)."""
        x, y, w = self._one_batch("train_on_batch", x, y, sample_weight, class_weight)
        self._last_batch = x
        loss, out = training.train_step(self, self.parameters(), x, y, w)
        logs = {"loss": loss}
        for name, values in training.batch_metrics(self, y, out).items():
            logs[name] = float(values.mean())
        return self._batch_results(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """The loss and metrics on all of (x, y) as one batch (no update): a float,
        [loss, *metrics] or a dict, as Keras 3."""
        x, y, w = self._one_batch("test_on_batch", x, y, sample_weight, None)
        return self._batch_results(training.evaluate(self, x, y, w, len(x)), return_dict)

    def _one_batch(self, name: str, x: Any, y: Any, sample_weight: Any,
                   class_weight: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A one-batch method's checked x, y and sample weights, the model set up to train."""
        self._require_compiled(name)
        if y is None:
            raise ValueError(f"{name}: y is missing")
        x, y = self._prepare(x, y, name)
        if len(x) == 0:
            raise ValueError(f"{name}: x has no samples")
        w = data.sample_weights(y, class_weight, sample_weight, len(x), x.dtype)
        # test_on_batch needs no optimizer: one built for another model must not stop it
        training.setup(self, build_optimizer=name == "train_on_batch")
        return x, y, w

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """The model's outputs for all of x as one batch, a numpy array."""
        x, _ = self._prepare(x, None, "predict_on_batch")
        return self.predict(x, batch_size=max(len(x), 1))

    def _batch_results(self, logs: dict[str, float], return_dict: bool) -> Any:
        """Keras' return value of the one-batch methods: the dict, or the loss alone
        without metrics, or [loss, *metrics] in compile order."""
        if return_dict:
            return logs
        if not self.metrics:
            return logs["loss"]
        return [logs[k] for k in ["loss", *(name for name, _ in self.metrics)]]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name (the first of that name) or by index into model.layers."""
        if name is not None and index is not None:
            raise ValueError(f"get_layer: give a layer name or an index, not both (got "
                             f"name={name!r}, index={index!r})")
        if index is not None:
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"get_layer: index must be an int, got {index!r}")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: no layer at index {index}: the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"get_layer: no layer named {name!r}; the model's layers: "
                             f"{[layer.name for layer in self.layers]}")
        raise ValueError("get_layer: give a layer name or an index")

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (no weights), for models.model_from_json;
        kwargs go to json.dumps (indent=2, ...)."""
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

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
    def save_weights(self, path: str | os.PathLike) -> None:
        """Write the weights to an .npz file (atomically)."""
        saving.check_suffix(path, "save_weights")
        if not self.built:
            raise ValueError("the model has no weights yet: build or fit it first")
        saving.write(path, self.layers)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Read weights saved by save_weights (or save); the architecture must match."""
        saving.load_weights(self, path)

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
        saving.check_suffix(path, "save")
        if not self.built:
            raise ValueError("the model has no weights yet: build or fit it first")
        description = {"model": self.get_config(), "compile": self._compile_state(path)}
        saving.write(path, self.layers, description)


def load_model(path: str | os.PathLike, max_params: int | None = None) -> Sequential:
    """Load a model written by Sequential.save: architecture, weights, compile settings.

    A file whose model would have more than max_params weight values (default
    $MICROGRADNET_MAX_PARAMS, else 10**9) is refused before anything is allocated."""
    return saving.load_model(path, Sequential, max_params)


def model_from_json(json_string: str | bytes) -> Sequential:
    """A new, untrained model of the architecture that Sequential.to_json() wrote."""
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json takes a JSON string, got {type(json_string).__name__}")
    try:
        spec = json.loads(json_string)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"model_from_json: not valid JSON: {exc}") from exc
    return saving.model_from_spec(spec, Sequential, "model_from_json")
