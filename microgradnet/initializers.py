"""Weight initializers, by Keras name or as objects: `init(shape, dtype) -> ndarray`.

Draws come from microgradnet's generator (`mg.manual_seed`), or from the initializer's own
`seed` when one is given, so a seeded run is reproducible to the bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .random import generator

__all__ = ["Constant", "get", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
           "Initializer", "LecunNormal", "LecunUniform", "Ones", "RandomNormal", "RandomUniform",
           "serialize", "TruncatedNormal", "VarianceScaling", "Zeros"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


# Keras draws its truncated normals at +-2 stddev; a unit normal truncated there has this
# standard deviation, so variance-scaling divides it out to keep the intended variance.
_TRUNCATED_STDDEV = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """fan_in and fan_out of a weight of this shape (Keras' convention)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: call with a shape (and dtype) to get an initial weight array."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return generator() if self.seed is None else np.random.default_rng(self.seed)

    def __call__(self, shape: Any, dtype: Any = np.float32) -> np.ndarray:
        shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        return np.asarray(self.sample(shape, self._rng()), dtype=dtype)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draw the values (in float64); subclasses implement this."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able."""
        return {"seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    def __init__(self) -> None:
        super().__init__(None)

    def sample(self, shape, rng):
        return np.zeros(shape)

    def get_config(self) -> dict:
        return {}


class Ones(Zeros):
    """All ones."""

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every element `value`."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(None)
        self.value = float(value)

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal draws with `mean` and `stddev`."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        if stddev < 0:
            raise ValueError(f"RandomNormal: stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform draws in [minval, maxval)."""

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        if maxval < minval:
            raise ValueError(f"RandomUniform: maxval {maxval} is below minval {minval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng: np.random.Generator, shape, mean: float, stddev: float):
    """Normal draws, redrawn until within 2 stddev of the mean (as Keras does)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


class TruncatedNormal(RandomNormal):
    """Normal draws with `mean` and `stddev`, redrawn beyond 2 stddev."""

    def sample(self, shape, rng):
        return _truncated_normal(rng, shape, self.mean, self.stddev)


class VarianceScaling(Initializer):
    """Draws with variance scale / n, n the fan_in, fan_out or their mean (Keras' family)."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be > 0, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: unknown mode {mode!r} (fan_in, fan_out, fan_avg)")
        known = ("truncated_normal", "untruncated_normal", "uniform")
        if distribution not in known:
            raise ValueError(
                f"VarianceScaling: unknown distribution {distribution!r} ({', '.join(known)})"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        return _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STDDEV)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _preset(name: str, scale: float, mode: str, distribution: str, doc: str) -> type:
    def __init__(self, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": doc})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Uniform in +-sqrt(6 / (fan_in + fan_out)) (Xavier).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "Uniform in +-sqrt(6 / fan_in).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal, stddev sqrt(2 / fan_in).")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "Uniform in +-sqrt(3 / fan_in).")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal, stddev sqrt(1 / fan_in).")

_BY_NAME: dict[str, type[Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier: Any) -> Initializer:
    """An initializer from a name ("he_normal", "HeNormal"), a config dict or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(
                f"unknown initializer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown initializer class {identifier['class_name']!r}")
        return cls(**identifier.get("config", {}))
    if callable(identifier):
        return _Callable(identifier)
    raise TypeError(f"cannot make an initializer from {type(identifier).__name__}")


def serialize(init: Initializer) -> dict:
    """A JSON-able description that `get` turns back into the initializer."""
    if isinstance(init, _Callable):
        raise ValueError("an initializer given as a plain function cannot be saved")
    return {"class_name": type(init).__name__, "config": init.get_config()}


class _Callable(Initializer):
    """Wraps a user function f(shape, dtype) -> array."""

    def __init__(self, fn) -> None:
        super().__init__(None)
        self.fn = fn

    def __call__(self, shape: Any, dtype: Any = np.float32) -> np.ndarray:
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (int(shape),)
        out = np.asarray(self.fn(shape, dtype), dtype=dtype)
        if out.shape != shape:
            raise ValueError(f"initializer {self.fn!r} returned shape {out.shape}, not {shape}")
        return out
