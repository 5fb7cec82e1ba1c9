"""microgradnet: a small autograd framework with Cython kernels.

Watch small neural nets learn, and train them fast on a CPU. The Tensor API follows
PyTorch (backward, grad, no_grad); the model API follows Keras.
"""

from . import (
    _ffmpeg,
    callbacks,
    functional,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    sweep,
)
from .activation_table import NAMES as _ACTIVATION_NAMES
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .backend import backend_name, get_num_threads, set_backend, set_num_threads, use_backend
from .creation import ones, rand, randn, zeros
from .functional import (
    abs,
    add,
    cast,
    clip,
    concatenate,
    div,
    equal,
    exp,
    getitem,
    greater,
    greater_equal,
    less,
    less_equal,
    linear,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mse_loss,
    mul,
    neg,
    not_equal,
    pow,
    reshape,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
    sqrt,
    stack,
    sub,
    sum,
    transpose,
    where,
)
from .gradcheck import GradcheckError, gradcheck
from .layers import Input
from .models import Sequential
from .random import manual_seed, set_random_seed
from .sweep import Grid, SweepResults, grid

__version__ = "0.1.0"

# matplotlib's ffmpeg writer finds imageio-ffmpeg's binary (the `video` extra): _ffmpeg.py.
_ffmpeg.install()

# The activations, relu, elu, ...: one function per row of activation_table.py.
globals().update({name: getattr(functional, name) for name in _ACTIVATION_NAMES})

__all__ = [
    "Function", "GradcheckError", "Tensor", "abs", "add", "backend_name", "callbacks", "cast",
    "clip", "initializers", "layers", "losses", "metrics", "models", "regularizers",
    "concatenate", "div", "enable_grad", "equal", "exp", "functional", "getitem",
    "get_num_threads", "gradcheck", "greater", "greater_equal", "is_grad_enabled", "less",
    "less_equal", "linear", "log", "log_softmax", "manual_seed", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mse_loss", "mul", "neg", "no_grad", "not_equal", "ones",
    "optimizers", "pow",
    "rand", "randn", "reshape", "set_backend", "set_num_threads", "set_random_seed",
    "sigmoid_binary_cross_entropy",
    "softmax", "softmax_cross_entropy", "sqrt", "stack", "sub", "sum",
    "tensor", "transpose", "use_backend", "where", "zeros", *_ACTIVATION_NAMES,
    "Input", "Sequential",  # as keras.Input, keras.Sequential
    "Grid", "SweepResults", "grid", "sweep",
]


def __getattr__(name: str):
    # viz pulls in matplotlib, playground its server on serve(): imported on first use of
    # mg.viz / mg.playground, not with the package.
    if name in ("viz", "playground"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'microgradnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    # viz and playground are imported on first use (above), but tab completion should offer
    # them before that.
    return sorted({*globals(), "viz", "playground"})
