"""Keras-style layers: Dense, Activation, Dropout, BatchNormalization, Flatten, Input.

A layer is a module: `layer(x) -> Tensor`, its trainable `parameters()`, and its `weights`
in Keras layout and order (`get_weights()` / `set_weights()`; Dense's kernel is (in, out)).
Weights are made on the first call (or by `build`), when the input's feature size is known.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import functional as F
from . import initializers, regularizers
from .autograd import Tensor, as_tensor, no_grad
from .random import generator

__all__ = ["Activation", "ACTIVATIONS", "BatchNormalization", "check_weight_value", "Dense",
           "deserialize", "Dropout", "Flatten", "get_activation", "Input", "InputLayer",
           "is_builtin_activation", "Layer", "LAYERS", "serialize", "weight_budget"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


# ---------------------------------------------------------------------------- activations


def _linear(x: Tensor) -> Tensor:
    return x


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"linear": _linear, **F.ACTIVATIONS}


def get_activation(identifier: Any) -> tuple[str, Callable[[Tensor], Tensor]]:
    """(name, function) for an activation given by name, None ("linear") or a callable."""
    if identifier is None:
        return "linear", _linear
    if isinstance(identifier, str):
        fn = ACTIVATIONS.get(identifier.lower())
        if fn is None:
            raise ValueError(
                f"unknown activation {identifier!r}; known: {', '.join(sorted(ACTIVATIONS))}"
            )
        return identifier.lower(), fn
    if callable(identifier):
        return getattr(identifier, "__name__", "custom"), identifier
    raise TypeError(f"an activation must be a name, None or a callable, not {identifier!r}")


def is_builtin_activation(name: str, fn: Callable) -> bool:
    """Whether `fn` is the built-in activation called `name` (not a callable that only
    shares its __name__): only those can be saved by name or fused with a loss."""
    return ACTIVATIONS.get(name) is fn


def check_weight_value(layer: str, name: str, current: Tensor, value: Any) -> np.ndarray:
    """`value` as an array that can replace weight `name` of `layer`, else a clear error.

    Real numbers of the weight's shape, all finite; integers are accepted (as Keras does)
    since they convert exactly. Callers check every weight before assigning any.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"layer {layer!r}: weight {name!r} is not an array: {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(
            f"layer {layer!r}: weight {name!r} must hold real numbers, got dtype {arr.dtype}"
        )
    if arr.shape != current.shape:
        raise ValueError(
            f"layer {layer!r}: weight {name!r} has shape {current.shape}, "
            f"the new value has shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"layer {layer!r}: weight {name!r} has NaN or infinite values")
    # Checked again in the weight's own dtype: 1e39 is finite in float64, inf in float32.
    with np.errstate(over="ignore"):
        cast = arr.astype(current.data.dtype)
    if not np.isfinite(cast).all():
        value = arr[~np.isfinite(cast)].flat[0]
        raise ValueError(
            f"layer {layer!r}: weight {name!r} has values that overflow {cast.dtype.name} "
            f"(e.g. {value:.6g}), the weight's dtype"
        )
    return cast


def _dimension(layer: str, argument: str, value: Any) -> int:
    """One input dimension given to a layer: an int >= 0, else an error naming the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: {argument} must hold ints, got {value!r}")
    if value < 0:
        raise ValueError(f"{layer}: {argument} must be >= 0, got {value!r}")
    return int(value)


# How many more weight values add_weight may make, and what to say beyond that: set while
# load_model builds a model from a file's config (a crafted one may ask for terabytes).
_weight_budget: contextvars.ContextVar = contextvars.ContextVar("weight_budget", default=None)


@contextlib.contextmanager
def weight_budget(limit: int, message: str) -> Iterator[None]:
    """Inside the block, layers make at most `limit` weight values in all; the weight that
    would go beyond raises ValueError(message + its layer and shape) before it is made."""
    token = _weight_budget.set([limit, message])
    try:
        yield
    finally:
        _weight_budget.reset(token)


# ---------------------------------------------------------------------------- base


class Layer:
    """Base class of all layers."""

    _name_counts: dict[str, int] = {}

    def __init__(
        self,
        name: str | None = None,
        input_dim: int | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        base = "".join("_" + c.lower() if c.isupper() else c for c in type(self).__name__)
        base = base.lstrip("_")
        if name is None:
            count = Layer._name_counts.get(base, 0)
            Layer._name_counts[base] = count + 1
            name = base if count == 0 else f"{base}_{count}"
        self.name = name
        if input_dim is not None and input_shape is not None:
            raise ValueError(f"{name}: give input_dim or input_shape, not both")
        if input_dim is not None:
            input_shape = (_dimension(name, "input_dim", input_dim),)
        elif input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (input_shape,)
            try:
                input_shape = tuple(input_shape)
            except TypeError:
                raise TypeError(f"{name}: input_shape must be a tuple of ints, got "
                                f"{input_shape!r}") from None
            input_shape = tuple(_dimension(name, "input_shape", n) for n in input_shape)
        self.input_shape: tuple | None = (
            (None, *input_shape) if input_shape is not None else None
        )
        self.built = False
        self._trainable: list[Tensor] = []
        self._non_trainable: list[Tensor] = []
        self._weight_names: dict[int, str] = {}
        self._regularized: list[tuple[Tensor, regularizers.Regularizer]] = []

    # ---- building
    def build(self, input_shape: tuple) -> None:
        """Make the layer's weights for inputs of this shape (batch dimension first)."""
        self.input_shape = (None, *input_shape[1:])
        self.built = True

    def add_weight(
        self,
        name: str,
        shape: tuple,
        initializer: Any,
        trainable: bool = True,
        regularizer: Any = None,
    ) -> Tensor:
        """Create a weight Tensor of `shape` drawn from `initializer` and track it."""
        budget = _weight_budget.get()
        if budget is not None:
            size = math.prod(shape)
            if size > budget[0]:
                raise ValueError(f"{budget[1]}: layer {self.name!r} would make weight {name!r} "
                                 f"of shape {tuple(shape)} ({size:,} values)")
            budget[0] -= size
        data = initializers.get(initializer)(shape, np.float32)
        weight = Tensor(data, requires_grad=trainable)
        (self._trainable if trainable else self._non_trainable).append(weight)
        self._weight_names[id(weight)] = f"{self.name}/{name}"
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((weight, reg))
        return weight

    def _check_input(self, x: Tensor) -> None:
        expected = self.input_shape
        if expected is not None and (
            x.ndim != len(expected)
            or any(e is not None and e != n for e, n in zip(expected[1:], x.shape[1:], strict=True))
        ):
            raise ValueError(
                f"layer {self.name!r} expects inputs of shape {expected} (None = any batch "
                f"size), got {x.shape}"
            )

    # ---- running
    def __call__(self, x: Any, training: bool = False) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if not self.built:
            if self.input_shape is not None:
                self._check_input(x)
            self.build(x.shape)
        else:
            self._check_input(x)
        # As Keras' autocast: inputs take the weights' dtype (float32 unless the weights
        # were converted), and integer or bool inputs become float32 in any layer.
        weights = self._trainable or self._non_trainable
        dtype = x.data.dtype
        if weights:
            if dtype != weights[0].data.dtype:
                x = F.cast(x, weights[0].data.dtype)
        elif dtype.kind != "f":
            x = F.cast(x, np.float32)
        return self.call(x, training)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        """The layer's computation; subclasses implement this."""
        raise NotImplementedError

    def output_activation(self) -> str | None:
        """The name of the activation this layer applies last, if any."""
        return None

    def pre_activation(self, x: Tensor, training: bool = False) -> Tensor:
        """The output before the layer's final activation (for fused losses)."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output shape for an input shape (batch dimension first, may be None)."""
        return tuple(input_shape)

    # ---- weights
    def _build_if_known(self) -> None:
        # A layer told its input shape has its weights before its first call, as in Keras.
        if not self.built and self.input_shape is not None:
            self.build(self.input_shape)

    def parameters(self) -> list[Tensor]:
        """The trainable weights (what an optimizer updates)."""
        self._build_if_known()
        return list(self._trainable)

    @property
    def weights(self) -> list[Tensor]:
        """All weights in Keras order (trainable ones, then statistics such as moving means)."""
        self._build_if_known()
        return [*self._trainable, *self._non_trainable]

    @property
    def weight_names(self) -> list[str]:
        """Names of `weights`, as "layer/weight"."""
        return [self._weight_names[id(w)] for w in self.weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights as numpy arrays, in Keras order."""
        return [w.data.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from arrays in Keras order; shapes must match."""
        current = self.weights
        if len(weights) != len(current):
            raise ValueError(
                f"layer {self.name!r} has {len(current)} weights, got {len(weights)} arrays"
            )
        arrays = [check_weight_value(self.name, name, w, new)
                  for name, w, new in zip(self.weight_names, current, weights, strict=True)]
        for w, new in zip(current, arrays, strict=True):
            w.data[...] = new  # in place: optimizer state and views stay attached

    def count_params(self) -> int:
        """The number of weight values (trainable and not)."""
        return int(sum(w.size for w in self.weights))

    @property
    def weight_regularizers(self) -> list[tuple[Tensor, regularizers.Regularizer]]:
        """The (weight, regularizer) pairs whose penalties regularization_loss adds, in order."""
        return list(self._regularized)

    def regularization_loss(self) -> Tensor | None:
        """The sum of this layer's weight penalties, or None."""
        total = None
        for weight, reg in self._regularized:
            term = reg(weight)
            total = term if total is None else total + term
        return total

    # ---- description
    def get_config(self) -> dict:
        """The constructor arguments, JSON-able (used by model saving)."""
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape[1:])
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """Make a layer from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ---------------------------------------------------------------------------- layers


class Input(Layer):
    """Declares the input shape (without the batch dimension); passes data through."""

    def __init__(self, shape: Sequence[int] | int, name: str | None = None) -> None:
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"Input: shape must be a tuple of ints, got {shape!r}")
        shape = tuple(_dimension(name or "Input", "shape", n) for n in shape)
        super().__init__(name=name, input_shape=shape)
        self.built = True

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        return x

    def get_config(self) -> dict:
        return {"name": self.name, "shape": list(self.input_shape[1:])}


InputLayer = Input


def _custom_activation_error(layer: Layer) -> ValueError:
    return ValueError(
        f"layer {layer.name!r}: its activation {layer.activation!r} is a custom callable, "
        f"which cannot be saved (files name built-in activations only, and never hold "
        f"code). Use a built-in activation, or save_weights() and rebuild the model in code"
    )


class Dense(Layer):
    """A fully connected layer: activation(x @ kernel + bias)."""

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        input_dim: int | None = None,
        input_shape: Sequence[int] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, input_dim=input_dim, input_shape=input_shape)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation, self._activation_fn = get_activation(activation)
        self._activation_arg = activation
        self._builtin_activation = is_builtin_activation(self.activation, self._activation_fn)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel: Tensor | None = None
        self.bias: Tensor | None = None

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 2:
            raise ValueError(
                f"layer {self.name!r} needs inputs of shape (batch, features), got {input_shape}"
            )
        features = int(input_shape[-1])
        self.kernel = self.add_weight("kernel", (features, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer)
        super().build(input_shape)

    def pre_activation(self, x: Tensor, training: bool = False) -> Tensor:
        if x.ndim == 2:
            return F.linear(x, self.kernel, self.bias)
        lead = x.shape[:-1]
        flat = F.linear(x.reshape(-1, x.shape[-1]), self.kernel, self.bias)
        return flat.reshape(*lead, self.units)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        return self._activation_fn(self.pre_activation(x, training))

    def _check_savable_activation(self) -> None:
        if not self._builtin_activation:
            raise _custom_activation_error(self)

    def output_activation(self) -> str | None:
        # A custom callable that merely shares a built-in's name must not be replaced by
        # the built-in (a fused loss, the dead-ReLU monitor): it reports no name.
        return self.activation if self._builtin_activation else None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        self._check_savable_activation()
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def __repr__(self) -> str:
        return f"<Dense {self.name!r} units={self.units} activation={self.activation}>"


class Activation(Layer):
    """Applies an activation function, by name ("relu", ...) or as a callable."""

    def __init__(self, activation: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.activation, self._activation_fn = get_activation(activation)
        self._builtin_activation = is_builtin_activation(self.activation, self._activation_fn)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        return self._activation_fn(x)

    def _check_savable_activation(self) -> None:
        if not self._builtin_activation:
            raise _custom_activation_error(self)

    def output_activation(self) -> str | None:
        # A custom callable that merely shares a built-in's name must not be replaced by
        # the built-in (a fused loss, the dead-ReLU monitor): it reports no name.
        return self.activation if self._builtin_activation else None

    def pre_activation(self, x: Tensor, training: bool = False) -> Tensor:
        return x

    def get_config(self) -> dict:
        self._check_savable_activation()
        return {**super().get_config(), "activation": self.activation}

    def __repr__(self) -> str:
        return f"<Activation {self.name!r} {self.activation}>"


class Dropout(Layer):
    """Zeroes a fraction `rate` of the inputs while training, scaling the rest by 1/(1-rate)."""

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return x
        return x * as_tensor(self.mask(x.shape, x.dtype), x)

    @property
    def rng(self) -> np.random.Generator:
        """The generator the masks are drawn from: the layer's own when it has a seed, else
        the shared one (microgradnet.random)."""
        return self._rng if self._rng is not None else generator()

    def mask(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """One training mask: 1 / (1 - rate) where rng.random() >= rate, else 0 (one double
        drawn per value, in C order). The captured step draws it the same way (trainer's
        _dropout_forward mirrors this)."""
        keep = self.rng.random(shape) >= self.rate
        return np.asarray(keep, dtype=dtype) * dtype.type(1 / (1 - self.rate))

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """Reshapes (batch, d1, d2, ...) to (batch, d1 * d2 * ...)."""

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        rest = input_shape[1:]
        size = None if any(n is None for n in rest) else int(np.prod(rest))
        return (input_shape[0], size)


class BatchNormalization(Layer):
    """Normalizes each feature with the batch's statistics while training, and with moving
    averages of them at inference (Keras' defaults: momentum 0.99, epsilon 1e-3)."""

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"BatchNormalization: axis must be an int, got {axis!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        if epsilon <= 0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon}")
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self._inits = {
            "beta": initializers.get(beta_initializer),
            "gamma": initializers.get(gamma_initializer),
            "moving_mean": initializers.get(moving_mean_initializer),
            "moving_variance": initializers.get(moving_variance_initializer),
        }
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"layer {self.name!r}: axis {self.axis} is out of range for inputs of shape "
                f"{tuple(input_shape)} ({ndim} dimensions)"
            )
        self._axis = self.axis % ndim
        if self._axis == 0:
            raise ValueError(
                f"layer {self.name!r}: axis {self.axis} is the batch axis; normalize a feature "
                f"axis (the default -1 is the last one)"
            )
        dim = int(input_shape[self._axis])
        self._reduce = tuple(i for i in range(ndim) if i != self._axis)
        self._bshape = tuple(dim if i == self._axis else 1 for i in range(ndim))
        if self.scale:
            self.gamma = self.add_weight("gamma", (dim,), self._inits["gamma"])
        if self.center:
            self.beta = self.add_weight("beta", (dim,), self._inits["beta"])
        self.moving_mean = self.add_weight("moving_mean", (dim,), self._inits["moving_mean"],
                                           trainable=False)
        self.moving_variance = self.add_weight(
            "moving_variance", (dim,), self._inits["moving_variance"], trainable=False
        )
        super().build(input_shape)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        if training:
            mean = x.mean(axis=self._reduce, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=self._reduce, keepdims=True)
            with no_grad():
                m = self.momentum
                self.moving_mean.data[...] = (
                    m * self.moving_mean.data + (1 - m) * mean.data.reshape(-1)
                )
                self.moving_variance.data[...] = (
                    m * self.moving_variance.data + (1 - m) * var.data.reshape(-1)
                )
            y = centered / F.sqrt(var + self.epsilon)
        else:
            mean = self.moving_mean.data.reshape(self._bshape)
            std = np.sqrt(self.moving_variance.data.reshape(self._bshape) + self.epsilon)
            y = (x - as_tensor(mean, x)) / as_tensor(std, x)
        if self.gamma is not None:
            y = y * self.gamma.reshape(self._bshape)
        if self.beta is not None:
            y = y + self.beta.reshape(self._bshape)
        return y

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{f"{k}_initializer": initializers.serialize(v) for k, v in self._inits.items()},
        }


LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Input, Dense, Activation, Dropout, Flatten, BatchNormalization)
}


def deserialize(spec: dict) -> Layer:
    """Make a layer from {"class_name", "config"}; only this module's layer classes."""
    cls = LAYERS.get(spec.get("class_name"))
    if cls is None:
        raise ValueError(
            f"unknown layer class {spec.get('class_name')!r}; known: {', '.join(sorted(LAYERS))}"
        )
    return cls.from_config(dict(spec.get("config", {})))


def serialize(layer: Layer) -> dict:
    """{"class_name", "config"} for a layer (see deserialize)."""
    if type(layer).__name__ not in LAYERS or LAYERS[type(layer).__name__] is not type(layer):
        raise ValueError(f"a custom layer ({type(layer).__name__}) cannot be saved")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
