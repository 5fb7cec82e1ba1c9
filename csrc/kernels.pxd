# Shared by the three kernel modules (cimported as `kernels`): the fused float type, the math
# functions in the precision of the data, and the argument checks every wrapper runs before
# it releases the GIL. Everything here is `cdef inline`, a type or from a C header, so each
# module compiles its own copy and nothing is imported at run time. The error messages are
# the reference's (microgradnet/_reference.py), so both backends fail the same way.

cimport numpy as cnp
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
# and the elementwise loops built on them, each compiled for SSE2 and for AVX2+FMA with the
# variant picked at run time (see the header). ulp errors: tests/test_vmath.py.

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


# --------------------------------------------------------------------------- checks

cdef inline str _dtype_name(int typenum):
    return "float32" if typenum == cnp.NPY_FLOAT32 else "float64"


cdef inline int _float_type(str name, object a, int typenum) except -1:
    """Check that `a` is a float32/float64 array (of `typenum` if >= 0); return its type."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    # A byte-swapped array has the same type number but data the kernels cannot read.
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or cnp.PyArray_ISBYTESWAPPED(arr):
        raise TypeError(f"{name} must be float32 or float64, got {arr.dtype}")
    if typenum >= 0 and t != typenum:
        raise TypeError(
            f"{name} has dtype {arr.dtype}, expected {_dtype_name(typenum)} like the other inputs"
        )
    return t


cdef inline cnp.ndarray _c_order(cnp.ndarray a):
    """`a` itself if C-contiguous and aligned, else a copy that is."""
    # Aligned as well: the vectorized loops gcc emits may assume element alignment.
    if cnp.PyArray_CHKFLAGS(a, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED):
        return a
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef inline cnp.ndarray _float_array(str name, object a, int typenum):
    """Check `a` like _float_type and return it C-contiguous."""
    _float_type(name, a, typenum)
    return _c_order(<cnp.ndarray>a)


cdef inline int _same_shape(str name, cnp.ndarray a, str ref_name, cnp.ndarray ref) except -1:
    if not cnp.PyArray_SAMESHAPE(a, ref):
        raise ValueError(
            f"{name} has shape {(<object>a).shape}, expected {(<object>ref).shape} like {ref_name}"
        )
    return 0


cdef inline tuple _shape(int nd, cnp.npy_intp* dims):
    return tuple([dims[i] for i in range(nd)])


cdef inline cnp.ndarray _out(str name, object out, int nd, cnp.npy_intp* dims, int typenum):
    """Allocate the result (nd, dims, typenum), or check the caller's buffer `out`."""
    if out is None:
        return <cnp.ndarray>cnp.PyArray_EMPTY(nd, dims, typenum, 0)
    if not cnp.PyArray_Check(out):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    cdef cnp.ndarray o = <cnp.ndarray>out
    if cnp.PyArray_TYPE(o) != typenum or cnp.PyArray_ISBYTESWAPPED(o):
        raise TypeError(f"{name} has dtype {o.dtype}, expected {_dtype_name(typenum)}")
    cdef int d
    cdef bint same = cnp.PyArray_NDIM(o) == nd
    if same:
        for d in range(nd):
            same = same and cnp.PyArray_DIMS(o)[d] == dims[d]
    if not same:
        raise ValueError(f"{name} has shape {(<object>o).shape}, expected {_shape(nd, dims)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(o):
        raise ValueError(f"{name} must be C-contiguous")
    if not cnp.PyArray_ISALIGNED(o):
        raise ValueError(f"{name} must be aligned")
    if not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError(f"{name} is read-only")
    return o


cdef inline bint _overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether the byte extents of `a` and `b` intersect (any strides; empty touches nothing)."""
    if cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0:
        return False
    cdef char* lo_a = cnp.PyArray_BYTES(a)
    cdef char* hi_a = lo_a + cnp.PyArray_ITEMSIZE(a)
    cdef char* lo_b = cnp.PyArray_BYTES(b)
    cdef char* hi_b = lo_b + cnp.PyArray_ITEMSIZE(b)
    cdef cnp.npy_intp step
    cdef int d
    for d in range(cnp.PyArray_NDIM(a)):
        step = cnp.PyArray_STRIDES(a)[d] * (cnp.PyArray_DIMS(a)[d] - 1)
        if step < 0:
            lo_a += step
        else:
            hi_a += step
    for d in range(cnp.PyArray_NDIM(b)):
        step = cnp.PyArray_STRIDES(b)[d] * (cnp.PyArray_DIMS(b)[d] - 1)
        if step < 0:
            lo_b += step
        else:
            hi_b += step
    return lo_a < hi_b and lo_b < hi_a


cdef inline cnp.ndarray _unalias(cnp.ndarray a, cnp.ndarray out, bint in_place_ok):
    """`a`, or a copy of it if writing `out` could change `a` before the kernel has read it."""
    # The kernels read element i of every input before writing element i of out, so `out`
    # being the very same array as an input is fine where `in_place_ok`; any other overlap
    # is resolved by a copy, which gives numpy's semantics (inputs read before out written).
    if not _overlap(a, out):
        return a
    if (in_place_ok and cnp.PyArray_DATA(a) == cnp.PyArray_DATA(out)
            and cnp.PyArray_TYPE(a) == cnp.PyArray_TYPE(out) and cnp.PyArray_SAMESHAPE(a, out)):
        return a
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)
