"""Batched capture: K models of one structure trained together in one call into C.

Models that share their layers, loss, optimizer kind, dtype, batch size, epochs, data and
metrics (the accuracies the run counts in C), and differ in initial weights, generators
and hyper-parameters (learning rate, momentum, betas, weight decay, clipping...), train
in lockstep over buffers carved from one allocation (trainer.BatchedPlan). Each net steps
through the very C a solo captured `fit` runs, so it ends with the weights, optimizer
state and losses of its own `fit`, whichever nets it was batched with and in whichever
order.

`batch_key` says which runs can train together; `fit_many` trains them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import callbacks as cbks
from .. import data as data_module
from ..autograd import Tensor
from ..autograd import _bump_version as bump_version
from ..random import generator
from .capture import Capture, counted_accuracies, describe, shuffles_like_numpy
from .driver import _EpochSums, _Run, batch_accuracies, epoch_accuracies
from .fpenv import get_flush_denormal, trainer

__all__ = ["batch_key", "fit_many"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


# fit's arguments that fit_many takes, and those it takes only at their defaults (anything
# else needs Python between batches, or data of its own, and trains with fit).
_TAKEN = ("epochs", "batch_size", "shuffle", "verbose")
_DEFAULTS = {"callbacks": None, "validation_split": 0.0, "validation_data": None,
             "class_weight": None, "sample_weight": None, "initial_epoch": 0,
             "steps_per_epoch": None}

# BatchedPlans kept for the structures last trained: a sweep trains batch after batch of
# one structure, and building K plans is most of fit_many's setup.
_PLANS: dict = {}
_PLANS_KEPT = 4


def _unbatchable(model: Any, fit_kwargs: dict) -> str | None:
    """Why fit(**fit_kwargs) of this model cannot train in a batch (None: it can)."""
    for name in fit_kwargs:
        if name not in _TAKEN and name not in _DEFAULTS:
            return f"fit has no argument {name!r} that fit_many takes"
    for name, default in _DEFAULTS.items():
        value = fit_kwargs.get(name, default)
        if not (value is default or (value == default if np.isscalar(value) else False)):
            if not (name == "callbacks" and value is not None and len(value) == 0):
                return f"{name}={value!r} is not batched (fit takes it)"
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        return "the model is not compiled"
    if not model.jit_compile:
        return "jit_compile=False: the model trains eagerly"
    if model.optimizer.has_schedule:
        return "a learning-rate schedule is not batched"
    if fit_kwargs.get("shuffle", True) and not shuffles_like_numpy():
        return "this numpy's permutations are not drawn in C"
    return None


def _fields(model: Any, x: Any, y: Any, fit_kwargs: dict) -> dict | str:
    """The fields runs must share to train together, by name; or why this one cannot."""
    why = _unbatchable(model, fit_kwargs)
    if why is not None:
        return why
    if not model.built:
        model._prepare(x, y, "fit")  # builds the model for x's shape, as fit does
    got = describe(model)
    if isinstance(got, str):
        return got
    counted = counted_accuracies(model.metrics, got.loss, got.layers[-1].units)
    if isinstance(counted, str):
        return counted
    return {"layers": tuple(s.as_plan_tuple() for s in got.layers), "loss": got.loss,
            "metrics": tuple(zip((name for name, _ in model.metrics), counted, strict=True)),
            "output": "logits" if got.output_logits else "activated",
            "optimizer": type(model.optimizer).__name__, "dtype": np.dtype(got.dtype).name,
            "batch_size": fit_kwargs.get("batch_size") or 32,
            "epochs": fit_kwargs.get("epochs", 1),
            "shuffle": bool(fit_kwargs.get("shuffle", True)), "data": (id(x), id(y)),
            "capture": got}


def batch_key(model: Any, x: Any, y: Any, fit_kwargs: dict) -> tuple | None:
    """A hashable key: runs of equal keys can train together in fit_many; None when this
    run cannot be batched (fit trains it)."""
    got = _fields(model, x, y, fit_kwargs)
    if isinstance(got, str):
        return None
    return tuple((name, value) for name, value in got.items() if name != "capture")


def _check_fit_kwargs(fit_kwargs: dict) -> None:
    for name in fit_kwargs:
        if name not in _TAKEN and name not in _DEFAULTS:
            raise TypeError(f"fit_many() got an unexpected keyword argument {name!r}")


def _net_generators(models: list, captures: list, shuffle: bool,
                    generators: list | None) -> list:
    """Each model's own generator (its shuffles, its Dropouts without a seed), or None."""
    shared = shuffle or any(d is not None and d.seed is None
                            for c in captures for d in c.dropouts)
    if generators is None:
        if shared and len(models) > 1:
            raise ValueError(
                "fit_many: these runs draw from microgradnet's one generator (shuffle=True, "
                "or a Dropout without a seed), so they would not train as their own fits: "
                "give generators=[...], one numpy Generator per model")
        return [generator() if shared else None] * len(models)
    if not isinstance(generators, (list, tuple)) or len(generators) != len(models):
        raise ValueError(f"fit_many: generators must be a list of {len(models)} numpy "
                         f"Generators, one per model")
    for k, g in enumerate(generators):
        if not isinstance(g, np.random.Generator):
            raise TypeError(f"fit_many: generators[{k}] must be a numpy Generator, got "
                            f"{type(g).__name__}")
    return list(generators)


def _plan_key(capture: Capture, batch: int, count: int) -> tuple:
    return (tuple(s.as_plan_tuple() for s in capture.layers), capture.loss,
            np.dtype(capture.dtype).str, batch, capture.output_logits, count)


def _take_plan(key: tuple, capture: Capture, batch: int, count: int) -> Any:
    """A kept plan for this structure, taken out while it trains (a call in another thread
    then builds its own: the gradients are read after the run), or a new one."""
    plan = _PLANS.pop(key, None)
    if plan is None:
        plan = trainer().BatchedPlan(capture.dtype, [s.as_plan_tuple() for s in capture.layers],
                                     capture.loss, batch, count,
                                     output_logits=capture.output_logits)
    return plan


def _keep_plan(key: tuple, plan: Any) -> None:
    _PLANS[key] = plan  # the most recent last
    while len(_PLANS) > _PLANS_KEPT:
        del _PLANS[next(iter(_PLANS))]


def fit_many(models: list, x: Any, y: Any, generators: list | None = None,
             **fit_kwargs: Any) -> list[cbks.History]:
    """Train each model as model.fit(x, y, **fit_kwargs) would, all in one call into C;
    return one History per model, with `.batch_losses` (one loss per step) and the values
    of the metrics it was compiled with (accuracies, counted in the run).

    Takes fit's epochs, batch_size, shuffle and verbose (nothing is printed); the models
    must share a batch_key (else ValueError naming the field that differs). generators: one
    numpy Generator per model, which draws its shuffles and its seedless Dropouts' masks as
    microgradnet's generator would in its own fit (mg.random.using_generator); needed when
    there are several models and such draws.
    """
    _check_fit_kwargs(fit_kwargs)
    if not isinstance(models, (list, tuple)) or not models:
        raise ValueError("fit_many: models must be a non-empty list of compiled models")
    models = list(models)
    fields = []
    for k, model in enumerate(models):
        got = _fields(model, x, y, fit_kwargs)
        if isinstance(got, str):
            raise ValueError(f"fit_many: model {k} cannot be batched: {got}")
        for name, value in (fields[0].items() if fields else ()):
            if name != "capture" and got[name] != value:
                raise ValueError(f"fit_many: model {k} differs from model 0 in {name}: "
                                 f"{got[name]!r} != {value!r}")
        fields.append(got)
    if len({id(m) for m in models}) != len(models):
        raise ValueError("fit_many: a model is given twice")
    epochs = fit_kwargs.get("epochs", 1)
    batch_size = data_module.check_fit_arguments(y, fit_kwargs.get("batch_size"), epochs, 0.0)
    x, y = models[0]._prepare(x, y, "fit")
    captures = [f["capture"] for f in fields]
    dtype = captures[0].dtype
    if x.dtype != dtype:
        raise ValueError(f"fit_many: x has dtype {x.dtype}, the parameters {np.dtype(dtype)}")
    n = len(x)
    if n == 0:
        raise ValueError("fit_many: no training samples")
    sparse = captures[0].loss == "sparse_softmax_xent"
    x = np.ascontiguousarray(x)
    y = np.ascontiguousarray(y if sparse else y.astype(dtype, copy=False))
    shuffle = bool(fit_kwargs.get("shuffle", True))
    gens = _net_generators(models, captures, shuffle, generators)
    batch = min(batch_size, n)
    per_epoch = -(-n // batch)
    total = epochs * per_epoch
    key = _plan_key(captures[0], batch, len(models))
    plan = _take_plan(key, captures[0], batch, len(models))
    nets = []
    losses = []
    counts = []
    counted = tuple(kind for _, kind in fields[0]["metrics"])
    for model, cap, gen in zip(models, captures, gens, strict=True):
        opt = model.optimizer
        opt.build(model.parameters())  # as fit's setup: kept when built for them already
        params = [None if p is None else p.data for p in cap.params]
        lost = np.empty(total, np.float64)
        losses.append(lost)
        right = np.zeros((total, len(counted)), np.int64)
        counts.append(right)
        drops = [None if d is None else (d.rng if d.seed is not None else gen)
                 for d in cap.dropouts]
        nets.append((params, opt.states_for(cap.params), opt.rule,
                     {"lr": opt.learning_rate_at(opt.iterations), **opt.update_arguments()},
                     opt.iterations, lost, gen if shuffle else None, drops,
                     (counted, right) if counted else None))
    try:
        plan.run(x, y if not sparse else None, y if sparse else None, 0, total, per_epoch,
                 nets, get_flush_denormal())
    finally:
        done = plan.steps_done
        histories = [_hand_over(model, cap, sub, x, y, n, batch, per_epoch, epochs, shuffle,
                                gen, lost[:done], right[:done])
                     for model, cap, sub, gen, lost, right in zip(models, captures, plan.plans,
                                                                  gens, losses, counts,
                                                                  strict=True)]
        _keep_plan(key, plan)
    return histories


def _hand_over(model: Any, cap: Capture, plan: Any, x: np.ndarray, y: np.ndarray, n: int,
               batch: int, per_epoch: int, epochs: int, shuffle: bool, gen: Any,
               losses: np.ndarray, counts: np.ndarray) -> cbks.History:
    """The model after its steps: the optimizer's count, .grad (copies: the plan trains
    other models next), the History fit would have given (with the metrics from the
    counts of right samples per step)."""
    steps = len(losses)
    model.optimizer.iterations += steps
    if steps:
        for p, g in zip(cap.params, plan.gradients(), strict=True):
            if p is not None:
                p.grad = Tensor._wrap(g.copy())
                bump_version(p, steps)
    history = cbks.History()
    history.set_model(model)
    history.set_params({"epochs": epochs, "steps": per_epoch, "verbose": 0})
    history.on_train_begin({})
    model.history = history
    model.stop_training = False
    history.batch_losses = losses
    if steps:
        run = _Run(None, x, y, batch, per_epoch, None, gen if shuffle else None)
        epoch_sums = _EpochSums(run)
        metrics = {}
        if model.metrics:
            epoch_counts = epoch_sums.count_segment(counts, 0)
            history.record_batches(losses, batch_accuracies(model, counts,
                                                            epoch_sums.sizes(steps, 0)))
            metrics = epoch_accuracies(model, epoch_counts, n)
        else:
            history.record_batches(losses)
        ends, sums = epoch_sums.segment(losses.copy(), 0)
        history.record_epochs(list(range(len(ends))), (ends + 1).tolist(), (sums / n).tolist(),
                              metrics)
        last = steps - 1
        rows = slice((last % per_epoch) * batch, (last % per_epoch + 1) * batch)
        order = plan.last_order() if shuffle else None
        model._last_batch = x[order[rows]] if order is not None else x[rows]
    return history
