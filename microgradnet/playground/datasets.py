"""The playground's data sets: each a plain numpy function of (n, noise, rng).

The exported code (export.py) carries the source of the function it used, so a script
regenerates the very same points: keep each generator self-contained (numpy only, no
helpers from this module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "FEATURES", "Dataset", "circle", "features", "gauss", "make", "moons",
           "perceptron", "ramp", "reg_gauss", "reg_plane", "sine", "spiral", "split", "xor"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def circle(n, noise, rng):
    """Class 1 inside a disc of radius 2.5, class 0 on a ring from 3.5 to 5 (TF Playground's)."""
    inner = n // 2
    r = np.concatenate([rng.uniform(0, 2.5, inner), rng.uniform(3.5, 5, n - inner)])
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    x += rng.uniform(-5, 5, (n, 2)) * noise
    y = (np.hypot(x[:, 0], x[:, 1]) < 3).astype(np.float64)  # labelled after the noise
    return x, y


def xor(n, noise, rng):
    """Class 1 where x1 * x2 > 0, on [-5, 5]^2 with a margin around the axes."""
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)  # keep points off the axes, as TF Playground does
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float64)
    x += rng.uniform(-5, 5, (n, 2)) * noise
    return x, y


def gauss(n, noise, rng):
    """Two Gaussian clusters at (2, 2) (class 1) and (-2, -2) (class 0)."""
    half = n // 2
    sd = 0.5 + 3.5 * noise
    x = np.concatenate([rng.normal(2, sd, (half, 2)), rng.normal(-2, sd, (n - half, 2))])
    y = np.concatenate([np.ones(half), np.zeros(n - half)])
    return x, y


def spiral(n, noise, rng):
    """Two interleaved spirals, one per class."""
    half = n // 2
    parts = []
    for k, (count, delta) in enumerate(((half, 0.0), (n - half, np.pi))):
        r = np.arange(count) / max(count, 1) * 5
        t = 1.75 * np.arange(count) / max(count, 1) * 2 * np.pi + delta
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        pts += rng.uniform(-1, 1, (count, 2)) * noise * 5
        parts.append((pts, np.full(count, 1.0 - k)))
    return (np.concatenate([parts[0][0], parts[1][0]]),
            np.concatenate([parts[0][1], parts[1][1]]))


def moons(n, noise, rng):
    """Two half moons (seed 003), noise the normal noise's standard deviation / 5 / 0.1."""
    half = n // 2
    t0, t1 = np.linspace(0, np.pi, half), np.linspace(0, np.pi, n - half)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], axis=1),
                        np.stack([1 - np.cos(t1), 1 - np.sin(t1) - 0.5], axis=1)])
    x += rng.normal(0, noise, x.shape)
    y = np.concatenate([np.zeros(half), np.ones(n - half)])
    return x, y


def perceptron(n, noise, rng):
    """Linearly separable: class 1 where x1 + x2 > 0 (seed 002's single sigmoid unit)."""
    x = rng.uniform(-5, 5, (n, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float64)
    x += rng.normal(0, 5 * noise, (n, 2))
    return x, y


def reg_plane(n, noise, rng):
    """Regression on a tilted plane, y = (x1 + x2) / 10."""
    x = rng.uniform(-6, 6, (n, 2))
    y = (x[:, 0] + x[:, 1]) / 10 + rng.uniform(-1, 1, n) * noise
    return x, y


def reg_gauss(n, noise, rng):
    """Regression on bumps: six Gaussians of height +-1 over the plane."""
    centers = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1],
                        [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], dtype=np.float64)
    x = rng.uniform(-6, 6, (n, 2))
    d2 = ((x[:, None, :] - centers[None, :, :2]) ** 2).sum(axis=2)
    y = (centers[:, 2] * np.exp(-d2 / 2)).sum(axis=1) + rng.uniform(-1, 1, n) * noise
    return x, y


def ramp(n, noise, rng):
    """Seed 000's ramp: zero, then 2x, on x in [0, 2] (the single ReLU neuron's data)."""
    x = np.linspace(0, 2, n)
    half = n // 2
    y = np.concatenate([np.zeros(half), x[:n - half]]) * 2 + rng.normal(0, noise, n)
    return x[:, None], y


def sine(n, noise, rng):
    """Seed 004's noisy sine: sin(x) on [0, 10] plus normal noise, x scaled to [-1, 1]."""
    x = np.linspace(0, 10, n)
    y = np.sin(x) + rng.normal(0, noise, n)
    return (x / 5 - 1)[:, None], y


@dataclass(frozen=True)
class Dataset:
    """One data set: its generator, problem type, input dimensions and drawing domain."""

    name: str
    make: Callable
    problem: str  # "classification" or "regression"
    dims: int  # 2: points in the plane; 1: y over x (drawn as data and fitted curve)
    domain: tuple[float, float]  # the x (and x1, x2) range drawn on the page


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("circle", circle, "classification", 2, (-6.0, 6.0)),
    Dataset("xor", xor, "classification", 2, (-6.0, 6.0)),
    Dataset("gauss", gauss, "classification", 2, (-6.0, 6.0)),
    Dataset("spiral", spiral, "classification", 2, (-6.0, 6.0)),
    Dataset("moons", moons, "classification", 2, (-1.5, 2.5)),
    Dataset("perceptron", perceptron, "classification", 2, (-6.0, 6.0)),
    Dataset("reg-plane", reg_plane, "regression", 2, (-6.0, 6.0)),
    Dataset("reg-gauss", reg_gauss, "regression", 2, (-6.0, 6.0)),
    Dataset("ramp", ramp, "regression", 1, (0.0, 2.0)),
    Dataset("sine", sine, "regression", 1, (-1.0, 1.0)),
)}

# The input features of 2-D data, as numpy expressions of the columns x1 and x2.
FEATURES: dict[str, str] = {
    "x1": "x1", "x2": "x2", "x1^2": "x1 ** 2", "x2^2": "x2 ** 2", "x1x2": "x1 * x2",
    "sin x1": "np.sin(x1)", "sin x2": "np.sin(x2)",
}


# The same, as functions (FEATURES is what the exported code writes).
_FEATURE_FNS: dict[str, Callable] = {
    "x1": lambda x1, x2: x1, "x2": lambda x1, x2: x2, "x1^2": lambda x1, x2: x1 ** 2,
    "x2^2": lambda x1, x2: x2 ** 2, "x1x2": lambda x1, x2: x1 * x2,
    "sin x1": lambda x1, x2: np.sin(x1), "sin x2": lambda x1, x2: np.sin(x2),
}


def make(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All n points of data set `name` (float64 x of shape (n, dims), y of shape (n,))."""
    x, y = DATASETS[name].make(n, noise, np.random.default_rng(seed))
    return x, y


def split(n: int, train_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a permutation drawn from its own generator, cut at the ratio."""
    order = np.random.default_rng([seed, 1]).permutation(n)
    cut = min(max(int(round(n * train_ratio)), 1), n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def features(x: np.ndarray, names: list[str], dims: int) -> np.ndarray:
    """The model's float32 inputs: the chosen features of 2-D points (1-D data: x itself)."""
    if dims == 1:
        return x.astype(np.float32)
    x1, x2 = x[:, 0], x[:, 1]
    return np.stack([_FEATURE_FNS[f](x1, x2) for f in names], axis=1).astype(np.float32)
