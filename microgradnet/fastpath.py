"""The captured training step: `Sequential.fit` on a stack of Dense layers without Python
per batch.

For the small nets this framework is for, the cost of a training step is its per-op
overhead, not its arithmetic. So `fit` captures the step once (forward, loss, backward,
optimizer update) into a plan of kernel calls over buffers allocated once
(`microgradnet._kernels.trainer.Plan`) and replays it in C for every batch; the batch loop
itself runs in C when no callback needs Python between batches. The plan calls the very
loops the eager path calls (csrc/loops.pxd, csrc/vmath.h) in the same order, so both give
the same weights; tests/test_fastpath.py holds them to that.

What is captured: Input, Dense (any built-in activation but softmax, with or without bias,
no regularizer), an Activation right after a linear Dense and a Dropout after a hidden layer
(its masks drawn in C from its generator, as the layer draws them); mean squared error, binary
cross-entropy on a sigmoid output (or from logits), categorical and sparse categorical
cross-entropy on a softmax output (or from logits); SGD (momentum, nesterov), Adam and AdamW
(amsgrad), RMSprop (momentum, centered) and Adagrad, with weight decay, clipvalue, clipnorm
or global_clipnorm, at a constant learning rate or a schedule (asked for each step's rate
before the call into C); float32 or float64; no sample or class weights. Anything else
trains on the eager path, with the same results; `explain(model)` says why a model is not
captured.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import activation_table, backend
from . import losses as losses_module
from . import optimizers as optimizers_module
from .autograd import Tensor
from .random import generator

# Asked for by set_flush_denormal; in effect only where the machine supports it.
_flush_denormal = True


def set_flush_denormal(mode: bool) -> bool:
    """Set whether fit's training steps flush subnormal numbers to zero (True by default).

    Returns whether the machine supports it (x86 with SSE2). x86 computes on numbers below
    1.2e-38 (float) through a microcode assist, 10-100x slower, and training drives a few
    weights and moments there: on this machine's Intel CPU W2a's step went from 3.6 to
    24 us. Flushed (FTZ and DAZ, as XLA and TensorFlow compute on CPU; PyTorch's switch is
    torch.set_flush_denormal), such a number becomes 0, so training can end a little
    elsewhere than in IEEE arithmetic. Both of fit's paths, eager and captured, train in
    the same mode and end with the same bits; callbacks, validation, evaluate and predict
    run in the caller's mode.
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
        return bool(_trainer().CAN_FLUSH_DENORMAL)
    except ImportError:  # the kernels are not built: the numpy backend, IEEE arithmetic
        return False


class _TrainingFpEnv:
    """The floating-point mode of fit's training steps inside the block (entered for every
    eager step, so a plain class: a generator-based context manager cost 1.9 us there)."""

    __slots__ = ("_old",)

    def __enter__(self) -> None:
        self._old = _trainer()._ftz_enter() if _flush_denormal and _supported() else None

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            _trainer()._ftz_leave(self._old)


def training_fpenv() -> _TrainingFpEnv:
    """Run the block in the floating-point mode of fit's training steps, then restore."""
    return _TrainingFpEnv()


def _alpha(activation: str) -> float:
    """The alpha that Dense(activation=...) uses: its row's default (0 where it has none)."""
    spec = activation_table.BY_NAME.get(activation)
    return 0.0 if spec is None or spec.alpha is None else spec.alpha


@functools.cache  # not cached while it raises (kernels not built)
def _trainer():
    from ._kernels import trainer  # noqa: PLC0415  (built with the other kernels)

    return trainer


def _layer_specs(model: Any) -> tuple[list[list], list, list] | str:
    """([fan_in, units, activation, alpha, has_bias, dropout rate] per Dense, [kernel, bias,
    ...], [the Dropout after each Dense or None]) or why the layers cannot be captured."""
    from .layers import ACTIVATIONS, Activation, Dense, Dropout, Input  # noqa: PLC0415

    _trainer()  # ImportError here when the captured step is not built
    specs: list[list] = []
    params: list = []
    drops: list = []
    for layer in model.layers:
        if type(layer) is Input:
            continue
        if type(layer) is Dense:
            name = layer.activation
            if layer.kernel_regularizer is not None or layer.bias_regularizer is not None:
                return f"layer {layer.name!r} has a regularizer"
            if ACTIVATIONS.get(name) is not layer._activation_fn:
                return f"layer {layer.name!r} has a custom activation"
            if name not in activation_table.BY_NAME and name not in ("linear", "softmax"):
                return f"layer {layer.name!r}: activation {name!r} is not captured"
            if layer.kernel is None:
                return f"layer {layer.name!r} is not built"
            fan_in, units = layer.kernel.shape
            specs.append([fan_in, units, name, _alpha(name), layer.use_bias, 0.0])
            params += [layer.kernel, layer.bias]
            drops.append(None)
        elif type(layer) is Dropout and specs and drops[-1] is None:
            if layer._rng is None and not shuffles_like_numpy():
                # its draws would have to come between the epochs' permutations, which are
                # then drawn in Python before the run
                return (f"layer {layer.name!r}: a Dropout without a seed draws from the shared "
                        "generator, whose permutations are not drawn in C with this numpy")
            if layer.rate > 0:
                specs[-1][5] = layer.rate
                drops[-1] = layer
        elif (type(layer) is Activation and specs and specs[-1][2] == "linear"
              and drops[-1] is None):
            name = layer.activation
            if ACTIVATIONS.get(name) is not layer._activation_fn:
                return f"layer {layer.name!r} has a custom activation"
            specs[-1][2] = name
            specs[-1][3] = _alpha(name)
        else:
            return f"layer {layer.name!r} ({type(layer).__name__}) is not captured"
    if not specs:
        return "the model has no Dense layer"
    if any(s[2] == "softmax" for s in specs[:-1]):
        return "softmax is captured only as the output of a cross-entropy"
    if drops[-1] is not None:
        return "a Dropout after the output layer is not captured"
    return specs, params, drops


def _loss_code(loss: Any, top: list) -> str | None:
    """The plan's loss for `loss` after the top layer `top` (whose activation it may fuse)."""
    if getattr(loss, "reduction", None) != "sum_over_batch_size":
        return None
    act = top[2]
    if type(loss) is losses_module.MeanSquaredError:
        return "mse" if act != "softmax" else None
    fused = {losses_module.BinaryCrossentropy: ("sigmoid", "sigmoid_bce"),
             losses_module.CategoricalCrossentropy: ("softmax", "softmax_xent"),
             losses_module.SparseCategoricalCrossentropy: ("softmax", "sparse_softmax_xent")}
    if type(loss) not in fused:
        return None
    wanted, code = fused[type(loss)]
    if (loss.from_logits and act == "linear") or (not loss.from_logits and act == wanted):
        top[2] = "linear"  # the plan applies the output activation inside the fused loss
        return code
    return None


def _optimizer_code(opt: Any) -> tuple[str, dict] | str:
    """(plan optimizer, hyper-parameters) or why the optimizer cannot be captured."""
    if opt._schedule is not None and not opt._schedule_takes_step:
        # It may read anything (the optimizer's iteration count, a variable a callback
        # sets): asked ahead of the steps, it could answer otherwise than between them.
        return "a learning-rate schedule of no argument is not captured (one of the step is)"
    if opt.clipnorm is not None and opt.global_clipnorm is not None:
        return "clipnorm and global_clipnorm together are not captured"
    hyper = {"lr": opt._lr,
             "weight_decay": 0.0 if opt.weight_decay is None else opt.weight_decay,
             "clipvalue": np.inf if opt.clipvalue is None else opt.clipvalue,
             "clipnorm": -1.0 if opt.clipnorm is None else opt.clipnorm,
             "global_clipnorm": -1.0 if opt.global_clipnorm is None else opt.global_clipnorm}
    kind = type(opt)
    if kind is optimizers_module.SGD:
        if opt.momentum == 0:
            return "sgd", hyper
        return "sgd_momentum", {**hyper, "momentum": opt.momentum, "nesterov": opt.nesterov}
    if kind in (optimizers_module.Adam, optimizers_module.AdamW):
        return "adam", {**hyper, "beta_1": opt.beta_1, "beta_2": opt.beta_2,
                        "epsilon": opt.epsilon, "amsgrad": opt.amsgrad}
    if kind is optimizers_module.RMSprop:
        return "rmsprop", {**hyper, "rho": opt.rho, "momentum": opt.momentum,
                           "epsilon": opt.epsilon}
    if kind is optimizers_module.Adagrad:
        return "adagrad", {**hyper, "epsilon": opt.epsilon}
    return f"{kind.__name__} is not captured"


_shuffles_like_numpy: bool | None = None


def shuffles_like_numpy() -> bool:
    """Whether the captured run can draw its epoch orders in C, as numpy's permutation."""
    global _shuffles_like_numpy
    if _shuffles_like_numpy is None:
        _shuffles_like_numpy = bool(_trainer().shuffle_matches_numpy())
    return _shuffles_like_numpy


def explain(model: Any) -> str | None:
    """Why `model.fit` cannot run the captured step for this model (None: it can)."""
    got = _describe(model)
    return got if isinstance(got, str) else None


def _describe(model: Any) -> tuple | str:
    if backend.backend_name() != "cython":
        return "the numpy reference backend is active"
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        return "the model is not compiled"
    specs = _layer_specs(model)
    if isinstance(specs, str):
        return specs
    layers, params, drops = specs
    dtypes = {p.data.dtype for p in params if p is not None}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        return "the parameters must all be float32 or all float64"
    loss = _loss_code(model.loss, layers[-1])
    if loss is None:
        return f"the loss {model.loss.name!r} on a {layers[-1][2]!r} output is not captured"
    opt = _optimizer_code(model.optimizer)
    if isinstance(opt, str):
        return opt
    return layers, params, loss, opt, next(iter(dtypes)), drops


class CapturedStep:
    """A plan for one model and batch size, and the tensors it trains."""

    def __init__(self, model: Any, batch_size: int) -> None:
        got = _describe(model)
        if isinstance(got, str):
            raise ValueError(f"this model's training step cannot be captured: {got}")
        layers, params, loss, (opt_name, _), dtype, drops = got
        self.drops = drops
        self.key = _key(layers, params, loss, opt_name, dtype, batch_size, model.optimizer)
        self.model = model
        self.dtype = dtype
        self.loss = loss
        self.params = params
        self.plan = _trainer().Plan(dtype, [tuple(s) for s in layers], loss, batch_size)
        self.batch_size = batch_size
        self._slots: list | None = None
        self.recorded = 0
        # Tensors over the plan's gradient buffers, given to the parameters' .grad after
        # each run: callbacks (GradientMonitor) see the gradients as on the eager path.
        self._grads = [None if p is None else Tensor._wrap(g)
                       for p, g in zip(params, self.plan.gradients(), strict=True)]

    def run(self, x: np.ndarray, y: np.ndarray, orders: np.ndarray | None, first: int,
            last: int, shuffle_with: np.random.Generator | None = None,
            record: tuple | None = None,
            record_weights: tuple | None = None, _lrs: np.ndarray | None = None) -> np.ndarray:
        """Train steps [first, last) of the run; return their losses (float64).

        Each epoch takes its samples in the order of its row of `orders`, or in the order
        shuffle_with.permutation(n) gives (drawn in C), or in order. record: (rows, every,
        phase, out), the model's outputs for rows after every `every`-th step into out
        (Plan.run); self.recorded then says how many were written. record_weights: (every,
        phase, outs), copies of the parameters likewise into outs, one array (snapshots,
        *shape) per parameter in self.params (None where a bias is missing).
        """
        model = self.model
        opt = model.optimizer
        opt_name, hyper = _optimizer_code(opt)
        if self._slots is None:  # where each parameter's state sits in the optimizer
            ids = {id(q): k for k, q in enumerate(opt._params)}
            self._slots = [None if p is None else ids[id(p)] for p in self.params]
        states = []
        for p, i in zip(self.params, self._slots, strict=True):
            if p is None:
                states.append(())
                continue
            if opt._states[i] is None:
                opt._states[i] = opt._new_state(p.data)
            states.append(opt._states[i])
        lrs = _lrs
        if lrs is None and opt._schedule is not None:
            # The schedule at each step's iteration, asked in order before the run (a
            # schedule of the step: its answers depend on the step alone). If it fails at
            # one, the steps before it are trained, then the error is raised: the weights
            # and the iteration count are eager's, but not the rest (eager would have drawn
            # that step's shuffle and Dropout masks already; the recorders miss the
            # segment's snapshots).
            lrs = np.empty(last - first, np.float64)
            for j in range(last - first):
                try:
                    lrs[j] = opt._scheduled_lr(opt.iterations + j)
                except Exception:
                    if j:
                        self.run(x, y, orders, first, first + j, shuffle_with,
                                 _lrs=lrs[:j].copy())
                    raise
        per_epoch = -(-len(x) // self.batch_size)
        losses = np.empty(last - first, np.float64)
        sparse = self.loss == "sparse_softmax_xent"
        params = [None if p is None else p.data for p in self.params]
        self.recorded = self.plan.run(
            x, None if sparse else y, y if sparse else None, orders, first, last, per_epoch,
            params, states, opt_name, hyper, opt.iterations, losses, get_flush_denormal(),
            shuffle_with, record, record_weights, lrs,
            [None if d is None else (d._rng if d._rng is not None else generator())
             for d in self.drops])
        opt.iterations += last - first
        for p, g in zip(self.params, self._grads, strict=True):
            if p is not None:
                p.grad = g
        return losses

    def output(self, rows: int) -> np.ndarray:
        """The model's (activated) output for the last batch trained."""
        return self.plan.output(rows)


def _key(layers, params, loss, opt_name, dtype, batch_size, optimizer) -> tuple:
    return (tuple(map(tuple, layers)), tuple(id(p) for p in params), loss, opt_name,
            np.dtype(dtype).str, batch_size, id(optimizer))


def captured_step(model: Any, batch_size: int) -> CapturedStep | None:
    """The model's captured step for this batch size (cached), or None if not capturable."""
    got = _describe(model)
    if isinstance(got, str):
        return None
    layers, params, loss, (opt_name, _), dtype, _ = got
    key = _key(layers, params, loss, opt_name, dtype, batch_size, model.optimizer)
    cached = getattr(model, "_captured", None)
    if cached is not None and cached.key == key:
        return cached
    step = CapturedStep(model, batch_size)
    model._captured = step
    return step


__all__ = ["CapturedStep", "captured_step", "explain", "get_flush_denormal",
           "set_flush_denormal", "training_fpenv"]
