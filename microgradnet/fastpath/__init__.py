"""The captured training step: `Sequential.fit` on a stack of Dense layers without Python
per batch.

For the small nets this framework is for, the cost of a training step is its per-op
overhead, not its arithmetic. So `fit` captures the step once (forward, loss, backward,
optimizer update) into a plan of kernel calls over buffers allocated once
(`microgradnet._kernels.trainer.Plan`, csrc/trainer.pyx) and replays it in C for every
batch; the batch loop itself runs in C when no callback needs Python between batches. The
plan calls the very loops the eager path calls (csrc/loops.pxd, csrc/vmath.h) in the same
order, so both give the same weights; tests/test_fastpath.py holds them to that.

What is captured: Input, Dense (any built-in activation but softmax, with or without bias,
with or without a built-in L1, L2 or L1L2 kernel or bias regularizer, on (batch, features)
inputs of at least one feature), an Activation right after a linear Dense and a Dropout
after a hidden layer (its masks drawn in C from its generator, as the layer draws them);
mean squared error, binary
cross-entropy on a sigmoid output (or from logits), categorical and sparse categorical
cross-entropy on a softmax output (or from logits); SGD (momentum, nesterov), Adam and AdamW
(amsgrad), RMSprop (momentum, centered) and Adagrad, with weight decay, clipvalue, clipnorm
or global_clipnorm, at a constant learning rate or a schedule (asked for each step's rate
before the call into C); float32 or float64; no sample or class weights. The accuracies
(binary on one output column, categorical, sparse categorical) are counted inside the run;
other metrics make fit run the step once per batch and compute them in numpy. Anything else
trains on the eager path, with the same results; `explain(model)` says why a model is not
captured.

The package: `capture` (what can be captured: a model's description for the plan, or why
not), `step` (`CapturedStep`: the plan, the tensors and the optimizer state it trains),
`driver` (`fit_captured`: a whole fit in as few calls as the callbacks allow), `batched`
(`batch_key`, `fit_many`: K models of one structure trained in lockstep in one call, each
to the bits of its own fit), `fpenv` (the floating-point mode of fit's training steps). It
talks to layers, losses, optimizers and callbacks through their public interfaces only.
"""

from __future__ import annotations

from .batched import batch_key, fit_many
from .capture import explain, shuffles_like_numpy
from .driver import (
    batch_accuracies,
    captured_inputs,
    counted_metrics,
    fit_captured,
    runs_between_callbacks,
)
from .fpenv import get_flush_denormal, set_flush_denormal, trainer, training_fpenv
from .step import CapturedStep, captured_step

_trainer = trainer  # the name the thread tests use

__all__ = ["CapturedStep", "batch_accuracies", "batch_key", "captured_inputs",
           "captured_step", "counted_metrics", "explain", "fit_captured", "fit_many",
           "get_flush_denormal", "runs_between_callbacks", "set_flush_denormal",
           "shuffles_like_numpy", "training_fpenv"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...
