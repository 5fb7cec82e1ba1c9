# The elementwise activations, one row each: the table the eager kernels (activations.pyx,
# which makes <name>_forward and <name>_backward of every row) and the captured step
# (trainer.pyx, which calls a layer's row by its code) share, so both run the same loops.
# A row's index is its code; _ACTIVATION_NAMES gives the names in that order (code 0, "linear",
# has no loops). Included by each module that runs activations: each keeps its own copy.
# microgradnet/activation_table.py describes the same activations for the Python side;
# tests/test_activation_table.py checks that the two agree.
#
# A row: the name; the array its backward reads, "y" (the output) or "x" (the input); the
# default of its parameter alpha (nan: it has none; the loops of the others ignore alpha);
# its forward and backward loops, float then double (vmath_loops.h, loops.pxd); the
# docstrings of its two kernels.

from libc.math cimport NAN, isnan

from vmath cimport (
    vm_mish_bwd_f32, vm_mish_bwd_f64, vm_mish_fwd_f32, vm_mish_fwd_f64, vm_selu_bwd_f32,
    vm_selu_bwd_f64, vm_selu_fwd_f32, vm_selu_fwd_f64,
    vm_elu_fwd_f32, vm_elu_fwd_f64, vm_gelu_bwd_f32, vm_gelu_bwd_f64, vm_gelu_fwd_f32,
    vm_gelu_fwd_f64, vm_sigmoid_fwd_f32, vm_sigmoid_fwd_f64, vm_silu_bwd_f32, vm_silu_bwd_f64,
    vm_silu_fwd_f32, vm_silu_fwd_f64, vm_softplus_bwd_f32, vm_softplus_bwd_f64,
    vm_softplus_fwd_f32, vm_softplus_fwd_f64, vm_tanh_fwd_f32, vm_tanh_fwd_f64,
)
from loops cimport (
    _elu_bwd, _leaky_relu_bwd, _leaky_relu_fwd, _relu_bwd, _relu_fwd, _sigmoid_bwd, _step_bwd,
    _step_fwd, _tanh_bwd,
)

# y[i] = f(x[i]) and dx[i] = f(dy[i], saved[i]), alpha passed to every loop
ctypedef void (*_act_fwd_f)(const float*, float*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_act_fwd_d)(const double*, double*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_act_bwd_f)(
    const float*, const float*, float*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_act_bwd_d)(
    const double*, const double*, double*, Py_ssize_t, double) noexcept nogil


cdef struct _ActivationLoops:
    bint bwd_reads_y
    _act_fwd_f fwd_f32
    _act_fwd_d fwd_f64
    _act_bwd_f bwd_f32
    _act_bwd_d bwd_f64


cdef enum:
    A_LINEAR = 0  # the code of "linear" (no loops)
    _MAX_ACTIVATIONS = 64

cdef _ActivationLoops _ACTIVATION_LOOPS[_MAX_ACTIVATIONS]
cdef int _n_activations = 0
_activation_rows = []  # (name, saved, alpha default or None, forward doc, backward doc)


cdef int _row(str name, str saved, double alpha, _act_fwd_f fwd_f32, _act_fwd_d fwd_f64,
              _act_bwd_f bwd_f32, _act_bwd_d bwd_f64, str fwd_doc, str bwd_doc) except -1:
    """Append one activation to the table; its code is its index."""
    global _n_activations
    if _n_activations == _MAX_ACTIVATIONS or saved not in ("x", "y"):
        raise ValueError(f"activation table: bad row {name!r}")
    cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[_n_activations]
    r.bwd_reads_y = saved == "y"
    r.fwd_f32, r.fwd_f64, r.bwd_f32, r.bwd_f64 = fwd_f32, fwd_f64, bwd_f32, bwd_f64
    _activation_rows.append((name, saved, None if isnan(alpha) else alpha, fwd_doc, bwd_doc))
    _n_activations += 1
    return 0


_row("linear", "x", NAN, NULL, NULL, NULL, NULL, "", "")
_row("relu", "y", NAN, _relu_fwd[float], _relu_fwd[double], _relu_bwd[float], _relu_bwd[double],
     "y = x <= 0 ? 0 : x (max(x, 0) with nan passed through).",
     "dx = y <= 0 ? 0 : dy (dy * (y > 0), relu'(0) = 0).")
_row("leaky_relu", "x", 0.01, _leaky_relu_fwd[float], _leaky_relu_fwd[double],
     _leaky_relu_bwd[float], _leaky_relu_bwd[double],
     "y = x > 0 ? x : alpha * x.", "dx = dy * (x > 0 ? 1 : alpha).")
_row("elu", "y", 1.0, vm_elu_fwd_f32, vm_elu_fwd_f64, _elu_bwd[float], _elu_bwd[double],
     "y = x > 0 ? x : alpha * expm1(x).", "dx = dy * (y > 0 ? 1 : y + alpha).")
_row("sigmoid", "y", NAN, vm_sigmoid_fwd_f32, vm_sigmoid_fwd_f64, _sigmoid_bwd[float],
     _sigmoid_bwd[double],
     "y = 1 / (1 + exp(-x)), computed from exp(-|x|) on both sides.", "dx = dy * y * (1 - y).")
_row("tanh", "y", NAN, vm_tanh_fwd_f32, vm_tanh_fwd_f64, _tanh_bwd[float], _tanh_bwd[double],
     "y = tanh(x).", "dx = dy * (1 - y * y).")
_row("softplus", "x", NAN, vm_softplus_fwd_f32, vm_softplus_fwd_f64, vm_softplus_bwd_f32,
     vm_softplus_bwd_f64,
     "y = max(x, 0) + log1p(exp(-|x|)) = log(1 + exp(x)).", "dx = dy * sigmoid(x).")
_row("gelu", "x", NAN, vm_gelu_fwd_f32, vm_gelu_fwd_f64, vm_gelu_bwd_f32, vm_gelu_bwd_f64,
     "y = x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2)) (exact GELU).",
     "dx = dy * (Phi(x) + x * phi(x)).")
_row("silu", "x", NAN, vm_silu_fwd_f32, vm_silu_fwd_f64, vm_silu_bwd_f32, vm_silu_bwd_f64,
     "y = x * sigmoid(x).", "dx = dy * s * (1 + x * (1 - s)) with s = sigmoid(x).")
_row("step", "x", NAN, _step_fwd[float], _step_fwd[double], _step_bwd[float], _step_bwd[double],
     "y = x >= 0 ? 1 : 0 (nan stays nan).",
     "dx = 0: the step is flat wherever it is differentiable.")
_row("selu", "y", NAN, vm_selu_fwd_f32, vm_selu_fwd_f64, vm_selu_bwd_f32, vm_selu_bwd_f64,
     "y = scale * (x > 0 ? x : alpha * expm1(x)), Keras' alpha 1.67326... and scale 1.05070....",
     "dx = dy * (y > 0 ? scale : y + scale * alpha).")
_row("mish", "x", NAN, vm_mish_fwd_f32, vm_mish_fwd_f64, vm_mish_bwd_f32, vm_mish_bwd_f64,
     "y = x * tanh(softplus(x)).",
     "dx = dy * (t + x * sigmoid(x) * (1 - t * t)) with t = tanh(softplus(x)).")

# The names by code.
_ACTIVATION_NAMES = tuple([r[0] for r in _activation_rows])
