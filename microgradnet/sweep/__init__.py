"""Sweeps: train a grid of small nets in one call (issue 14).

    results = mg.sweep(build, mg.grid(activation=["relu", "tanh"], seed=range(4)), x, y,
                       epochs=100, batch_size=32, n_jobs=-1)
    results.to_pandas(); results.best("accuracy"); mg.viz.plot_sweep(results, ...)

This module is itself callable: `mg.sweep(...)` is `mg.sweep.sweep(...)`, and
`mg.sweep.load(path)` reads saved results.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ._api import SweepInterrupted, sweep
from ._grid import Grid, config_id, grid
from ._results import Run, SweepResults, load
from ._train import dead_units, train_group

__all__ = ["Grid", "Run", "SweepInterrupted", "SweepResults", "config_id", "dead_units", "grid",
           "load", "sweep", "train_group"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not sys, types, ...


class _CallableModule(types.ModuleType):
    """The module microgradnet.sweep, callable as its function sweep."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResults:
        """Run a sweep: see microgradnet.sweep.sweep."""
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
