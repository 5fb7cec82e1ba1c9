"""The floating-point mode of fit's training steps (flush subnormals to zero), and the
compiled trainer module that sets it."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["get_flush_denormal", "set_flush_denormal", "trainer", "training_fpenv"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


# Asked for by set_flush_denormal; in effect only where the machine supports it.
_flush_denormal = True


@functools.cache  # not cached while it raises (kernels not built)
def trainer() -> Any:
    """The compiled captured step (microgradnet._kernels.trainer)."""
    from .._kernels import trainer as module  # noqa: PLC0415  (built with the other kernels)

    return module


def set_flush_denormal(mode: bool) -> bool:
    """Set whether fit's training steps flush subnormal numbers to zero (True by default).

    Returns whether the machine supports it (x86 with SSE2). x86 computes on numbers below
    1.2e-38 (float) through a microcode assist, 10-100x slower, and training drives a few
    weights and moments there. Flushed (FTZ and DAZ, as XLA and TensorFlow compute on CPU;
    PyTorch's switch is torch.set_flush_denormal), such a number becomes 0, so training can
    end a little elsewhere than in IEEE arithmetic. Both of fit's paths, eager and captured,
    train in the same mode and end with the same bits; callbacks, validation, evaluate and
    predict run in the caller's mode.
    """
    global _flush_denormal
    _flush_denormal = bool(mode)
    return _supported()


def get_flush_denormal() -> bool:
    """Whether fit's training steps flush subnormal numbers to zero on this machine."""
    return _flush_denormal and _supported()


@functools.cache
def _supported() -> bool:
    try:
        return bool(trainer().CAN_FLUSH_DENORMAL)
    except ImportError:  # the kernels are not built: the numpy backend, IEEE arithmetic
        return False


class _TrainingFpEnv:
    """The floating-point mode of fit's training steps inside the block (entered for every
    eager step, so a plain class rather than a generator-based context manager)."""

    __slots__ = ("_old",)

    def __enter__(self) -> None:
        self._old = trainer()._ftz_enter() if _flush_denormal and _supported() else None

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            trainer()._ftz_leave(self._old)


def training_fpenv() -> _TrainingFpEnv:
    """Run the block in the floating-point mode of fit's training steps, then restore."""
    return _TrainingFpEnv()
