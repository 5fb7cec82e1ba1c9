"""Optimizers with Keras 3 names, defaults and update rules.

Each parameter update is one fused, in-place kernel (`microgradnet.backend.kernels`:
`sgd_update`, `sgd_momentum_update`, `adam_update`, `rmsprop_update`, `adagrad_update`):
gradient clipping, decoupled weight decay and the rule itself happen in one pass over the
parameter, with no temporary arrays.

Two ways to use an optimizer:

    # Keras style: the model builds it on its parameters (at compile/fit time)
    opt = SGD(learning_rate=0.1)            # or SGD(0.1), as in Keras
    opt.build(model.parameters())

    # PyTorch style, by hand: the parameters first
    opt = SGD(model.parameters(), learning_rate=0.1)
    for x, y in batches:
        opt.zero_grad()
        loss = mg.mse_loss(model(x), y)
        loss.backward()
        opt.step()

The first positional argument of every optimizer is either the learning rate (a number or
a schedule) or the parameters (an iterable of Tensors), told apart by its type; the other
positional arguments follow in Keras' order either way.

Keras semantics, step by step (keras/src/optimizers/base_optimizer.py): params whose .grad
is None are skipped; the gradients are clipped (clipnorm: each gradient to that L2 norm;
global_clipnorm: all together to that global norm; clipvalue: elementwise; at most one of
the three); weight decay, when set, shrinks each parameter by p * weight_decay * lr; then the
rule updates the parameter; `iterations` counts the steps taken.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .autograd import Tensor
from .autograd import _bump_version as bump_version
from .backend import kernels as K

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "deserialize", "get",
           "serialize"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


LearningRate = float | Callable[..., float]

# Keras' own config keys that this framework does not implement: accepted by from_config
# at their Keras defaults (so a Keras config loads), refused otherwise.
_KERAS_DEFAULTS = {
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


@functools.cache
def _kernel_name(rule: str) -> str:
    """The fused update kernel of a rule ("adam" -> "adam_update")."""
    return sys.intern(f"{rule}_update")  # looked up in K by identity


# --------------------------------------------------------------------------- checks

def _real(name: str, value: Any) -> float:
    """`value` as a float, if it is a real number (not bool, not nan), else an error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be nan")
    return value


def _in_range(name: str, value: Any, low: float, high: float = math.inf,
              high_open: bool = False) -> float:
    """Check low <= value <= high (or < high when high_open) and return it as a float."""
    v = _real(name, value)
    if v < low or v > high or (high_open and v == high):
        bracket = ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value!r}")
    return v


def _optional(name: str, value: Any, positive: bool = True) -> float | None:
    """None, or a finite number >= 0 (> 0 when `positive`)."""
    if value is None:
        return None
    v = _real(name, value)
    if v < 0 or (positive and v == 0) or math.isinf(v):
        what = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be None or {what}, got {value!r}")
    return v


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _takes_step(schedule: Callable) -> bool:
    """Whether a learning-rate callable takes the iteration count (else it takes nothing)."""
    try:
        inspect.signature(schedule).bind(0)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): assume a schedule
        return True
    return True


def _looks_like_params(value: Any) -> bool:
    """Whether a first positional argument is the parameters rather than the learning rate."""
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (numbers.Number, str, bytes, np.ndarray)) or callable(value):
        return False
    return isinstance(value, Iterable)


def _params_first(init: Callable) -> Callable:
    """Let an optimizer's __init__ take the parameters as its first positional argument,
    and Keras 2's `lr` for learning_rate (with a DeprecationWarning, as Keras 2.x gave)."""

    @functools.wraps(init)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> None:
        if args and _looks_like_params(args[0]):
            if "params" in kwargs:
                raise TypeError("the parameters were given twice: positionally and as params=")
            kwargs["params"] = args[0]
            args = args[1:]
        if "lr" in kwargs:
            if args or "learning_rate" in kwargs:
                raise TypeError(f"{type(self).__name__}: lr is Keras 2's name of "
                                "learning_rate; give one of them, not both")
            _warn_lr(stacklevel=3)
            kwargs["learning_rate"] = kwargs.pop("lr")
        init(self, *args, **kwargs)

    return wrapper


# Compiled (setup.py), this module's functions make no Python frames: the caller's frame is
# then the first one a warning sees.
_COMPILED = not __file__.endswith(".py")


def _warn_lr(stacklevel: int) -> None:
    if _COMPILED:
        stacklevel = 1
    warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                  DeprecationWarning, stacklevel=stacklevel)


# --------------------------------------------------------------------------- base


class Optimizer:
    """Base class: learning rate, clipping, weight decay, parameters and their state.

    Each optimizer describes its update once, for the eager step and the captured plan
    (microgradnet.fastpath) alike: `rule` names its fused kernel (`<rule>_update` in
    `backend.kernels`, the same loop in the plan), `state_variables` its per-parameter
    state arrays in the kernel's order, `_keeps_state()` which of them this configuration
    allocates and `state_in_use()` which of those the update reads, `rule_arguments()` the
    numbers its rule reads, and `_update` calls the kernel. The hyper-parameters and their
    defaults are the constructor's.
    """

    rule = ""
    state_variables: tuple[str, ...] = ()
    _default_name = "optimizer"

    def __init__(
        self,
        learning_rate: LearningRate,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.weight_decay = _optional("weight_decay", weight_decay, positive=False)
        self.clipnorm = _optional("clipnorm", clipnorm)
        self.clipvalue = _optional("clipvalue", clipvalue)
        self.global_clipnorm = _optional("global_clipnorm", global_clipnorm)
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of clipnorm, clipvalue and global_clipnorm can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.name = name if name is not None else self._default_name
        self.iterations = 0
        self._params: list[Tensor] | None = None
        self._states: list[tuple | None] = []
        if params is not None:
            self.build(params)

    # ---- learning rate
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule evaluated at `iterations`).

        Settable between steps: a number >= 0, or a callable schedule that takes the
        iteration count (as a Keras LearningRateSchedule) or no argument.
        """
        if self._schedule is None:
            return self._lr
        return self._scheduled_lr()

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        if callable(value) and not isinstance(value, numbers.Number):
            self._schedule: Callable | None = value
            self._schedule_takes_step = _takes_step(value)
            self._lr = math.nan
        else:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"learning_rate must be a number or a callable schedule, got {value!r}"
                )
            v = float(value)
            if not 0 <= v < math.inf:
                raise ValueError(f"learning_rate must be a finite number >= 0, got {value!r}")
            self._schedule = None
            self._lr = v

    @property
    def lr(self) -> float:
        """Keras 2's name of learning_rate (deprecated, as there): reads and sets it."""
        _warn_lr(stacklevel=3)
        return self.learning_rate

    @lr.setter
    def lr(self, value: LearningRate) -> None:
        _warn_lr(stacklevel=3)
        self.learning_rate = value

    def _scheduled_lr(self, iteration: int | None = None) -> float:
        fn = self._schedule
        if iteration is None:
            iteration = self.iterations
        value = fn(iteration) if self._schedule_takes_step else fn()
        lr = float(value)
        if not 0 <= lr < math.inf:
            raise ValueError(
                f"the learning-rate schedule gave {value!r} at iteration {iteration}; "
                "a learning rate must be a finite number >= 0"
            )
        return lr

    # ---- parameters
    def build(self, params: Iterable[Tensor]) -> None:
        """Attach the optimizer to its parameters (Keras' build; the model calls it).

        Building again on the same parameters does nothing (the state is kept); building on
        others raises: make a new optimizer for another set of parameters.
        """
        if isinstance(params, Tensor):
            params = [params]
        elif not _looks_like_params(params):
            raise TypeError(
                f"params must be an iterable of Tensors, got {type(params).__name__}"
            )
        params = list(params)
        if self._params is not None:
            if len(params) == len(self._params) and all(
                a is b for a, b in zip(params, self._params, strict=True)
            ):
                return
            raise ValueError(
                f"this {type(self).__name__} is already built on {len(self._params)} other "
                "parameters; create a new optimizer for a new set of parameters"
            )
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"parameter {i} must be a Tensor, got {type(p).__name__}")
            if p.data.dtype not in (np.float32, np.float64):
                raise TypeError(
                    f"parameter {i} has dtype {p.data.dtype}; only float32 and float64 "
                    "tensors can be optimized"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"parameter {i} (shape {p.shape}) does not require grad: create it with "
                    "requires_grad=True, or leave it out of the optimizer"
                )
            if id(p) in seen:
                raise ValueError(f"parameter {i} appears more than once")
            seen.add(id(p))
            if not p.data.flags.writeable:
                raise ValueError(
                    f"parameter {i} (shape {p.shape}) has read-only data and cannot be updated"
                )
            if not (p.data.flags.c_contiguous and p.data.flags.aligned):
                # The kernels update C-contiguous memory in place: give the tensor such an
                # array once, with the same values (e.g. a parameter made from a transpose).
                p.data = np.ascontiguousarray(p.data)
        self._params = params
        self._states = [None] * len(params)
        self._slot_of = {id(p): i for i, p in enumerate(params)}

    @property
    def built(self) -> bool:
        """True once the optimizer knows its parameters."""
        return self._params is not None

    def parameters(self) -> list[Tensor]:
        """The parameters this optimizer updates (empty before build)."""
        return list(self._params or [])

    def zero_grad(self) -> None:
        """Set the .grad of every parameter to None (as PyTorch's set_to_none)."""
        for p in self._params or ():
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter whose .grad is not None."""
        params = self._params
        if params is None:
            raise RuntimeError(
                f"{type(self).__name__}.step() before the optimizer knows its parameters: "
                f"pass them first ({type(self).__name__}(model.parameters(), ...)) or call "
                "build(params)"
            )
        if not params:
            return
        lr = self._lr if self._schedule is None else self._scheduled_lr()
        kernel = getattr(K, _kernel_name(self.rule))
        states = self._states
        update = self._update
        clipnorm = self.clipnorm
        # the kernels spell "no weight decay" 0 and "no clipvalue" inf
        wd = 0.0 if self.weight_decay is None else self.weight_decay
        cv = math.inf if self.clipvalue is None else self.clipvalue
        scale = 1.0
        if self.global_clipnorm is not None:
            scale = self._global_scale()
        i = -1
        updated = 0
        try:
            for i, p in enumerate(params):  # noqa: B007  (i names the failing parameter)
                g = p.grad
                if g is None:
                    continue
                data = p.data
                state = states[i]
                if state is None:
                    state = states[i] = self._new_state(data)
                if clipnorm is not None:
                    scale = _clip_scale(K.sum_squares(g.data), clipnorm)
                update(kernel, data, g.data, state, lr, wd, scale, cv)
                bump_version(p)  # an in-place change, as PyTorch's optimizers count it
                updated += 1
        except (TypeError, ValueError) as exc:
            kind = ValueError if isinstance(exc, ValueError) else TypeError
            raise kind(f"parameter {i} (shape {params[i].shape}): {exc}") from exc
        if not updated:
            raise ValueError(
                "No gradients provided for any parameter: every .grad is None. Call "
                "loss.backward() before step()"
            )
        self.iterations += 1

    def _global_scale(self) -> float:
        # summed parameter by parameter, as the captured step sums them (trainer's
        # _global_clip_scale)
        total = 0.0
        for p in self._params or ():
            if p.grad is not None:
                total += K.sum_squares(p.grad.data)
        return _clip_scale(total, self.global_clipnorm)

    # ---- the update's description
    def _keeps_state(self) -> tuple[bool, ...]:
        """Which state variables a parameter's state allocates (the others are None)."""
        return (True,) * len(self.state_variables)

    def state_in_use(self) -> tuple[bool, ...]:
        """Which state variables the update reads, when allocated (the others are not)."""
        return (True,) * len(self.state_variables)

    def _initial_state(self, data: np.ndarray) -> np.ndarray:
        return np.zeros(data.shape, data.dtype)

    def _new_state(self, data: np.ndarray) -> tuple:
        """The state arrays of a parameter, allocated at its first update."""
        return tuple(self._initial_state(data) if kept else None
                     for kept in self._keeps_state())

    def rule_arguments(self) -> dict[str, float | bool]:
        """The numbers the rule's kernel reads beyond the learning rate, weight decay and
        clipping (Adam's betas and epsilon, ...)."""
        return {}

    def update_arguments(self) -> dict[str, float | bool]:
        """Every number the fused update reads but the learning rate and the step: the
        rule's, then weight decay and clipping, only those that are set."""
        common = {"weight_decay": self.weight_decay, "clipvalue": self.clipvalue,
                  "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm}
        return {**self.rule_arguments(),
                **{k: v for k, v in common.items() if v is not None}}

    def states_for(self, params: list[Tensor | None]) -> list[tuple]:
        """The state arrays the update of each parameter reads (allocated at the first ask),
        one per state variable, None where a variable is not in use; () for a None."""
        if self._params is None:
            raise RuntimeError("the optimizer is not built")
        in_use = self.state_in_use()
        unused = [k for k, used in enumerate(in_use) if not used]
        slots = self._slot_of
        states = self._states
        out = []
        for p in params:
            if p is None:
                out.append(())
                continue
            i = slots[id(p)]
            state = states[i]
            if state is None:
                state = states[i] = self._new_state(p.data)
            for k in unused:  # kept by an earlier configuration (amsgrad since turned off)
                if state[k] is not None:
                    state = tuple([s if used else None
                                   for s, used in zip(state, in_use, strict=True)])
                    break
            out.append(state)
        return out

    def learning_rate_at(self, iteration: int) -> float:
        """The learning rate of the step at `iteration` (a schedule asked for it)."""
        if self._schedule is None:
            return self._lr
        return self._scheduled_lr(iteration)

    @property
    def rates_known_ahead(self) -> bool:
        """Whether the rates of future steps may be asked before they run: a constant, or a
        schedule of the step (one of no argument may read anything, a callback's variable,
        and answer otherwise between the steps)."""
        return self._schedule is None or self._schedule_takes_step

    @property
    def has_schedule(self) -> bool:
        """Whether the learning rate is a callable schedule."""
        return self._schedule is not None

    def _update(self, kernel: Callable, param: np.ndarray, grad: np.ndarray, state: tuple,
                lr: float, wd: float, scale: float, cv: float) -> None:
        # wd: the weight decay (0: none); scale: the clipnorm factor of the gradient;
        # cv: the clipvalue (inf: none). The kernels' own spelling of those arguments.
        raise NotImplementedError

    # ---- config
    def get_config(self) -> dict:
        """The constructor arguments as a JSON-able dict (no parameters, no state)."""
        if self._schedule is not None:
            raise TypeError(
                f"{type(self).__name__}.get_config(): the learning rate is a callable "
                "schedule, which cannot be written as JSON; set a number first "
                "(opt.learning_rate = 0.01) to save this optimizer"
            )
        return {
            "name": self.name,
            "learning_rate": self._lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """Make an optimizer from get_config()'s dict (Keras' own extra keys are accepted
        at their default values)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        config = dict(config)
        for key, default in _KERAS_DEFAULTS.items():
            if key in config:
                value = config.pop(key)
                if value != default:
                    raise ValueError(
                        f"{key}={value!r} is not supported by microgradnet's optimizers"
                    )
        return cls(**config)

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except TypeError:
            config = {"learning_rate": self._schedule}
        args = ", ".join(
            f"{k}={v!r}" for k, v in config.items() if k != "name" and v is not None
        )
        return f"{type(self).__name__}({args})"


def _clip_scale(sum_squares: float, clip: float) -> float:
    """The factor that brings a gradient of this squared norm down to norm `clip` (Keras:
    g * clip / max(norm, clip)); nan for a non-finite norm, so nan is never hidden. The
    captured step's twin is csrc/loops.pxd's _clip_scale."""
    norm = math.sqrt(sum_squares)
    if norm <= clip:
        return 1.0
    if norm < math.inf:
        return clip / norm
    return math.nan


# --------------------------------------------------------------------------- optimizers


class SGD(Optimizer):
    """Gradient descent, with momentum and Nesterov momentum (Keras' SGD).

    momentum == 0:  p = p - lr * g
    momentum > 0:   v = momentum * v - lr * g;  p = p + v
    nesterov:       v = momentum * v - lr * g;  p = p + momentum * v - lr * g

    `SGD(params, ...)` or `SGD(learning_rate, ...)`: the first positional argument may be
    the parameters (PyTorch style) or the learning rate (Keras style).
    """

    _default_name = "SGD"

    @_params_first
    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        self.momentum = _in_range("momentum", momentum, 0.0, 1.0)
        self.nesterov = _flag("nesterov", nesterov)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, params=params)

    @property
    def rule(self) -> str:  # type: ignore[override]
        """The fused kernel's rule: plain "sgd", or "sgd_momentum"."""
        return "sgd" if self.momentum == 0 else "sgd_momentum"

    @property
    def state_variables(self) -> tuple[str, ...]:  # type: ignore[override]
        """The velocity, with momentum."""
        return () if self.momentum == 0 else ("velocity",)

    def rule_arguments(self) -> dict[str, float | bool]:
        if self.momentum == 0:
            return {}
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, kernel, param, grad, state, lr, wd, scale, cv):
        if self.momentum == 0:
            kernel(param, grad, lr, wd, scale, cv)
        else:
            kernel(param, grad, state[0], lr, self.momentum, self.nesterov, wd, scale, cv)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Keras' formulation, epsilon outside the square root), with AMSGrad.

    t = iterations + 1;  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m = m + (g - m) * (1 - beta_1);  v = v + (g^2 - v) * (1 - beta_2)
    amsgrad: vhat = max(vhat, v), used in place of v
    p = p - alpha * m / (sqrt(v) + epsilon)

    `Adam(params, ...)` or `Adam(learning_rate, ...)`: the first positional argument may be
    the parameters (PyTorch style) or the learning rate (Keras style).
    """

    rule = "adam"
    state_variables = ("m", "v", "vhat")
    _default_name = "adam"

    @_params_first
    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        self.beta_1 = _in_range("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _in_range("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _in_range("epsilon", epsilon, 0.0)
        self.amsgrad = _flag("amsgrad", amsgrad)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, params=params)

    def _keeps_state(self) -> tuple[bool, ...]:
        return (True, True, self.amsgrad)

    def state_in_use(self) -> tuple[bool, ...]:
        # vhat follows the flag, not the state an earlier amsgrad run left
        return (True, True, self.amsgrad)

    def rule_arguments(self) -> dict[str, float | bool]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def _update(self, kernel, param, grad, state, lr, wd, scale, cv):
        kernel(param, grad, state[0], state[1], lr, self.beta_1, self.beta_2, self.epsilon,
               self.iterations + 1, state[2] if self.amsgrad else None, wd, scale, cv)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras' AdamW): before each Adam update,
    p = p - p * weight_decay * lr. weight_decay defaults to 0.004 and must be set.

    `AdamW(params, ...)` or `AdamW(learning_rate, ...)`: the first positional argument may
    be the parameters (PyTorch style) or the learning rate (Keras style).
    """

    _default_name = "adamw"

    @_params_first
    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        if weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float. Received: weight_decay=None"
            )
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, params=params)


class RMSprop(Optimizer):
    """RMSprop (Keras' formulation, epsilon inside the square root), plain momentum, and the
    centered variant.

    v = rho * v + (1 - rho) * g^2
    centered:  a = rho * a + (1 - rho) * g;  denom = v - a^2 + epsilon
    else:      denom = v + epsilon
    inc = lr * g / sqrt(denom)
    momentum > 0:  mom = momentum * mom + inc;  p = p - mom
    else:          p = p - inc

    `RMSprop(params, ...)` or `RMSprop(learning_rate, ...)`: the first positional argument
    may be the parameters (PyTorch style) or the learning rate (Keras style).
    """

    rule = "rmsprop"
    state_variables = ("velocity", "momentum_buf", "average_grad")
    _default_name = "rmsprop"

    @_params_first
    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        self.rho = _in_range("rho", rho, 0.0, 1.0, high_open=True)
        self.momentum = _in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = _in_range("epsilon", epsilon, 0.0)
        self.centered = _flag("centered", centered)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, params=params)

    def _keeps_state(self) -> tuple[bool, ...]:
        return (True, self.momentum > 0, self.centered)

    def rule_arguments(self) -> dict[str, float | bool]:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}

    def _update(self, kernel, param, grad, state, lr, wd, scale, cv):
        kernel(param, grad, state[0], lr, self.rho, self.epsilon, state[1], self.momentum,
               state[2], wd, scale, cv)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Keras' formulation, epsilon inside the square root).

    acc = acc + g^2   (acc starts at initial_accumulator_value)
    p = p - lr * g / sqrt(acc + epsilon)

    `Adagrad(params, ...)` or `Adagrad(learning_rate, ...)`: the first positional argument
    may be the parameters (PyTorch style) or the learning rate (Keras style).
    """

    rule = "adagrad"
    state_variables = ("accumulator",)
    _default_name = "adagrad"

    @_params_first
    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        *,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        self.initial_accumulator_value = _in_range(
            "initial_accumulator_value", initial_accumulator_value, 0.0
        )
        self.epsilon = _in_range("epsilon", epsilon, 0.0)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name, params=params)

    def _initial_state(self, data: np.ndarray) -> np.ndarray:
        return np.full(data.shape, self.initial_accumulator_value, data.dtype)

    def rule_arguments(self) -> dict[str, float | bool]:
        return {"epsilon": self.epsilon}

    def _update(self, kernel, param, grad, state, lr, wd, scale, cv):
        kernel(param, grad, state[0], lr, self.epsilon, wd, scale, cv)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


# --------------------------------------------------------------------------- lookup

_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
}


def get(identifier: str | dict | Optimizer) -> Optimizer:
    """An optimizer from its name ("sgd", "adam", "adamw", "rmsprop", "adagrad", any case,
    with Keras' defaults), from serialize()'s dict, or the given instance itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is not None:
            return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"unknown optimizer {identifier!r}; known names: {', '.join(sorted(_BY_NAME))} "
        "(or pass an optimizer instance)"
    )


def serialize(optimizer: Optimizer) -> dict:
    """{"class_name": ..., "config": ...}, JSON-able, for deserialize() or get()."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"not an optimizer: {type(optimizer).__name__}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    """The optimizer that serialize() described (class names as in Keras, any case)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"not an optimizer description (needs class_name): {config!r}")
    name = config["class_name"]
    cls = _BY_NAME.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown optimizer class {name!r}; known: "
            + ", ".join(c.__name__ for c in _BY_NAME.values())
        )
    return cls.from_config(config.get("config") or {})
