"""Weight penalties added to the training loss: l1, l2 and l1_l2 (Keras names and defaults)."""

from __future__ import annotations

from typing import Any

from . import functional as F
from .autograd import Tensor

__all__ = ["get", "L1", "L1L2", "L2", "Regularizer", "serialize"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


class Regularizer:
    """Base class: call with a weight Tensor to get its penalty, a scalar Tensor."""

    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able."""
        return dict(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w ** 2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        if l1 < 0 or l2 < 0:
            raise ValueError(f"regularization factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight: Tensor) -> Tensor:
        penalty = None
        if self.l1:
            penalty = F.sum(F.abs(weight)) * self.l1
        if self.l2:
            term = F.sum(weight * weight) * self.l2
            penalty = term if penalty is None else penalty + term
        return penalty if penalty is not None else F.sum(weight) * 0.0


class L1(L1L2):
    """l1 * sum(|w|)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w ** 2)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier: Any) -> Regularizer | None:
    """A regularizer from None, a name ("l2"), a config dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(
                f"unknown regularizer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]](**identifier.get("config", {}))
    raise TypeError(f"cannot make a regularizer from {identifier!r}")


def serialize(reg: Regularizer | None) -> dict | None:
    """A JSON-able description that `get` turns back into the regularizer."""
    if reg is None:
        return None
    if type(reg) not in _BY_CLASS.values():
        raise ValueError(f"a custom regularizer ({type(reg).__name__}) cannot be saved")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
