"""Finite-difference gradient check, shaped like torch.autograd.gradcheck, and kink-aware.

For every input that requires grad and every output, the Jacobian from backward() (one
one-hot upstream gradient per output element) is compared with central differences
(f(x + eps) - f(x - eps)) / 2eps, entry by entry: |analytical - numerical| must be at most
atol + rtol * |numerical|.

Kinks. At a point where the function has a kink (relu or abs at 0, max/maximum at a tie,
leaky_relu at 0) the derivative does not exist and central differences give the mean of
the two one-sided slopes, which no framework's choice of subgradient needs to match. So
gradcheck also computes the one-sided differences right = (f(x + eps) - f(x)) / eps and
left = (f(x) - f(x - eps)) / eps. Where they differ by more than the tolerance, the entry
is taken to sit at (or within eps of) a kink, and an analytical value anywhere between
left and right (widened by the tolerance) passes: that is the set of one-sided slopes, and
so of the subgradients. Elsewhere left and right agree to O(eps) and the usual test
applies, so a wrong backward of a smooth function still fails.

Also checked, as PyTorch does: a second backward gives the same Jacobian, and a zero
upstream gradient gives zero gradients. Inputs that are not float64 get a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


class GradcheckError(RuntimeError):
    """Raised by gradcheck when an analytical gradient disagrees with finite differences."""


def _outputs(result: Any) -> tuple[Tensor, ...]:
    outs = result if isinstance(result, (tuple, list)) else (result,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: output {i} of fn is a {type(o).__name__}, not a Tensor")
    return tuple(outs)


def _evaluate(fn: Callable, inputs: tuple) -> list[np.ndarray]:
    with no_grad():
        return [np.array(o.data, dtype=np.float64).ravel() for o in _outputs(fn(*inputs))]


def _numerical(fn: Callable, inputs: tuple, wrt: list[int], eps: float, sizes: list[int]):
    """Per output and input: central, left and right difference Jacobians (out, in)."""
    base = _evaluate(fn, inputs)
    result = []
    for o_size in sizes:
        result.append([[np.zeros((o_size, inputs[i].size)) for _ in range(3)] for i in wrt])
    for w, i in enumerate(wrt):
        flat = inputs[i].data.reshape(-1)  # a view: the data was made contiguous
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            plus = _evaluate(fn, inputs)
            flat[j] = original - eps
            minus = _evaluate(fn, inputs)
            flat[j] = original
            for o, (p, m, b) in enumerate(zip(plus, minus, base, strict=True)):
                central, left, right = result[o][w]
                central[:, j] = (p - m) / (2 * eps)
                left[:, j] = (b - m) / eps
                right[:, j] = (p - b) / eps
    return result


def _analytical(outs: tuple[Tensor, ...], inputs: tuple, wrt: list[int]):
    """Per output and input: the Jacobian (out, in) built row by row with backward()."""
    result = []
    for o in outs:
        jac = [np.zeros((o.size, inputs[i].size)) for i in wrt]
        if o.requires_grad:
            for k in range(o.size):
                seed = np.zeros(o.size, dtype=o.dtype)
                seed[k] = 1
                for i in wrt:
                    inputs[i].grad = None
                o.backward(seed.reshape(o.shape), retain_graph=True)
                for w, i in enumerate(wrt):
                    if inputs[i].grad is not None:
                        jac[w][k] = inputs[i].grad.data.ravel()
        result.append(jac)
    return result


def _format_mismatch(o: int, i: int, central, left, right, analytical, bad) -> str:
    lines = [f"Jacobian mismatch for output {o} with respect to input {i}"]
    if central.size <= 36:
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            lines.append(f"numerical:\n{central}")
            lines.append(f"analytical:\n{analytical}")
    rows, cols = np.nonzero(bad)
    err = np.abs(analytical - central)[rows, cols]
    worst = np.argsort(-err)[:10]
    lines.append(
        f"{rows.size} of {central.size} entries differ; the worst (output element, input "
        f"element): numerical [left, right] vs analytical"
    )
    for w in worst:
        r, c = rows[w], cols[w]
        lines.append(
            f"  ({r}, {c}): {central[r, c]:.6g} [{left[r, c]:.6g}, {right[r, c]:.6g}] "
            f"vs {analytical[r, c]:.6g}"
        )
    return "\n".join(lines)


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check fn's backward against finite differences at `inputs`; True if all agree."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {inputs[i].dtype}, not float64; finite differences "
                f"in low precision are unreliable",
                UserWarning,
                stacklevel=2,
            )
    saved = [(inputs[i].data, inputs[i].grad) for i in wrt]
    for i in wrt:
        inputs[i].data = np.ascontiguousarray(inputs[i].data)
    try:
        outs = _outputs(fn(*inputs))
        if not any(o.requires_grad for o in outs):
            raise ValueError("gradcheck: no output of fn requires grad")
        numerical = _numerical(fn, inputs, wrt, eps, [o.size for o in outs])
        analytical = _analytical(outs, inputs, wrt)
        failures = []
        for o, (num_o, ana_o) in enumerate(zip(numerical, analytical, strict=True)):
            for w, i in enumerate(wrt):
                (central, left, right), ana = num_o[w], ana_o[w]
                tol = atol + rtol * np.maximum(np.abs(left), np.abs(right))
                close = np.abs(ana - central) <= atol + rtol * np.abs(central)
                kink = np.abs(right - left) > tol
                lo, hi = np.minimum(left, right) - tol, np.maximum(left, right) + tol
                ok = close | (kink & (ana >= lo) & (ana <= hi))
                if not ok.all():
                    failures.append(_format_mismatch(o, i, central, left, right, ana, ~ok))
        if not failures:
            again = _analytical(outs, inputs, wrt)
            for o, (first, second) in enumerate(zip(analytical, again, strict=True)):
                for w, i in enumerate(wrt):
                    if not np.array_equal(first[w], second[w], equal_nan=True):
                        failures.append(
                            f"backward is not reentrant: a second backward gave another "
                            f"Jacobian for output {o} with respect to input {i}"
                        )
            for o, out in enumerate(outs):
                if not out.requires_grad:
                    continue
                for i in wrt:
                    inputs[i].grad = None
                out.backward(np.zeros(out.shape, dtype=out.dtype), retain_graph=True)
                for i in wrt:
                    g = inputs[i].grad
                    if g is not None and np.any(g.data != 0):
                        failures.append(
                            f"a zero upstream gradient for output {o} gave a nonzero "
                            f"gradient for input {i}"
                        )
    finally:
        # Every perturbation was undone, so the original arrays hold the original values.
        for i, (data, grad) in zip(wrt, saved, strict=True):
            inputs[i].data, inputs[i].grad = data, grad
    if failures:
        if raise_exception:
            raise GradcheckError("\n\n".join(failures))
        return False
    return True
