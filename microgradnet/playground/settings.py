"""A playground setting: its fields, their defaults and limits, the check of a setting sent
by the page (or crafted by anyone), and the presets (the seeds' problems)."""

from __future__ import annotations

import math
from typing import Any

from .. import initializers as _initializers
from ..activation_table import NAMES as _ACTIVATION_NAMES
from .datasets import DATASETS, FEATURES

__all__ = ["ACTIVATIONS", "DEFAULTS", "INITIALIZERS", "LIMITS", "OPTIMIZERS", "PRESETS",
           "SettingError", "check", "options", "output_activation", "problem"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


class SettingError(ValueError):
    """A setting the server refuses; the message names the field, .field is its key."""

    field: str | None = None


# Hard caps (what the server accepts at all) beside the page editor's limits (what its
# buttons offer): presets such as seed 004's 1x60 net go beyond the editor's 6x8.
LIMITS: dict[str, int] = {
    "editor_layers": 6, "editor_units": 8,
    "max_layers": 8, "max_units": 64,
    "min_points": 10, "max_points": 2000,
    "max_batch_size": 2000, "max_steps_per_frame": 5000,
    "max_message_bytes": 65536, "max_sessions": 8, "max_gif_frames": 240,
    "max_seed": 2**31 - 1, "max_recorded_ops": 5000,
}

ACTIVATIONS = tuple(a for a in _ACTIVATION_NAMES if a != "step") + ("linear",)
OUTPUT_ACTIVATIONS = ("auto",) + ACTIVATIONS
INITIALIZERS = tuple(sorted(n for n in _initializers._BY_NAME
                            if n not in ("constant", "variance_scaling")))
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad")
REGULARIZATIONS = ("none", "l1", "l2")

DEFAULTS: dict[str, Any] = {
    "dataset": "circle", "noise": 0.0, "points": 500, "train_ratio": 0.5, "data_seed": 0,
    "features": ["x1", "x2"], "layers": [4, 2], "activation": "tanh",
    "output_activation": "auto", "initializer": "glorot_uniform", "optimizer": "sgd",
    "learning_rate": 0.03, "momentum": 0.0, "regularization": "none",
    "regularization_rate": 0.0, "batch_size": 10, "seed": 0, "steps_per_frame": 300,
}

# The fields that make the data: run B of an A/B comparison must share them with run A.
DATA_FIELDS = ("dataset", "noise", "points", "train_ratio", "data_seed")


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise SettingError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise SettingError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise SettingError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return value


def _name(name: str, value: Any, known: tuple | dict) -> str:
    if not isinstance(value, str) or value not in known:
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise SettingError(f"unknown {name} {shown}; known: {', '.join(known)}")
    return value


def _features(feats: Any) -> list[str]:
    if not isinstance(feats, list) or not feats or len(feats) > len(FEATURES):
        raise SettingError(f"features must be a non-empty list of at most {len(FEATURES)} "
                           f"names, got {str(feats)[:60]}")
    for f in feats:
        _name("feature", f, FEATURES)
    if len(set(feats)) != len(feats):
        raise SettingError(f"features lists a name twice: {feats}")
    return [f for f in FEATURES if f in feats]  # one canonical order


def _layers(layers: Any) -> list[int]:
    if not isinstance(layers, list):
        raise SettingError(f"layers must be a list of hidden-layer widths, got {layers!r:.60}")
    if len(layers) > LIMITS["max_layers"]:
        raise SettingError(f"layers: at most {LIMITS['max_layers']} hidden layers, got "
                           f"{len(layers)}")
    return [_int(f"layers[{i}]", w, 1, LIMITS["max_units"]) for i, w in enumerate(layers)]


# One check per field, in the order of DEFAULTS.
_CHECKS: dict[str, Any] = {
    "dataset": lambda v: _name("dataset", v, DATASETS),
    "noise": lambda v: _number("noise", v, 0.0, 1.0),
    "points": lambda v: _int("points", v, LIMITS["min_points"], LIMITS["max_points"]),
    "train_ratio": lambda v: _number("train_ratio", v, 0.1, 0.9),
    "data_seed": lambda v: _int("data_seed", v, 0, LIMITS["max_seed"]),
    "features": _features,
    "layers": _layers,
    "activation": lambda v: _name("activation", v, ACTIVATIONS),
    "output_activation": lambda v: _name("output_activation", v, OUTPUT_ACTIVATIONS),
    "initializer": lambda v: _name("initializer", v, INITIALIZERS),
    "optimizer": lambda v: _name("optimizer", v, OPTIMIZERS),
    "learning_rate": lambda v: _number("learning_rate", v, 1e-6, 10.0),
    "momentum": lambda v: _number("momentum", v, 0.0, 0.999),
    "regularization": lambda v: _name("regularization", v, REGULARIZATIONS),
    "regularization_rate": lambda v: _number("regularization_rate", v, 0.0, 10.0),
    "batch_size": lambda v: _int("batch_size", v, 1, LIMITS["max_batch_size"]),
    "seed": lambda v: _int("seed", v, 0, LIMITS["max_seed"]),
    "steps_per_frame": lambda v: _int("steps_per_frame", v, 1, LIMITS["max_steps_per_frame"]),
}


def check(setting: Any, base: dict | None = None) -> dict:
    """The full, checked setting: `setting`'s fields over `base` (the defaults when None).
    Raises SettingError naming the first bad field (also in its .field)."""
    if not isinstance(setting, dict):
        raise SettingError(f"setting must be a JSON object, got {type(setting).__name__}")
    unknown = sorted(set(setting) - set(DEFAULTS))
    if unknown:
        raise SettingError(f"unknown setting field {unknown[0][:40]!r}; known: "
                           + ", ".join(DEFAULTS))
    s = {**(base or DEFAULTS), **setting}
    out: dict[str, Any] = {}
    for field, fn in _CHECKS.items():
        try:
            out[field] = fn(s[field])
        except SettingError as e:
            e.field = field
            raise
    return out


def problem(setting: dict) -> str:
    """"classification" or "regression", by the data set."""
    return DATASETS[setting["dataset"]].problem


def output_activation(setting: dict) -> str:
    """The output layer's activation: sigmoid for classification, linear for regression,
    unless the setting names one."""
    if setting["output_activation"] != "auto":
        return setting["output_activation"]
    return "sigmoid" if problem(setting) == "classification" else "linear"


def _preset(**fields: Any) -> dict:
    return check(fields)


# The seeds' problems (shared/seeds): name -> full setting. "setting_b" (when there) is the
# preset's A/B partner, as the fields that differ.
PRESETS: dict[str, dict] = {
    # Seed 000: one ReLU neuron on the ramp; seed 3 draws a negative weight, so every point
    # maps below zero from the start: the dying ReLU the seed shows.
    "000 dying ReLU neuron": {"setting": _preset(
        dataset="ramp", points=200, noise=0.0, train_ratio=0.9, layers=[],
        output_activation="relu", optimizer="sgd", learning_rate=0.01, batch_size=50,
        seed=3, steps_per_frame=40)},
    "000 ReLU neuron on the ramp": {"setting": _preset(
        dataset="ramp", points=200, noise=0.0, train_ratio=0.9, layers=[],
        output_activation="relu", optimizer="sgd", learning_rate=0.01, batch_size=50,
        seed=0, steps_per_frame=40)},
    "002 sigmoid perceptron": {"setting": _preset(
        dataset="perceptron", points=200, noise=0.0, layers=[], optimizer="sgd",
        learning_rate=0.1, batch_size=10, seed=1)},
    # Seed 003: moons, 2-32-32-1, each hidden activation from random-normal weights (A)
    # against all-zero weights (B): the six runs of the seed's grid, three presets.
    **{f"003 moons {act}: random_normal vs zeros": {"setting": _preset(
        dataset="moons", points=1000, noise=0.1, train_ratio=0.8, layers=[32, 32],
        activation=act, initializer="random_normal", optimizer="sgd", learning_rate=0.1,
        batch_size=32), "setting_b": {"initializer": "zeros"}}
       for act in ("relu", "sigmoid", "tanh")},
    "004 sine 1x60 vs 2x10": {"setting": _preset(
        dataset="sine", points=500, noise=0.1, train_ratio=0.8, layers=[60],
        activation="tanh", optimizer="adam", learning_rate=0.01, batch_size=50),
        "setting_b": {"layers": [10, 10]}},
    "004 sine SGD vs Adam": {"setting": _preset(
        dataset="sine", points=500, noise=0.1, train_ratio=0.8, layers=[10, 10],
        activation="tanh", optimizer="sgd", learning_rate=0.01, batch_size=50),
        "setting_b": {"optimizer": "adam"}},
}


def options() -> dict:
    """What GET /api/options answers: the names the page offers, presets and limits."""
    return {
        "datasets": {name: {"problem": d.problem, "dims": d.dims, "domain": list(d.domain)}
                     for name, d in DATASETS.items()},
        "features": list(FEATURES), "activations": list(ACTIVATIONS),
        "output_activations": list(OUTPUT_ACTIVATIONS), "initializers": list(INITIALIZERS),
        "optimizers": list(OPTIMIZERS), "regularizations": list(REGULARIZATIONS),
        "defaults": DEFAULTS, "presets": PRESETS, "limits": LIMITS,
        "data_fields": list(DATA_FIELDS),
    }

