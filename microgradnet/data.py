"""Checks and conversions of the data given to fit, evaluate and predict.

Bad data gets an error that names what was wrong (the argument, the shapes, the first bad
row), never a crash or a silent wrong answer.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .autograd import _to_numpy

__all__ = ["as_float", "batch_size", "check_fit_arguments", "model_dtype", "prepare",
           "sample_weights", "split_validation", "steps_per_epoch"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def as_float(name: str, data: Any, dtype: Any = np.float32) -> np.ndarray:
    """`data` as a C-contiguous array of `dtype` (float32 unless the model computes in
    float64) with a batch dimension and finite values. A read-only array that already is
    one is returned as it is: nothing here writes into the caller's data."""
    arr = _to_numpy(data)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension (one entry per sample), got the "
                         f"scalar {arr.item()!r}")
    with np.errstate(over="ignore"):  # an overflow of the cast is reported below, by row
        # Aligned too: the C loops read whole elements (np.frombuffer at an odd offset is not).
        out = np.require(arr, dtype=dtype, requirements=["C", "A"])
    if not np.isfinite(out).all():
        bad = ~np.isfinite(out)
        row = int(np.argwhere(bad)[0][0])
        if arr.dtype.kind == "f" and np.isfinite(arr[row]).all():
            value = arr[row][bad[row]].flat[0] if arr.ndim > 1 else arr[row]
            raise ValueError(
                f"{name} has values that overflow {np.dtype(dtype).name} (first in row {row}: "
                f"{value:.6g}); the model computes in {np.dtype(dtype).name}: scale the data"
            )
        raise ValueError(
            f"{name} contains NaN or infinite values (first in row {row}); clean the data first"
        )
    return out


def model_dtype(model: Any) -> np.dtype:
    """The dtype the model computes in: its first weight's (float32 before it has one)."""
    for layer in model.layers:
        if layer.built and layer.weights:
            return np.dtype(layer.weights[0].data.dtype)
    return np.dtype(np.float32)


def batch_size(what: str, value: Any, default: int) -> int:
    """A batch size: None (the default) or a positive int, else a clear ValueError."""
    if value is None:
        return default
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < 1):
        raise ValueError(f"{what}: batch_size must be a positive int, got {value!r}")
    return int(value)


def check_fit_arguments(y: Any, size: Any, epochs: Any, validation_split: float,
                        initial_epoch: Any = 0) -> int:
    """Check fit's arguments other than the data; return the batch size to use."""
    if y is None:
        raise ValueError("fit: y is missing")
    size = batch_size("fit", size, 32)
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                or value < 0):
            raise ValueError(f"fit: {name} must be a non-negative int, got {value!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    return size


def steps_per_epoch(value: Any, n: int, size: int | None) -> tuple[int, int | None]:
    """fit's (batch size, batches per epoch) for steps_per_epoch as Keras takes it with
    arrays: without a batch size, `value` batches of ceil(n / value) samples make an epoch;
    with one, an epoch is `value` batches, going on through a pass over the data. None
    keeps an epoch one pass (batches of `size`, 32 when None)."""
    if value is None:
        return (32 if size is None else size), None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < 1):
        raise ValueError(f"fit: steps_per_epoch must be a positive int or None, got {value!r}")
    value = int(value)
    if size is None:
        size = -(-n // value)
    batches = -(-n // size)
    if value > batches:
        raise ValueError(
            f"fit: steps_per_epoch={value} is more than the {batches} batches of {size} that "
            f"{n} training samples make; give at most {batches}, or leave steps_per_epoch out "
            f"(an epoch is then one pass over the data)"
        )
    if batches % value:
        warnings.warn(
            f"fit: steps_per_epoch={value} does not divide the {batches} batches of a pass over "
            f"the data: as in Keras, the epoch that reaches the end of a pass has "
            f"{batches % value} batches, and the next epoch starts a new pass",
            UserWarning, stacklevel=3)
    return size, value


def prepare(model: Any, x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Check and convert x (and y) against the model, building it for x's shape if needed."""
    if x is None:
        raise ValueError(f"{what}: x is missing")
    dtype = model_dtype(model)
    x = _inputs(model.input_shape, as_float("x", x, dtype), what)
    if not model.built:
        model.build((None, *x.shape[1:]))
    if y is None:
        return x, None
    y_arr = _to_numpy(y)
    if y_arr.ndim == 0:
        raise ValueError(f"{what}: y must have a batch dimension (one target per sample), "
                         f"got the scalar {y_arr.item()!r}")
    if len(y_arr) != len(x):
        raise ValueError(f"{what}: x and y have different lengths: {len(x)} and {len(y_arr)}")
    out_shape = model.layers_output_shape(x.shape)
    if getattr(model.loss, "sparse", False):
        return x, _class_labels(model.loss.name, y_arr, len(x), out_shape[-1], what)
    return x, _targets(y_arr, len(x), out_shape, what, dtype)


def _inputs(input_shape: tuple | None, x: np.ndarray, what: str) -> np.ndarray:
    """x checked against the model's input shape; 1-D x as samples of one feature."""
    if x.ndim == 1:
        if input_shape is None or tuple(input_shape[1:]) != (1,):
            expects = ("does not know its input shape" if input_shape is None else
                       f"expects inputs of shape {input_shape}")
            raise ValueError(
                f"{what}: x is 1-D (shape {x.shape}) and the model {expects}: pass "
                f"x.reshape(-1, 1) for {len(x)} samples of one feature, or x.reshape(1, -1) "
                f"for one sample of {len(x)} features"
            )
        x = x.reshape(-1, 1)  # as Keras: n numbers are n samples of the one feature
    if input_shape is not None and x.shape[1:] != tuple(input_shape[1:]):
        raise ValueError(
            f"{what}: the model expects inputs of shape {input_shape} "
            f"({input_shape[-1]} features), got x of shape {x.shape}"
        )
    return x


def _class_labels(loss_name: str, y: np.ndarray, n: int, classes: int, what: str) -> np.ndarray:
    """y as n integer class labels in [0, classes), for a sparse loss."""
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(f"{what}: {loss_name} needs integer class labels in y")
    if y.shape not in ((n,), (n, 1)):
        raise ValueError(
            f"{what}: {loss_name} needs y of shape ({n},) with class labels, got {y.shape}"
        )
    # The range is checked in y's own dtype, before the cast: inf, 1e20 or 2**63 would
    # wrap around in int64.
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = (y.min() if y.min() < 0 else y.max()).item()
        raise ValueError(f"{what}: y holds class labels, which must be in [0, {classes}), "
                         f"got {bad!r}")
    return y.astype(np.int64).reshape(-1)


def _targets(y: np.ndarray, n: int, out_shape: tuple, what: str,
             dtype: Any = np.float32) -> np.ndarray:
    """y as targets of the model's output shape, in the model's dtype."""
    y = as_float("y", y, dtype)
    fits = y.shape[1:] == out_shape[1:] or (y.ndim == 1 and out_shape[1:] == (1,))
    if not fits:
        raise ValueError(
            f"{what}: y of shape {y.shape} does not fit the model's output of shape "
            f"{(None, *out_shape[1:])}"
        )
    if y.shape != (n, *out_shape[1:]):
        y = y.reshape(n, *out_shape[1:])
    return y


def sample_weights(y: np.ndarray, class_weight: dict | None, sample_weight: Any,
                   n: int, dtype: Any = np.float32) -> np.ndarray | None:
    """One weight per sample from sample_weight times class_weight, or None for neither."""
    w = None
    if sample_weight is not None:
        w = as_float("sample_weight", sample_weight, dtype)
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
        cw = np.array([class_weight[c] for c in classes.tolist()], dtype=dtype)
        w = cw if w is None else w * cw
    return w


def split_validation(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                     validation_split: float, validation_data: Any) -> tuple:
    """(x, y, weights, validation set or None): the validation set given, or split off."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("fit: validation_data must be (x_val, y_val)")
        return x, y, weights, validation_data[:2]
    if not validation_split:
        return x, y, weights, None
    # As Keras: the last samples, taken before any shuffling.
    split = int(len(x) * (1 - validation_split))
    if split == 0 or split == len(x):
        raise ValueError(f"fit: validation_split={validation_split} leaves an empty set "
                         f"for {len(x)} samples")
    weights = None if weights is None else weights[:split]
    return x[:split], y[:split], weights, (x[split:], y[split:])
