"""The captured training step: forward, loss, backward and optimizer update of a stack of
Dense layers, replayed in C for every batch over buffers allocated once.

`microgradnet/fastpath/` captures a compiled Sequential into a `Plan` and drives it; the
eager path (Tensor ops through autograd) is its oracle: the same inner loops (loops.pxd,
vmath.h) in the same order, so both give the same weights. Every call checks the arrays
it will touch (parameters, optimizer state, data, order) before it releases the GIL, and
re-reads the parameters from their tensors, so `set_weights` between calls is safe.

One extension module, in files by concern (textual includes, so the step's C stays inlined):
trainer_layout.pxi (the descriptors of the layers and of the run), trainer_activations.pxi
(the activation dispatch), trainer_update.pxi (the optimizer update), trainer_regularize.pxi
(the L1/L2 weight penalties), trainer_step.pxi (one
step: batch, forward, loss, backward and update), trainer_shuffle.pxi (the epochs' orders
and their prefetch), trainer_record.pxi (recording inside the run), trainer_accuracy.pxi
(the accuracies counted inside the run), trainer_checks.pxi (argument checks),
trainer_lend.pxi (the generators a run draws from, lent to it without a lock held),
trainer_plan.pxi (the Plan: buffers, arguments, the run), trainer_batched.pxi
(BatchedPlan: K plans of one structure in one allocation, trained in lockstep).
"""

import gc
import os
import threading
import weakref

import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.math cimport INFINITY, NAN
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcpy

from checks cimport _c_aligned, _dtype_name, _has_dtype, _in_place_ready
from vmath cimport (
    _default_threads, _softmax_row, floating, vm_sigmoid_fwd_f32, vm_sigmoid_fwd_f64,
    vm_bce_bwd_f32, vm_bce_bwd_f64, vm_bce_fwd_f32, vm_bce_fwd_f64,
)
from loops cimport (
    R_ABS, R_SQUARE, R_SUM, _adagrad, _adam, _adam_alpha, _bias_add, _bias_grad, _clip_scale,
    _gemm, _mse_bwd, _pairwise_sum, _rmsprop, _sgd, _sgd_momentum, _softmax_xent_bwd,
    _softmax_xent_fwd, _sparse_xent_bwd, _sparse_xent_fwd, _sum_sq_diff, _sum_squares,
)

cnp.import_array()

include "simd.pxi"

cdef extern from "numpy/random/bitgen.h":
    struct bitgen:
        void* state
        uint64_t (*next_uint64)(void* st) nogil
        unsigned int (*next_uint32)(void* st) nogil
        double (*next_double)(void* st) nogil

    ctypedef bitgen bitgen_t

cdef extern from "prefetch.h" nogil:
    ctypedef struct mg_prefetch:
        pass
    ctypedef void (*mg_perm_fn)(void* rng, cnp.int64_t* out, Py_ssize_t n) noexcept nogil
    int MG_HAVE_PREFETCH
    int mg_prefetch_start(mg_prefetch* p, mg_perm_fn perm, void* rng, cnp.int64_t* ring,
                          Py_ssize_t n, long long slots, long long total,
                          cnp.int64_t* marks, const cnp.int64_t* counter)
    long long mg_prefetch_produced(mg_prefetch* p)
    void mg_prefetch_take(mg_prefetch* p, long long e, cnp.int64_t* out)
    void mg_prefetch_join(mg_prefetch* p)
    void mg_prefetch_stop(mg_prefetch* p)

cdef extern from "poll.h" nogil:
    long long mg_clock_ns()

cdef extern from "Python.h":
    # Declared without an exception value: a handler's exception stays set for the Plan
    # to raise once the run has stopped (trainer_step.pxi's _poll).
    int PyErr_CheckSignals()

cdef extern from "fpenv.h" nogil:
    unsigned int mg_ftz_enter()
    void mg_ftz_leave(unsigned int old)
    int mg_ftz_supported()

# Whether run(flush_denormal=True) can flush subnormals to zero here (x86); see fpenv.h.
CAN_FLUSH_DENORMAL = bool(mg_ftz_supported())


def _ftz_enter():
    """Set flush-to-zero and denormals-are-zero on this thread; return the mode to restore."""
    return mg_ftz_enter()


def _ftz_leave(unsigned int old):
    """Restore this thread's floating-point mode as _ftz_enter returned it."""
    # MXCSR's upper 16 bits are reserved: setting one faults (the interpreter would die)
    if old > 0xFFFF:
        raise ValueError(f"not a floating-point mode of _ftz_enter: {old:#x}")
    mg_ftz_leave(old)


include "trainer_activations.pxi"
include "trainer_layout.pxi"
include "trainer_update.pxi"
include "trainer_regularize.pxi"
include "trainer_shuffle.pxi"
include "trainer_record.pxi"
include "trainer_accuracy.pxi"
include "trainer_step.pxi"
include "trainer_checks.pxi"
include "trainer_lend.pxi"
include "trainer_plan.pxi"
include "trainer_batched.pxi"
