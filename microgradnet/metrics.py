"""Metrics by Keras name: per-sample values on numpy arrays, averaged over an epoch.

Each metric maps (y_true, y_pred) to one value per sample; a model averages those over all
samples seen (Keras' mean metrics), so the epoch value does not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["accuracy", "binary_accuracy", "categorical_accuracy", "get", "mean_absolute_error",
           "mean_squared_error", "METRICS", "sparse_categorical_accuracy"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def _rows(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def _fit(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """y_true reshaped like y_pred where they differ only by a trailing 1."""
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
        return y_true.reshape(y_pred.shape)
    return y_true


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """Fraction of outputs on the right side of `threshold`, per sample."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    y_true = _fit(y_true, y_pred)
    return _rows(((y_pred > threshold) == (y_true > 0.5)).astype(np.float64))


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1 where argmax(y_pred) equals argmax(y_true) (one-hot targets), else 0."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1 where argmax(y_pred) equals the integer label, else 0."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = y_true.reshape(y_pred.shape[:-1])
    return (np.argmax(y_pred, axis=-1) == labels).astype(np.float64)


def accuracy(y_true, y_pred) -> np.ndarray:
    """Binary, sparse or categorical accuracy, chosen from the shapes as Keras does."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.shape == y_pred.shape:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)


def mean_absolute_error(y_true, y_pred) -> np.ndarray:
    """mean(|y_pred - y_true|) per sample."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rows(np.abs(y_pred - _fit(y_true, y_pred)))


def mean_squared_error(y_true, y_pred) -> np.ndarray:
    """mean((y_pred - y_true) ** 2) per sample."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rows((y_pred - _fit(y_true, y_pred)) ** 2)


METRICS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
}


def get(identifier: Any) -> tuple[str, Callable[[Any, Any], np.ndarray]]:
    """(name, function) for a metric given by name or as a function of (y_true, y_pred)."""
    if isinstance(identifier, str):
        fn = METRICS.get(identifier.lower())
        if fn is None:
            raise ValueError(f"unknown metric {identifier!r}; known: {', '.join(sorted(METRICS))}")
        return identifier, fn
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    raise TypeError(f"a metric must be a name or a function, not {identifier!r}")
