"""Grids of configurations: products of axes, lists of dicts, and their sums and products."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Grid", "config_id", "grid"]

_SCALARS = (str, bytes, int, float, bool, type(None), np.generic)


def _plain(value: Any, where: str) -> Any:
    """The value as JSON's types (numpy scalars to Python's, tuples to lists), or a clear
    error: a run's config must be stored and hashed the same way in every process."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: dict keys in a config must be str, got {k!r}")
            out[k] = _plain(v, where)
        return out
    raise TypeError(
        f"{where}: config values must be str, int, float, bool, None or lists/dicts of them "
        f"(so that a run can be saved and recognized again), got {type(value).__name__} "
        f"{value!r}; put a name in the grid and map it to the object in build()")


def _check_config(config: Any, where: str) -> dict:
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: a config must be a dict, got {type(config).__name__}")
    for key in config:
        if not isinstance(key, str):
            raise TypeError(f"{where}: config keys must be str, got {key!r}")
    return {k: _plain(v, f"{where}, key {k!r}") for k, v in config.items()}


def config_id(config: Mapping[str, Any]) -> str:
    """A stable identity of a config (the same in every process and session): the SHA-256
    of its canonical JSON (sorted keys), 16 hex digits."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _axis_values(name: str, values: Any) -> list:
    # A str, a number, None or a dict is one fixed value; any other iterable is the axis.
    if isinstance(values, (*_SCALARS, Mapping)):
        return [values]
    if not isinstance(values, Iterable):
        raise TypeError(f"grid: axis {name!r} must be a list of values (or one value), got "
                        f"{type(values).__name__}")
    return list(values)


class Grid:
    """An ordered, finite list of configs (dicts). `a + b` runs a's then b's; `a * b` is the
    product (each of a's configs merged with each of b's)."""

    def __init__(self, configs: Iterable[Mapping[str, Any]], axes: dict | None = None) -> None:
        self._configs = [_check_config(c, f"grid config {i}") for i, c in enumerate(configs)]
        self._axes = axes  # {name: values} when the grid is a product of axes (for repr)

    def __len__(self) -> int:
        return len(self._configs)

    def __iter__(self) -> Iterator[dict]:
        return (dict(c) for c in self._configs)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Grid(self._configs[index])
        return dict(self._configs[index])

    def __add__(self, other: Any) -> Grid:
        if not isinstance(other, Grid):
            return NotImplemented
        return Grid([*self._configs, *other._configs])

    def __mul__(self, other: Any) -> Grid:
        if not isinstance(other, Grid):
            return NotImplemented
        return Grid([{**a, **b} for a in self._configs for b in other._configs])

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Grid) and self._configs == other._configs

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container: not hashable

    def keys(self) -> list[str]:
        """Every key that some config sets, in order of first appearance."""
        return list(dict.fromkeys(k for c in self._configs for k in c))

    def __repr__(self) -> str:
        if self._axes is not None:
            axes = " x ".join(f"{k}={v!r}" for k, v in self._axes.items())
            return f"Grid({len(self)} configs: {axes})"
        shown = ", ".join(repr(c) for c in self._configs[:3])
        more = f", ... ({len(self) - 3} more)" if len(self) > 3 else ""
        return f"Grid({len(self)} configs: [{shown}{more}])"


def grid(*configs: Any, **axes: Any) -> Grid:
    """A grid of configs: `grid(a=[1, 2], b=["x", "y"])` is the product (the last axis
    varies fastest); `grid([{...}, {...}])` the listed configs; both given, the product of
    the list with the axes. An axis of dicts sets several keys at once."""
    listed: list[Mapping[str, Any]] = []
    for item in configs:
        if isinstance(item, Grid):
            listed.extend(item)
        elif isinstance(item, Mapping):
            listed.append(item)
        elif isinstance(item, Iterable) and not isinstance(item, (str, bytes)):
            listed.extend(item)
        else:
            raise TypeError(f"grid: positional arguments are dicts or lists of dicts, got "
                            f"{type(item).__name__} {item!r}")
    if not configs and not axes:
        raise ValueError("grid: give axes (grid(activation=['relu', 'tanh'], seed=range(3))) "
                         "or a list of configs (grid([{'lr': 0.1}, {'lr': 0.01}]))")
    values = {name: _axis_values(name, v) for name, v in axes.items()}
    product = []
    for combo in itertools.product(*values.values()):
        config: dict[str, Any] = {}
        for name, value in zip(values, combo, strict=True):
            if isinstance(value, Mapping):
                config.update(value)  # an axis of dicts: each sets several keys
            else:
                config[name] = value
        product.append(config)
    if not configs:
        return Grid(product, axes=values)
    base = [dict(c) if isinstance(c, Mapping) else c for c in listed]
    return Grid([{**c, **p} for c in base for p in product] if axes else base)
