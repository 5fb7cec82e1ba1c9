"""Losses by Keras name or as objects: `loss(y_true, y_pred, sample_weight=None) -> Tensor`.

Cross-entropies on probabilities that a sigmoid or softmax just produced are computed from
that op's input (the logits) through the fused, numerically stable kernels, as Keras does;
`Sequential` asks for the same fusion explicitly (`Loss.fused`), with or without a graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .autograd import Tensor, _to_numpy, as_tensor
from .backend import kernels as K

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "get", "Huber", "Loss",
           "MeanAbsoluteError", "MeanSquaredError", "serialize", "SparseCategoricalCrossentropy"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


_EPSILON = 1e-7  # Keras' clip for probabilities that did not come with their logits


def _target(y_true: Any, y_pred: Tensor, integer: bool = False) -> Any:
    """y_true as a Tensor (or integer label array) whose shape fits y_pred."""
    if integer:
        labels = _to_numpy(y_true.data if isinstance(y_true, Tensor) else y_true)
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise ValueError("sparse labels must be whole numbers (class indices)")
            labels = labels.astype(np.int64)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"sparse labels must be integers, got {labels.dtype}")
        if labels.ndim == y_pred.ndim and labels.shape[-1:] == (1,):
            labels = labels.reshape(labels.shape[:-1])
        if labels.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"labels of shape {labels.shape} do not fit predictions of shape {y_pred.shape}"
            )
        return labels
    t = as_tensor(y_true, y_pred)
    if t.shape != y_pred.shape:
        if t.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1 and t.shape == y_pred.shape[:-1]:
            t = t.reshape(*y_pred.shape)
        elif y_pred.ndim + 1 == t.ndim and t.shape[-1] == 1 and t.shape[:-1] == y_pred.shape:
            t = t.reshape(*y_pred.shape)
        else:
            raise ValueError(
                f"targets of shape {t.shape} do not fit predictions of shape {y_pred.shape}"
            )
    return t


def _logits_of(y_pred: Tensor, activation: str) -> Tensor | None:
    """The logits a sigmoid or (last-axis) softmax made y_pred from, if the graph has them."""
    ctx = y_pred._ctx
    if ctx is None or getattr(ctx, "name", None) != activation or ctx.released:
        return None
    if activation == "softmax" and ctx.axis != y_pred.ndim - 1:
        return None
    return ctx.parents[0]


def _per_sample(values: Tensor) -> Tensor:
    """Average elementwise values over the last axis: one value per sample."""
    return values.mean(axis=-1) if values.ndim > 1 else values


class Loss:
    """Base class: `call(y_true, y_pred)` gives per-sample losses, `__call__` reduces them."""

    name = "loss"
    sparse = False

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None) -> None:
        if reduction not in ("sum_over_batch_size", "sum", "none"):
            raise ValueError(
                f"unknown reduction {reduction!r}; choose 'sum_over_batch_size', 'sum' or 'none'"
            )
        self.reduction = reduction
        if name is not None:
            self.name = name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        y_pred = y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)
        if y_pred.dtype.kind != "f":
            raise TypeError(f"{self.name}: predictions must be floating point, got {y_pred.dtype}")
        y_true = _target(y_true, y_pred, integer=self.sparse)
        if sample_weight is None and self.reduction == "sum_over_batch_size":
            return self.mean(y_true, y_pred)
        losses = self.call(y_true, y_pred)
        if sample_weight is not None:
            w = as_tensor(np.asarray(sample_weight), losses)
            if w.shape != losses.shape:
                raise ValueError(
                    f"sample_weight of shape {w.shape} does not fit losses of shape {losses.shape}"
                )
            losses = losses * w
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total if self.reduction == "sum" else total / max(1, losses.size)

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        """Per-sample losses (one per row); subclasses implement this."""
        raise NotImplementedError

    def mean(self, y_true: Any, y_pred: Tensor) -> Tensor:
        """The mean of the per-sample losses (subclasses may fuse it into one kernel)."""
        return self.call(y_true, y_pred).mean()

    def fused(self, activation: str | None) -> Loss | None:
        """The same loss taking the logits of `activation`, when a fused kernel exists."""
        return None

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able."""
        return {"reduction": self.reduction, "name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MeanSquaredError(Loss):
    """mean((y_pred - y_true) ** 2) over the last axis."""

    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        d = y_pred - y_true
        return _per_sample(d * d)

    def mean(self, y_true, y_pred):
        return F.mse_loss(y_pred, y_true)  # one fused pass


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|) over the last axis."""

    name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        return _per_sample(F.abs(y_pred - y_true))


class Huber(Loss):
    """0.5 * e**2 where |e| <= delta, else delta * (|e| - delta / 2); e = y_pred - y_true."""

    name = "huber_loss"

    def __init__(self, delta: float = 1.0, reduction: str = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name)
        if delta <= 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        err = F.abs(y_pred - y_true)
        quadratic = F.minimum(err, self.delta)
        return _per_sample(quadratic * quadratic * 0.5 + (err - quadratic) * self.delta)

    def get_config(self) -> dict:
        return {**super().get_config(), "delta": self.delta}


class _CrossEntropy(Loss):
    activation = ""

    def __init__(self, from_logits: bool = False, reduction: str = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)

    def _split(self, y_pred: Tensor) -> tuple[Tensor | None, Tensor]:
        """(logits or None, probabilities or logits as given)."""
        if self.from_logits:
            return y_pred, y_pred
        return _logits_of(y_pred, self.activation), y_pred

    def fused(self, activation: str | None) -> Loss | None:
        if self.from_logits or activation != self.activation:
            return None
        twin = type(self)(from_logits=True, reduction=self.reduction, name=self.name)
        return twin

    def activate(self, logits: np.ndarray) -> np.ndarray:
        """The output activation this loss fuses with, applied to logits (by the activation
        op's own kernel, read through the backend at call time)."""
        if self.activation == "sigmoid":
            return K.sigmoid_forward(logits)
        return K.softmax_forward(logits, -1)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(_CrossEntropy):
    """-(t log p + (1 - t) log(1 - p)), averaged over the last axis."""

    name = "binary_crossentropy"
    activation = "sigmoid"

    def call(self, y_true, y_pred):
        logits, p = self._split(y_pred)
        if logits is not None:
            return _per_sample(F.sigmoid_binary_cross_entropy(logits, y_true, reduction="none"))
        p = F.clip(p, _EPSILON, 1 - _EPSILON)
        return _per_sample(-(y_true * F.log(p) + (1 - y_true) * F.log(1 - p)))

    def mean(self, y_true, y_pred):
        logits, _ = self._split(y_pred)
        if logits is not None:
            return F.sigmoid_binary_cross_entropy(logits, y_true)  # fused
        return super().mean(y_true, y_pred)


class CategoricalCrossentropy(_CrossEntropy):
    """-sum(t log p) over the classes (the last axis); targets are class probabilities."""

    name = "categorical_crossentropy"
    activation = "softmax"

    def call(self, y_true, y_pred):
        logits, p = self._split(y_pred)
        if logits is not None:
            if logits.ndim != 2:
                logits, y_true = logits.reshape(-1, logits.shape[-1]), y_true.reshape(
                    -1, logits.shape[-1])
            losses = F.softmax_cross_entropy(logits, y_true, reduction="none")
            return losses.reshape(*y_pred.shape[:-1]) if y_pred.ndim != 2 else losses
        p = p / p.sum(axis=-1, keepdims=True)
        p = F.clip(p, _EPSILON, 1 - _EPSILON)
        return -(y_true * F.log(p)).sum(axis=-1)


class SparseCategoricalCrossentropy(_CrossEntropy):
    """-log p[label] for integer class labels."""

    name = "sparse_categorical_crossentropy"
    activation = "softmax"
    sparse = True

    def call(self, y_true, y_pred):
        logits, p = self._split(y_pred)
        classes = y_pred.shape[-1]
        labels = y_true.reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            bad = labels[(labels < 0) | (labels >= classes)][0]
            raise ValueError(f"label {bad} is out of range for {classes} classes")
        if logits is not None:
            losses = F.softmax_cross_entropy(logits.reshape(-1, classes), labels,
                                             reduction="none")
        else:
            p = F.clip(p.reshape(-1, classes), _EPSILON, 1 - _EPSILON)
            losses = -F.log(p[np.arange(labels.size), labels])
        return losses.reshape(*y_pred.shape[:-1]) if y_pred.ndim != 2 else losses


_BY_NAME: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier: Any) -> Loss:
    """A loss from a name or alias ("mse"), a class name, a config dict or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    raise TypeError(f"cannot make a loss from {identifier!r}")


def serialize(loss: Loss) -> dict:
    """{"class_name", "config"} for a built-in loss."""
    if _BY_CLASS.get(type(loss).__name__) is not type(loss):
        raise ValueError(f"a custom loss ({type(loss).__name__}) cannot be saved")
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
