"""Activation kernels: one fused forward and one fused backward pass each, softmax and
log_softmax along any axis. Contract: csrc/README.md; oracle: microgradnet/_reference.py.

Each def function checks its arguments with the numpy C-API (no buffer acquisition: that
costs more than the kernel on small arrays), then runs a `noexcept nogil` loop: written once
for float and double through the fused type `floating` here, or, for the activations that
need exp, tanh, log1p or erfc, in C in vmath_loops.h (vectorized math, with AVX2+FMA and
AVX-512 copies picked at run time; see vmath.h).

The elementwise drivers (_map1, _map2) split a large array into one chunk per thread
(OpenMP, when the build has it); below the threshold they call the loop directly, as before.
"""

cimport numpy as cnp
from cython.parallel cimport prange

from checks cimport _float_array, _out, _same_shape, _unalias
from vmath cimport (
    _BLOCK, _THREAD_THRESHOLD, _default_threads, _exp, _log, _softmax_row, floating,
    vm_erfc_f32, vm_exp_f32, vm_exp_f64, vm_expm1_f32, vm_expm1_f64, vm_log1p_f32,
    vm_log1p_f64, vm_sigmoid_bwd_x_f32, vm_sigmoid_bwd_x_f64,
    vm_sigmoid_fwd_f32, vm_sigmoid_fwd_f64, vm_tanh_bwd_x_f32, vm_tanh_bwd_x_f64,
    vm_tanh_fwd_f32, vm_tanh_fwd_f64,
)

cnp.import_array()

include "simd.pxi"

# The specializations of the elementwise loops, passed to the shared drivers below: the
# loops y[i] = f(x[i]) (map1) and y[i] = f(a[i], b[i]) (map2) as vmath_loops.h and loops.pxd
# write them, and the loops along an axis.
ctypedef void (*_map1_f)(const float*, float*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_map1_d)(const double*, double*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_map2_f)(const float*, const float*, float*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_map2_d)(
    const double*, const double*, double*, Py_ssize_t, double) noexcept nogil
ctypedef void (*_axis1_f)(
    const float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*_axis1_d)(
    const double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*_axis2_f)(
    const float*, const float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*_axis2_d)(
    const double*, const double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil


# --------------------------------------------------------------------------- threads

include "threads.pxi"


# The arrays of one elementwise call, for its chunks (_run_chunks).
cdef struct _Map:
    int t
    const void* a   # x (_map1) or dy (_map2)
    const void* s   # the saved array (_map2)
    void* out
    double alpha
    _map1_f f1_32
    _map1_d f1_64
    _map2_f f2_32
    _map2_d f2_64


cdef void _map1_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _Map* m = <_Map*>ctx
    if m.t == cnp.NPY_FLOAT32:
        m.f1_32(<const float*>m.a + lo, <float*>m.out + lo, k, m.alpha)
    else:
        m.f1_64(<const double*>m.a + lo, <double*>m.out + lo, k, m.alpha)


cdef void _map2_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _Map* m = <_Map*>ctx
    if m.t == cnp.NPY_FLOAT32:
        m.f2_32(<const float*>m.a + lo, <const float*>m.s + lo, <float*>m.out + lo, k,
                m.alpha)
    else:
        m.f2_64(<const double*>m.a + lo, <const double*>m.s + lo, <double*>m.out + lo, k,
                m.alpha)


# --------------------------------------------------------------------------- drivers

cdef object _map1(object x, object out, double alpha, _map1_f f32, _map1_d f64):
    """Check x and out, then run y[i] = f(x[i]) on the float or double loop."""
    cdef cnp.ndarray xa = _float_array("x", x, -1)
    cdef int t = cnp.PyArray_TYPE(xa)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), t)
    xa = _unalias(xa, o, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef _Map m
    m.t, m.a, m.out, m.alpha = t, cnp.PyArray_DATA(xa), cnp.PyArray_DATA(o), alpha
    m.f1_32, m.f1_64 = f32, f64
    with nogil:
        _run_chunks(_map1_chunk, &m, n, n, _CHUNK_ALIGN)
    return o


cdef object _map2(object dy, object saved, str saved_name, object out, double alpha,
                  _map2_f f32, _map2_d f64):
    """Check dy, the saved array and out, then run dx[i] = f(dy[i], saved[i])."""
    cdef cnp.ndarray da = _float_array("dy", dy, -1)
    cdef int t = cnp.PyArray_TYPE(da)
    cdef cnp.ndarray sa = _float_array(saved_name, saved, t)
    _same_shape(saved_name, sa, "dy", da)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(da), cnp.PyArray_DIMS(da), t)
    da = _unalias(da, o, True)
    sa = _unalias(sa, o, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(da)
    cdef _Map m
    m.t, m.a, m.s, m.out = t, cnp.PyArray_DATA(da), cnp.PyArray_DATA(sa), cnp.PyArray_DATA(o)
    m.alpha, m.f2_32, m.f2_64 = alpha, f32, f64
    with nogil:
        _run_chunks(_map2_chunk, &m, n, n, _CHUNK_ALIGN)
    return o


cdef int _axis(object axis, int ndim) except -1:
    """The axis normalized to [0, ndim), checked like the reference."""
    if not isinstance(axis, (int, cnp.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {ndim} dimensions")
    cdef int ax = axis
    return ax + ndim if ax < 0 else ax


cdef void _split(cnp.ndarray a, int axis, Py_ssize_t* outer, Py_ssize_t* n,
                 Py_ssize_t* inner) noexcept:
    """View the C-ordered `a` as (outer, n, inner) with n the length of `axis`."""
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(a)
    cdef int d
    outer[0] = 1
    inner[0] = 1
    n[0] = dims[axis]
    for d in range(axis):
        outer[0] *= dims[d]
    for d in range(axis + 1, cnp.PyArray_NDIM(a)):
        inner[0] *= dims[d]


cdef object _along1(object x, object axis, object out, _axis1_f f32, _axis1_d f64):
    """Check x, out and axis, then run y = f(x) along the axis."""
    cdef cnp.ndarray xa = _float_array("x", x, -1)
    cdef int t = cnp.PyArray_TYPE(xa)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), t)
    cdef int ax = _axis(axis, cnp.PyArray_NDIM(xa))
    xa = _unalias(xa, o, True)
    cdef Py_ssize_t outer, n, inner
    _split(xa, ax, &outer, &n, &inner)
    cdef void* px = cnp.PyArray_DATA(xa)
    cdef void* po = cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            f32(<const float*>px, <float*>po, outer, n, inner)
        else:
            f64(<const double*>px, <double*>po, outer, n, inner)
    return o


cdef object _along2(object dy, object y, object axis, object out, _axis2_f f32, _axis2_d f64):
    """Check dy, y, out and axis, then run dx = f(dy, y) along the axis."""
    cdef cnp.ndarray da = _float_array("dy", dy, -1)
    cdef int t = cnp.PyArray_TYPE(da)
    cdef cnp.ndarray ya = _float_array("y", y, t)
    _same_shape("y", ya, "dy", da)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(da), cnp.PyArray_DIMS(da), t)
    cdef int ax = _axis(axis, cnp.PyArray_NDIM(da))
    da = _unalias(da, o, True)
    ya = _unalias(ya, o, True)
    cdef Py_ssize_t outer, n, inner
    _split(da, ax, &outer, &n, &inner)
    cdef void* pd = cnp.PyArray_DATA(da)
    cdef void* py = cnp.PyArray_DATA(ya)
    cdef void* po = cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            f32(<const float*>pd, <const float*>py, <float*>po, outer, n, inner)
        else:
            f64(<const double*>pd, <const double*>py, <double*>po, outer, n, inner)
    return o


# --------------------------------------------------------------------------- elementwise loops
# Here the ones of plain arithmetic; those of elu's forward, sigmoid, tanh, softplus, gelu
# and silu (vm_<name>_fwd/bwd_f32/f64) are in vmath_loops.h.
# `alpha` is unused by the kernels without one: every loop has the driver's signature.
# Literals in arithmetic are cast, <floating>1: a bare 1 is a C double, and would make gcc
# compute float data in double (another result than numpy's, and slower).

# --------------------------------------------------------------------------- axis loops
# The array is (outer, n, inner), reduced over n. inner == 1 (the last axis) walks rows;
# otherwise _BLOCK neighbouring columns are reduced together, their running max and sum on
# the stack, so each pass reads whole contiguous row segments. Sums accumulate in double.
# Every output element is written after the inputs at its own index are read, so out may be
# the input itself.

cdef void _softmax_fwd(const floating* x, floating* y, Py_ssize_t outer, Py_ssize_t n,
                       Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t o, i, j, jb, j0, w
    cdef const floating* xs
    cdef floating* ys
    cdef floating m, e
    cdef floating mb[_BLOCK]
    cdef double sb[_BLOCK]
    if n == 0:
        return
    if inner == 1:
        for o in range(outer):
            _softmax_row(x + o * n, y + o * n, n, &m)
        return
    for o in range(outer):
        for jb in range((inner + _BLOCK - 1) // _BLOCK):
            j0 = jb * _BLOCK
            w = min(<Py_ssize_t>_BLOCK, inner - j0)
            xs = x + o * n * inner + j0
            ys = y + o * n * inner + j0
            for j in range(w):
                mb[j] = xs[j]
            for i in range(1, n):
                for j in range(w):
                    if xs[i * inner + j] > mb[j]:
                        mb[j] = xs[i * inner + j]
            for j in range(w):
                sb[j] = 0
            for i in range(n):
                for j in range(w):
                    e = _exp(xs[i * inner + j] - mb[j])
                    ys[i * inner + j] = e
                    sb[j] += e
            for j in range(w):
                mb[j] = <floating>sb[j]  # the max is spent: hold the divisor
            for i in range(n):
                for j in range(w):
                    ys[i * inner + j] = ys[i * inner + j] / mb[j]


cdef void _log_softmax_fwd(const floating* x, floating* y, Py_ssize_t outer, Py_ssize_t n,
                           Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t o, i, j, jb, j0, w
    cdef const floating* xs
    cdef floating* ys
    cdef floating m, lse
    cdef double s
    cdef floating mb[_BLOCK]
    cdef floating lb[_BLOCK]
    cdef double sb[_BLOCK]
    if n == 0:
        return
    if inner == 1:
        for o in range(outer):
            xs = x + o * n
            ys = y + o * n
            m = xs[0]
            for i in range(1, n):
                if xs[i] > m:
                    m = xs[i]
            s = 0
            for i in range(n):
                s += _exp(xs[i] - m)
            lse = _log(<floating>s)
            for i in range(n):
                ys[i] = (xs[i] - m) - lse
        return
    for o in range(outer):
        for jb in range((inner + _BLOCK - 1) // _BLOCK):
            j0 = jb * _BLOCK
            w = min(<Py_ssize_t>_BLOCK, inner - j0)
            xs = x + o * n * inner + j0
            ys = y + o * n * inner + j0
            for j in range(w):
                mb[j] = xs[j]
            for i in range(1, n):
                for j in range(w):
                    if xs[i * inner + j] > mb[j]:
                        mb[j] = xs[i * inner + j]
            for j in range(w):
                sb[j] = 0
            for i in range(n):
                for j in range(w):
                    sb[j] += _exp(xs[i * inner + j] - mb[j])
            for j in range(w):
                lb[j] = _log(<floating>sb[j])
            for i in range(n):
                for j in range(w):
                    ys[i * inner + j] = (xs[i * inner + j] - mb[j]) - lb[j]


cdef void _softmax_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t outer,
                       Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t o, i, j, jb, j0, w, k
    cdef floating d
    cdef double s
    cdef floating db[_BLOCK]
    cdef double sb[_BLOCK]
    if inner == 1:
        for o in range(outer):
            k = o * n
            s = 0
            for i in range(n):
                s += dy[k + i] * y[k + i]
            d = <floating>s
            for i in range(n):
                dx[k + i] = y[k + i] * (dy[k + i] - d)
        return
    for o in range(outer):
        for jb in range((inner + _BLOCK - 1) // _BLOCK):
            j0 = jb * _BLOCK
            w = min(<Py_ssize_t>_BLOCK, inner - j0)
            for j in range(w):
                sb[j] = 0
            for i in range(n):
                k = (o * n + i) * inner + j0
                for j in range(w):
                    sb[j] += dy[k + j] * y[k + j]
            for j in range(w):
                db[j] = <floating>sb[j]
            for i in range(n):
                k = (o * n + i) * inner + j0
                for j in range(w):
                    dx[k + j] = y[k + j] * (dy[k + j] - db[j])


cdef void _log_softmax_bwd(const floating* dy, const floating* y, floating* dx,
                           Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t o, i, j, jb, j0, w, k
    cdef floating d
    cdef double s
    cdef floating db[_BLOCK]
    cdef double sb[_BLOCK]
    if inner == 1:
        for o in range(outer):
            k = o * n
            s = 0
            for i in range(n):
                s += dy[k + i]
            d = <floating>s
            for i in range(n):
                dx[k + i] = dy[k + i] - _exp(y[k + i]) * d
        return
    for o in range(outer):
        for jb in range((inner + _BLOCK - 1) // _BLOCK):
            j0 = jb * _BLOCK
            w = min(<Py_ssize_t>_BLOCK, inner - j0)
            for j in range(w):
                sb[j] = 0
            for i in range(n):
                k = (o * n + i) * inner + j0
                for j in range(w):
                    sb[j] += dy[k + j]
            for j in range(w):
                db[j] = <floating>sb[j]
            for i in range(n):
                k = (o * n + i) * inner + j0
                for j in range(w):
                    dx[k + j] = dy[k + j] - _exp(y[k + j]) * db[j]


# --------------------------------------------------------------------------- kernels

# The elementwise activations: <name>_forward and <name>_backward of each row of the table,
# made below (their signatures those of the reference: the saved array named for what the
# backward reads, alpha where the row has one).

include "activation_table.pxi"


def _forward_kernel(int code):
    """<name>_forward(x[, alpha], out=None) of row `code`."""
    name, _, alpha, doc, _ = _activation_rows[code]
    if alpha is None:
        def kernel(x, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map1(x, out, 0.0, r.fwd_f32, r.fwd_f64)
    else:
        def kernel(x, double alpha=alpha, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map1(x, out, alpha, r.fwd_f32, r.fwd_f64)
    return _named(kernel, f"{name}_forward", doc)


def _backward_kernel(int code):
    """<name>_backward(dy, y or x[, alpha], out=None) of row `code`."""
    name, saved, alpha, _, doc = _activation_rows[code]
    if alpha is None and saved == "y":
        def kernel(dy, y, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map2(dy, y, "y", out, 0.0, r.bwd_f32, r.bwd_f64)
    elif alpha is None:
        def kernel(dy, x, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map2(dy, x, "x", out, 0.0, r.bwd_f32, r.bwd_f64)
    elif saved == "y":
        def kernel(dy, y, double alpha=alpha, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map2(dy, y, "y", out, alpha, r.bwd_f32, r.bwd_f64)
    else:
        def kernel(dy, x, double alpha=alpha, out=None):
            cdef _ActivationLoops* r = &_ACTIVATION_LOOPS[code]
            return _map2(dy, x, "x", out, alpha, r.bwd_f32, r.bwd_f64)
    return _named(kernel, f"{name}_backward", doc)


def _named(kernel, str name, str doc):
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = doc
    return kernel


for _code in range(A_LINEAR + 1, _n_activations):
    globals()[_activation_rows[_code][0] + "_forward"] = _forward_kernel(_code)
    globals()[_activation_rows[_code][0] + "_backward"] = _backward_kernel(_code)
del _code


def sigmoid_backward_from_x(dy, x, out=None):
    """dx = dy * s * (1 - s) with s = sigmoid(x) recomputed."""
    return _map2(dy, x, "x", out, 0.0, vm_sigmoid_bwd_x_f32, vm_sigmoid_bwd_x_f64)


def tanh_backward_from_x(dy, x, out=None):
    """dx = dy * (1 - t * t) with t = tanh(x) recomputed."""
    return _map2(dy, x, "x", out, 0.0, vm_tanh_bwd_x_f32, vm_tanh_bwd_x_f64)


def softmax_forward(x, axis=-1, out=None):
    """y = exp(x - max) / sum(exp(x - max)) along axis."""
    return _along1(x, axis, out, _softmax_fwd[float], _softmax_fwd[double])


def softmax_backward(dy, y, axis=-1, out=None):
    """dx = y * (dy - sum(dy * y, axis))."""
    return _along2(dy, y, axis, out, _softmax_bwd[float], _softmax_bwd[double])


def log_softmax_forward(x, axis=-1, out=None):
    """y = x - max - log(sum(exp(x - max))) along axis."""
    return _along1(x, axis, out, _log_softmax_fwd[float], _log_softmax_fwd[double])


def log_softmax_backward(dy, y, axis=-1, out=None):
    """dx = dy - exp(y) * sum(dy, axis)."""
    return _along2(dy, y, axis, out, _log_softmax_bwd[float], _log_softmax_bwd[double])


# --------------------------------------------------------------------------- test hooks
# Private (not in the contract): tests/test_vmath.py measures the functions of vmath.h and
# runs every kernel on each SIMD variant.

_VMATH = {
    "exp": (<Py_ssize_t>vm_exp_f32, <Py_ssize_t>vm_exp_f64),
    "expm1": (<Py_ssize_t>vm_expm1_f32, <Py_ssize_t>vm_expm1_f64),
    "log1p": (<Py_ssize_t>vm_log1p_f32, <Py_ssize_t>vm_log1p_f64),
    "tanh": (<Py_ssize_t>vm_tanh_fwd_f32, <Py_ssize_t>vm_tanh_fwd_f64),
    "sigmoid": (<Py_ssize_t>vm_sigmoid_fwd_f32, <Py_ssize_t>vm_sigmoid_fwd_f64),
    "erfc": (<Py_ssize_t>vm_erfc_f32, 0),
}


def _vmath(str name, x, out=None):
    """y = name(x) by vmath.h's function; name in _VMATH ("erfc" float32 only)."""
    cdef Py_ssize_t f32, f64
    if name not in _VMATH:
        raise ValueError(f"vmath has no {name!r}; it has {', '.join(_VMATH)}")
    f32, f64 = _VMATH[name]
    if f64 == 0 and getattr(x, "dtype", None) != "float32":
        raise TypeError(f"vmath {name} is float32 only")
    return _map1(x, out, 0.0, <_map1_f>f32, <_map1_d>f64)
