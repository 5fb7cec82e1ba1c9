"""The elementwise activations, one row each: everything else derives from this table.

functional makes each row's Function and function (`mg.<name>`), layers takes the names for
Dense(activation=...) and Activation, the captured path (fastpath) its parameter's default;
the tests and the benchmarks iterate over it. The kernels of a row are `<name>_forward(x,
[alpha,] out=None)` and `<name>_backward(dy, y or x, [alpha,] out=None)`: in C a row of
csrc/activation_table.pxi (the same names in the same order; tests/test_activation_table.py
checks that the two agree), in numpy functions of `_reference.py`.

softmax and log_softmax, which act along an axis, are not rows: functional writes them out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "ActivationSpec", "BY_NAME", "NAMES"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


@dataclass(frozen=True)
class ActivationSpec:
    """One elementwise activation: its name, what its backward reads, its parameter."""

    name: str  # mg.<name>, Dense(activation=name), the kernels <name>_forward/_backward
    function_class: str  # the name of its Function (autograd's messages name it)
    saves: str  # what its backward reads: "y" (the output) or "x" (the input)
    doc: str  # the docstring of mg.<name>
    alpha: float | None = None  # the default of its one parameter, alpha; None: it has none
    alpha_positive: bool = False  # alpha must be > 0 (the backward reads f' off the output)
    trainable: bool = True  # False: its gradient is zero everywhere (no net learns through it)
    bounded: bool = False  # its output stays within [-1, 1] (sigmoid, tanh)

    @property
    def forward_kernel(self) -> str:
        """The name of its forward kernel."""
        return f"{self.name}_forward"

    @property
    def backward_kernel(self) -> str:
        """The name of its backward kernel."""
        return f"{self.name}_backward"


ACTIVATIONS: tuple[ActivationSpec, ...] = (
    ActivationSpec("relu", "ReLU", "y", "Elementwise max(x, 0)."),
    ActivationSpec("leaky_relu", "LeakyReLU", "x", "Elementwise x if x > 0 else alpha * x.",
                   alpha=0.01),
    ActivationSpec("elu", "ELU", "y",
                   "Elementwise x if x > 0 else alpha * (exp(x) - 1); alpha must be positive.",
                   alpha=1.0, alpha_positive=True),
    ActivationSpec("sigmoid", "Sigmoid", "y", "Elementwise 1 / (1 + exp(-x)).", bounded=True),
    ActivationSpec("tanh", "Tanh", "y", "Elementwise hyperbolic tangent.", bounded=True),
    ActivationSpec("softplus", "Softplus", "x",
                   "Elementwise log(1 + exp(x)), stable for large |x|."),
    ActivationSpec("gelu", "GELU", "x",
                   "Elementwise exact GELU, x * Phi(x) (erf-based, as PyTorch's default)."),
    ActivationSpec("silu", "SiLU", "x", "Elementwise x * sigmoid(x) (also called swish)."),
    ActivationSpec("step", "Step", "x",
                   "Elementwise binary step: 1 where x >= 0, else 0 (its gradient is zero).",
                   trainable=False),
    ActivationSpec("selu", "SELU", "y",
                   "Elementwise scale * (x if x > 0 else alpha * (exp(x) - 1)), with Keras' "
                   "alpha = 1.67326... and scale = 1.05070... (self-normalizing)."),
    ActivationSpec("mish", "Mish", "x", "Elementwise x * tanh(softplus(x))."),
)

BY_NAME: dict[str, ActivationSpec] = {a.name: a for a in ACTIVATIONS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
