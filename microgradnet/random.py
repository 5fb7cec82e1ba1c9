"""The framework's random number generator, seeded by `manual_seed`.

Initializers, dropout and shuffling draw from `generator()`, so one `manual_seed(s)` makes
a run reproducible to the bit.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed microgradnet's generator (initial weights, dropout, shuffling) and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """Return the generator that microgradnet draws all its random numbers from."""
    return _generator
