"""The framework's random number generator, seeded by `manual_seed`.

Initializers, dropout and shuffling draw from `generator()`, so one `manual_seed(s)` makes
a run reproducible to the bit.
"""

from __future__ import annotations

import random as _py_random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["generator", "manual_seed", "set_random_seed", "use_generator"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


_generator: np.random.Generator | None = None  # None: numpy's global stream (_numpy_global)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed microgradnet's generator (initial weights, dropout, shuffling) and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """Return the generator that microgradnet draws all its random numbers from."""
    return _generator if _generator is not None else _numpy_global()


@contextmanager
def use_generator(gen: np.random.Generator) -> Iterator[np.random.Generator]:
    """Within the block, microgradnet draws from `gen` (a run's own generator, as a sweep
    gives each run); the generator before is restored after it."""
    global _generator
    if not isinstance(gen, np.random.Generator):
        raise TypeError(f"use_generator takes a numpy Generator, got {type(gen).__name__}")
    before = _generator
    _generator = gen
    try:
        yield gen
    finally:
        _generator = before


def set_random_seed(seed: int) -> None:
    """Seed Python's `random`, numpy's global generator and microgradnet's (Keras 3's name)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 2**32:
        raise ValueError(f"seed must be below 2**32 (numpy's global generator), got {seed}")
    manual_seed(seed)  # refuses what is not a non-negative int
    _py_random.seed(int(seed))
    np.random.seed(int(seed))  # noqa: NPY002  (numpy's global stream: what Keras 3 seeds)


# Until manual_seed is called, microgradnet draws from numpy's global stream (the MT19937 bit
# generator behind np.random.seed), as Keras 1 drew its weights and shuffles from np.random:
# np.random.seed(n) then makes a run reproducible (and glorot_uniform draws what Keras 1 drew
# on Theano). np.random.seed reseeds that bit generator in place, so the Generator on it sees
# every seeding; it is made again if np.random.set_bit_generator replaces it.
_numpy_cache: tuple[np.random.BitGenerator, np.random.Generator] | None = None


def _numpy_global() -> np.random.Generator:
    global _numpy_cache
    bit_generator = np.random.get_bit_generator()
    cached = _numpy_cache
    if cached is None or cached[0] is not bit_generator:
        cached = _numpy_cache = (bit_generator, np.random.Generator(bit_generator))
    return cached[1]
