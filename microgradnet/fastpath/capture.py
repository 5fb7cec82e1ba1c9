"""What the captured step can run: the description of a model as the plan takes it
(layers, loss, optimizer, dtype), or why it cannot be captured (`explain`).

Everything is read through the public interfaces of the layers (`output_activation`,
Dropout's `rate`/`seed`/`rng`), the losses (`Loss.fused`, the one decision to fuse a loss
with its output activation) and the optimizers (`rule`, `update_arguments`,
`rates_known_ahead`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import activation_table, backend, regularizers
from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from .fpenv import trainer

__all__ = ["Capture", "counted_accuracies", "describe", "explain", "LayerSpec",
           "shuffles_like_numpy"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def _alpha(activation: str) -> float:
    """The alpha that Dense(activation=...) uses: its row's default (0 where it has none)."""
    spec = activation_table.BY_NAME.get(activation)
    return 0.0 if spec is None or spec.alpha is None else spec.alpha

# The plan's loss kernel for each loss class, on the top layer's output: mse on any
# activation the plan applies, a cross-entropy on logits (from_logits, or fused).
_PLAN_LOSSES = {losses_module.MeanSquaredError: "mse",
                losses_module.BinaryCrossentropy: "sigmoid_bce",
                losses_module.CategoricalCrossentropy: "softmax_xent",
                losses_module.SparseCategoricalCrossentropy: "sparse_softmax_xent"}

_PLAN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_BUILT_IN_OPTIMIZERS = (optimizers_module.SGD, optimizers_module.Adam, optimizers_module.AdamW,
                        optimizers_module.RMSprop, optimizers_module.Adagrad)


@dataclass
class LayerSpec:
    """One Dense layer of the plan, with the activation and Dropout that follow it."""

    fan_in: int
    units: int
    activation: str
    alpha: float
    has_bias: bool
    dropout_rate: float = 0.0
    kernel_penalty: tuple | None = None  # (l1, l2) of the kernel's regularizer, or None
    bias_penalty: tuple | None = None

    def as_plan_tuple(self) -> tuple:
        """The layer as trainer.Plan takes it."""
        return (self.fan_in, self.units, self.activation, self.alpha, self.has_bias,
                self.dropout_rate, self.kernel_penalty, self.bias_penalty)


@dataclass
class Capture:
    """A capturable model: its layers, parameters, loss kernel, update rule and dtype."""

    layers: list[LayerSpec]
    params: list  # [kernel, bias or None, ...] per Dense
    loss: str
    rule: str
    dtype: type
    dropouts: list  # the Dropout layer after each Dense, or None
    output_logits: bool = False  # the model's output is the logits its loss takes

    def key(self, batch_size: int, optimizer: Any) -> tuple:
        """What a plan was built for: a cached plan is reused while this stays the same."""
        return (tuple(s.as_plan_tuple() for s in self.layers),
                tuple(id(p) for p in self.params), self.loss, self.rule,
                np.dtype(self.dtype).str, batch_size, id(optimizer), self.output_logits)


_shuffles_like_numpy: bool | None = None


def shuffles_like_numpy() -> bool:
    """Whether the captured run can draw its epoch orders in C, as numpy's permutation."""
    global _shuffles_like_numpy
    if _shuffles_like_numpy is None:
        _shuffles_like_numpy = bool(trainer().shuffle_matches_numpy())
    return _shuffles_like_numpy


def _activation_of(layer: Any) -> str | None:
    """The built-in activation the layer applies, None for a custom callable."""
    return layer.output_activation()


def _penalties(layer: Any) -> tuple | str:
    """The (l1, l2) of the penalties the layer adds to the loss (those of its built
    weights, not its kernel_regularizer attribute, which may have changed since) on its
    kernel and bias, None where it adds none; or why they are not captured."""
    found: dict[str, Any] = {}
    for weight, reg in layer.weight_regularizers:
        which = ("kernel" if weight is layer.kernel else
                 "bias" if weight is layer.bias and weight is not None else None)
        # the plan adds the kernel's penalty first, then the bias's, once each
        if which is None or which in found or (which == "kernel" and found):
            return f"layer {layer.name!r} has penalties the captured step does not add"
        # a subclass may compute another penalty
        if type(reg) not in (regularizers.L1, regularizers.L2, regularizers.L1L2):
            return (f"layer {layer.name!r} has a custom {which} regularizer "
                    f"({type(reg).__name__})")
        if not (reg.l1 >= 0 and reg.l2 >= 0):  # changed since: the constructor checks
            return f"layer {layer.name!r}: a {which} regularizer's factor is not >= 0"
        found[which] = (reg.l1, reg.l2)
    return found.get("kernel"), found.get("bias")


def _dense_spec(layer: Any) -> LayerSpec | str:
    name = layer.activation
    if _activation_of(layer) is None:
        return f"layer {layer.name!r} has a custom activation"
    if name not in trainer().ACTIVATIONS and name != "softmax":
        return f"layer {layer.name!r}: activation {name!r} is not captured"
    if layer.kernel is None:
        return f"layer {layer.name!r} is not built"
    # The plan multiplies (batch, features) rows; Dense on more axes (applied to the last
    # one) and a layer of no inputs train eagerly.
    if layer.input_shape is not None and len(layer.input_shape) != 2:
        return (f"layer {layer.name!r} takes inputs of shape {layer.input_shape}: only "
                f"(batch, features) inputs are captured")
    fan_in, units = layer.kernel.shape
    if fan_in == 0:
        return f"layer {layer.name!r} has no inputs (0 features)"
    penalties = _penalties(layer)
    if isinstance(penalties, str):
        return penalties
    kernel_penalty, bias_penalty = penalties
    return LayerSpec(fan_in, units, name, _alpha(name), layer.use_bias,
                     kernel_penalty=kernel_penalty, bias_penalty=bias_penalty)


def _layer_specs(model: Any) -> tuple[list[LayerSpec], list, list] | str:
    """(a LayerSpec per Dense, [kernel, bias, ...], [the Dropout after each Dense or None])
    or why the layers cannot be captured."""
    from ..layers import Activation, Dense, Dropout, Input  # noqa: PLC0415

    specs: list[LayerSpec] = []
    params: list = []
    drops: list = []
    for layer in model.layers:
        if type(layer) is Input:
            continue
        if type(layer) is Dense:
            spec = _dense_spec(layer)
            if isinstance(spec, str):
                return spec
            specs.append(spec)
            params += [layer.kernel, layer.bias]
            drops.append(None)
        elif type(layer) is Dropout and specs and drops[-1] is None:
            if layer.seed is None and not shuffles_like_numpy():
                # its draws would have to come between the epochs' permutations, which are
                # then drawn in Python before the run
                return (f"layer {layer.name!r}: a Dropout without a seed draws from the shared "
                        "generator, whose permutations are not drawn in C with this numpy")
            if layer.rate > 0:
                specs[-1].dropout_rate = layer.rate
                drops[-1] = layer
        elif (type(layer) is Activation and specs and specs[-1].activation == "linear"
              and drops[-1] is None):
            if _activation_of(layer) is None:
                return f"layer {layer.name!r} has a custom activation"
            specs[-1].activation = layer.activation
            specs[-1].alpha = _alpha(layer.activation)
        else:
            return f"layer {layer.name!r} ({type(layer).__name__}) is not captured"
    if not specs:
        return "the model has no Dense layer"
    if any(s.activation == "softmax" for s in specs[:-1]):
        return "softmax is captured only as the output of a cross-entropy"
    if drops[-1] is not None:
        return "a Dropout after the output layer is not captured"
    return specs, params, drops


def _plan_loss(loss: Any, top: LayerSpec) -> str | None:
    """The plan's loss kernel for `loss` after the top layer (whose activation it takes into
    its kernel when the loss fuses with it: the top layer then stays linear in the plan)."""
    if getattr(loss, "reduction", None) != "sum_over_batch_size":
        return None
    fused = loss.fused(top.activation)
    if fused is not None:
        loss = fused
    kernel = _PLAN_LOSSES.get(type(loss))
    if kernel is None:
        return None
    activation = "linear" if fused is not None else top.activation
    if hasattr(loss, "from_logits"):  # a cross-entropy kernel: on logits only
        if not (loss.from_logits and activation == "linear"):
            return None
    elif activation == "softmax":
        return None
    top.activation = activation
    return kernel


def _dtype_refusal(params: list) -> str | None:
    """Why the parameters' dtypes cannot be captured (None: one dtype, float32 or float64)."""
    dtypes = {p.data.dtype for p in params if p is not None}
    if len(dtypes) == 1 and next(iter(dtypes)) in _PLAN_DTYPES:
        return None
    names = sorted(np.dtype(d).name for d in dtypes)  # the slow spelling, for the message
    return f"the parameters must all be float32 or all float64, got {' and '.join(names)}"


def _optimizer_refusal(opt: Any) -> str | None:
    """Why the plan cannot run this optimizer's update (None: it can)."""
    if not opt.rates_known_ahead:
        return "a learning-rate schedule of no argument is not captured (one of the step is)"
    if opt.clipnorm is not None and opt.global_clipnorm is not None:
        return "clipnorm and global_clipnorm together are not captured"
    if type(opt) not in _BUILT_IN_OPTIMIZERS:  # a subclass may change the update
        return f"{type(opt).__name__} is not captured"
    return None


def describe(model: Any) -> Capture | str:
    """The model as the plan takes it, or why it cannot be captured."""
    if backend.backend_name() != "cython":
        return "the numpy reference backend is active"
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        return "the model is not compiled"
    got = _layer_specs(model)
    if isinstance(got, str):
        return got
    layers, params, drops = got
    why = _dtype_refusal(params)
    if why is not None:
        return why
    top_activation = layers[-1].activation
    loss = _plan_loss(model.loss, layers[-1])
    if loss is None:
        return f"the loss {model.loss.name!r} on a {top_activation!r} output is not captured"
    why = _optimizer_refusal(model.optimizer)
    if why is not None:
        return why
    # A loss from_logits on a linear output: the model's output is the logits themselves
    # (its metrics and recorded predictions too), not the activation the loss applies.
    logits = model.loss.fused(top_activation) is None and loss != "mse"
    return Capture(layers, params, loss, model.optimizer.rule,
                   params[0].data.dtype, drops, logits)


def explain(model: Any) -> str | None:
    """Why `model.fit` cannot run the captured step for this model (None: it can)."""
    got = describe(model)
    return got if isinstance(got, str) else None


# The metrics whose value per sample is 0 or 1, by the accuracy kind the run counts
# (trainer.ACCURACIES); `accuracy` is one of them, chosen from the shapes.
_COUNTED = {metrics_module.binary_accuracy: "binary",
            metrics_module.categorical_accuracy: "categorical",
            metrics_module.sparse_categorical_accuracy: "sparse_categorical"}
_MAX_COUNTED = 8  # trainer's MAX_COUNTED


def counted_accuracies(metrics: list, loss: str, out_dim: int) -> tuple[str, ...] | str:
    """The accuracy kind the captured run counts for each of the model's (name, function)
    metrics after a plan of loss `loss` and `out_dim` outputs, or why a metric is
    computed in Python between batches."""
    sparse = loss == "sparse_softmax_xent"
    kinds = []
    for name, fn in metrics:
        if fn is metrics_module.accuracy:  # as metrics.accuracy picks from the shapes
            kind = "binary" if out_dim == 1 else "sparse_categorical" if sparse else "categorical"
        else:
            kind = _COUNTED.get(fn)
        if kind is None:
            return f"metric {name!r} is computed in Python between batches"
        if kind == "binary" and out_dim != 1:
            return (f"metric {name!r} on {out_dim} output columns is a mean per sample, "
                    f"computed in Python between batches")
        if kind != "binary" and (kind == "sparse_categorical") != sparse:
            return f"metric {name!r} does not fit the loss's targets"
        kinds.append(kind)
    if len(kinds) > _MAX_COUNTED:
        return f"more than {_MAX_COUNTED} metrics"
    return tuple(kinds)
