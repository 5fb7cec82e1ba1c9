# Shared by every kernel module (activations, losses, matmul, optim, trainer; cimported as
# `vmath`): the fused float type, the math functions in the precision of the data (the
# softmax of a row among them), the declarations of vmath.h and the threads' defaults.
# Everything here is `cdef inline`, a type or from a C header, so each module compiles its
# own copy and nothing is imported at run time. The argument checks are in checks.pxd.

from libc.math cimport log, logf

ctypedef fused floating:
    float
    double

# Columns handled together when reducing along a non-last axis: small enough for the stack,
# wide enough that every pass streams whole cache lines.
cdef enum:
    _BLOCK = 64

# The large elementwise kernels run on 2 threads from this many elements (threads.pxi;
# measured in README.md, "Threads").
cdef enum:
    _THREAD_THRESHOLD = 1 << 16

# The default thread count is capped: the kernels that get threads stream memory, and a
# few cores already take all the bandwidth there is.
cdef enum:
    _MAX_DEFAULT_THREADS = 8


cdef inline int _default_threads():
    """OMP_NUM_THREADS if it is a positive count (the first of a list), else the CPUs this
    process may run on (its affinity mask), at most _MAX_DEFAULT_THREADS."""
    import os
    v = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if v.isdigit() and 0 < int(v) < 1 << 16:
        return int(v)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        n = os.cpu_count() or 1
    return max(1, min(n, <int>_MAX_DEFAULT_THREADS))


# --------------------------------------------------------------------------- vmath.h
# Branch-free exp, expm1, log1p, tanh, sigmoid (and erfc for float gelu) that gcc vectorizes,
# and the elementwise loops built on them, each compiled for the SSE2 baseline, AVX2+FMA and
# AVX-512, the variant picked at run time (see the header). ulp errors: tests/test_vmath.py.

cdef extern from "vmath.h" nogil:
    float vm_expf(float x)
    double vm_exp(double x)

    int vm_simd_level()
    int vm_set_simd_level(int level)

    # y[i] = f(x[i]) (alpha: elu's); dx[i] = f(dy[i], saved[i])
    void vm_exp_f32(const float*, float*, Py_ssize_t, double)
    void vm_exp_f64(const double*, double*, Py_ssize_t, double)
    void vm_expm1_f32(const float*, float*, Py_ssize_t, double)
    void vm_expm1_f64(const double*, double*, Py_ssize_t, double)
    void vm_log1p_f32(const float*, float*, Py_ssize_t, double)
    void vm_log1p_f64(const double*, double*, Py_ssize_t, double)
    void vm_erfc_f32(const float*, float*, Py_ssize_t, double)
    void vm_elu_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_elu_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_sigmoid_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_sigmoid_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_sigmoid_bwd_x_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_sigmoid_bwd_x_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_tanh_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_tanh_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_tanh_bwd_x_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_tanh_bwd_x_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_softplus_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_softplus_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_softplus_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_softplus_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_gelu_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_gelu_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_gelu_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_gelu_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_silu_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_silu_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_silu_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_silu_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_selu_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_selu_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_selu_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_selu_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_mish_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_mish_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_mish_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_mish_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)

    # a + b, a - b, a * b, -a (elementwise.pyx)
    void vm_add_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_add_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_sub_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_sub_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_mul_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_mul_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_neg_f32(const float*, float*, Py_ssize_t, double)
    void vm_neg_f64(const double*, double*, Py_ssize_t, double)

    # loss[i] = f(z[i], t[i]); dz[i] = f(dloss[i], z[i], t[i])
    # the activations without transcendental functions, and the bias rows (loops.pxd)
    void vm_relu_fwd_f32(const float*, float*, Py_ssize_t, double)
    void vm_relu_fwd_f64(const double*, double*, Py_ssize_t, double)
    void vm_relu_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_relu_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_elu_bwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_elu_bwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_sigmoid_bwd_y_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_sigmoid_bwd_y_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_tanh_bwd_y_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_tanh_bwd_y_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_bias_add_f32(const float*, const float*, float*, Py_ssize_t, Py_ssize_t)
    void vm_bias_add_f64(const double*, const double*, double*, Py_ssize_t, Py_ssize_t)
    void vm_bias_grad_f32(const float*, float*, Py_ssize_t, Py_ssize_t)
    void vm_bias_grad_f64(const double*, double*, Py_ssize_t, Py_ssize_t)
    int vm_outer_f32(const float*, Py_ssize_t, const float*, float*, Py_ssize_t, Py_ssize_t)
    int vm_outer_f64(const double*, Py_ssize_t, const double*, double*, Py_ssize_t,
                     Py_ssize_t)
    void vm_transpose_f32(const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t)
    void vm_transpose_f64(const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t)
    # C (m, n) := op(A) op(B) below BLAS's sizes (vmath_gemm.h), B packed into the last
    # argument: scratch of k * n elements, n rounded up to a 32-byte vector, 32-byte aligned
    void vm_gemm_tiles_f32(int, int, Py_ssize_t, Py_ssize_t, Py_ssize_t, const float*,
                           Py_ssize_t, const float*, Py_ssize_t, float*, Py_ssize_t, float*)
    void vm_gemm_tiles_f64(int, int, Py_ssize_t, Py_ssize_t, Py_ssize_t, const double*,
                           Py_ssize_t, const double*, Py_ssize_t, double*, Py_ssize_t, double*)

    void vm_bce_fwd_f32(const float*, const float*, float*, Py_ssize_t, double)
    void vm_bce_fwd_f64(const double*, const double*, double*, Py_ssize_t, double)
    void vm_bce_bwd_f32(const float*, const float*, const float*, float*, Py_ssize_t)
    void vm_bce_bwd_f64(const double*, const double*, const double*, double*, Py_ssize_t)


# --------------------------------------------------------------------------- math
# One name per function for the fused loops; `floating is float` is resolved at compile
# time, so float data runs the single-precision routine (faster, and the precision the
# result has anyway).

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return vm_expf(x)
    else:
        return vm_exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _softmax_row(const floating* z, floating* p, Py_ssize_t c,
                                  floating* max_out) noexcept nogil:
    """p := softmax(z) over c > 0 entries; return the sum of exp(z - max), the max in max_out.

    The one softmax of a row: the activation, the fused softmax losses and the captured
    step's recordings all call it, so they agree to the bit. The max is subtracted, so exp
    never overflows and the largest term is 1; the sum accumulates in double. Each p[j] is
    written after z[j] is read, so p may be z itself.
    """
    cdef floating m = z[0]
    cdef floating e
    cdef double s = 0
    cdef Py_ssize_t j
    for j in range(1, c):
        if z[j] > m:
            m = z[j]
    for j in range(c):
        e = _exp(z[j] - m)
        p[j] = e
        s += e
    e = <floating>s
    for j in range(c):
        p[j] = p[j] / e
    max_out[0] = m
    return e
