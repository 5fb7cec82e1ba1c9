"""Matrix kernels: GEMM through the BLAS that scipy ships, bias add and its gradient.
Contract: csrc/README.md; oracle: microgradnet/_reference.py.
"""

cimport numpy as cnp
import numpy as _np
from cython.parallel cimport prange
from libc.limits cimport INT_MAX
from libc.string cimport memset

from checks cimport _c_order, _float_array, _float_type, _out, _overlap, _unalias
from vmath cimport _THREAD_THRESHOLD, _default_threads, floating
from loops cimport _bias_add, _bias_grad, _gemm, _gemm_tb_copies, _gemm_tiles

cnp.import_array()

include "simd.pxi"

# bias_add splits a large x by rows like the elementwise kernels (GEMM has BLAS's threads).
include "threads.pxi"


# The arrays of bias_add, for its chunks of rows.
cdef struct _Bias:
    int t
    const void* x
    const void* b
    void* out
    Py_ssize_t m


cdef void _bias_add_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _Bias* c = <_Bias*>ctx
    if c.t == cnp.NPY_FLOAT32:
        _bias_add(<const float*>c.x + lo * c.m, <const float*>c.b, <float*>c.out + lo * c.m,
                  k, c.m)
    else:
        _bias_add(<const double*>c.x + lo * c.m, <const double*>c.b,
                  <double*>c.out + lo * c.m, k, c.m)


# --------------------------------------------------------------------------- gemm

cdef bint _blas_view(cnp.ndarray a, bint* transposed, int* ld) noexcept:
    """Describe the 2-D `a` as a row-major buffer for BLAS, without copying, if possible.

    On success the buffer holds `a` (transposed = False) or `a.T` (transposed = True) in row
    major order with leading dimension `ld`, ld >= max(1, row length) as BLAS demands.
    """
    if not cnp.PyArray_ISALIGNED(a):
        return False
    cdef cnp.npy_intp r = cnp.PyArray_DIMS(a)[0]
    cdef cnp.npy_intp c = cnp.PyArray_DIMS(a)[1]
    cdef cnp.npy_intp s0 = cnp.PyArray_STRIDES(a)[0]
    cdef cnp.npy_intp s1 = cnp.PyArray_STRIDES(a)[1]
    cdef cnp.npy_intp size = cnp.PyArray_ITEMSIZE(a)
    cdef cnp.npy_intp lead
    # The stride of a dimension of length 1 is never followed: any value will do there.
    if (c <= 1 or s1 == size) and (r <= 1 or (s0 % size == 0 and s0 >= c * size > 0)):
        transposed[0] = False
        lead = s0 // size if r > 1 else max(1, c)
    elif (r <= 1 or s0 == size) and (c <= 1 or (s1 % size == 0 and s1 >= r * size > 0)):
        transposed[0] = True  # F order: the buffer is a.T in C order
        lead = s1 // size if c > 1 else max(1, r)
    else:
        return False
    if lead > INT_MAX:
        return False
    ld[0] = <int>lead
    return True


cdef void _scale(floating* c, Py_ssize_t size, double beta) noexcept nogil:
    """c := beta * c, and c := 0 when beta == 0 (whatever c held, as BLAS does)."""
    cdef floating fb = <floating>beta
    cdef Py_ssize_t i
    if beta == 0:
        memset(c, 0, size * sizeof(floating))
        return
    for i in range(size):
        c[i] = fb * c[i]


def gemm(a, b, out=None, bint trans_a=False, bint trans_b=False, double alpha=1.0,
         double beta=0.0):
    """out := alpha * op(a) @ op(b) + beta * out, op(a) = a.T if trans_a else a."""
    cdef int t = _float_type("a", a, -1)
    _float_type("b", b, t)
    cdef cnp.ndarray aa = <cnp.ndarray>a
    cdef cnp.ndarray ba = <cnp.ndarray>b
    if cnp.PyArray_NDIM(aa) != 2 or cnp.PyArray_NDIM(ba) != 2:
        raise ValueError(f"gemm needs 2-D operands, got shapes {a.shape} and {b.shape}")
    cdef cnp.npy_intp m = cnp.PyArray_DIMS(aa)[1 if trans_a else 0]
    cdef cnp.npy_intp k = cnp.PyArray_DIMS(aa)[0 if trans_a else 1]
    cdef cnp.npy_intp kb = cnp.PyArray_DIMS(ba)[1 if trans_b else 0]
    cdef cnp.npy_intp n = cnp.PyArray_DIMS(ba)[0 if trans_b else 1]
    if k != kb:
        raise ValueError(
            f"gemm shapes do not match: op(a) is {(m, k)}, op(b) is {(kb, n)}"
        )
    if beta != 0 and out is None:
        raise ValueError("gemm with beta != 0 needs out")
    cdef cnp.npy_intp dims[2]
    dims[0] = m
    dims[1] = n
    cdef cnp.ndarray o = _out("out", out, 2, dims, t)
    if _overlap(o, aa) or _overlap(o, ba):
        raise ValueError("gemm: out must not overlap a or b")
    if m > INT_MAX or n > INT_MAX or k > INT_MAX:
        raise ValueError(
            f"gemm dimensions {(m, k, n)} exceed the BLAS integer limit {INT_MAX}"
        )
    if m == 0 or n == 0:
        return o
    cdef void* pc = cnp.PyArray_DATA(o)
    if k == 0:
        # The product is empty: BLAS implementations differ here, so do it ourselves.
        with nogil:
            if t == cnp.NPY_FLOAT32:
                _scale(<float*>pc, m * n, beta)
            else:
                _scale(<double*>pc, m * n, beta)
        return o
    if alpha == 0:
        # BLAS does not read a and b when alpha is 0, so their NaNs and infs would vanish;
        # the contract is IEEE's, as the reference computes it: 0 * (a @ b), then + beta * out.
        product = gemm(a, b, trans_a=trans_a, trans_b=trans_b)
        with _np.errstate(all="ignore"):  # a kernel computes, it does not warn
            product *= 0.0
            if beta == 0:
                o[...] = product
            else:
                o *= beta
                o += product
        return o
    # C-, F- and row-strided operands go to BLAS as they are, the layout turned into a flip
    # of the transpose flag; any other layout is copied to C order first.
    cdef bint ta_buf, tb_buf
    cdef int lda, ldb
    if not _blas_view(aa, &ta_buf, &lda):
        aa = _c_order(<cnp.ndarray>cnp.PyArray_NewCopy(aa, cnp.NPY_CORDER))
        _blas_view(aa, &ta_buf, &lda)
    if not _blas_view(ba, &tb_buf, &ldb):
        ba = _c_order(<cnp.ndarray>cnp.PyArray_NewCopy(ba, cnp.NPY_CORDER))
        _blas_view(ba, &tb_buf, &ldb)
    cdef bint ta = trans_a != ta_buf
    cdef bint tb = trans_b != tb_buf
    cdef void* pa = cnp.PyArray_DATA(aa)
    cdef void* pb = cnp.PyArray_DATA(ba)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _gemm(ta, tb, <int>m, <int>n, <int>k, alpha, <const float*>pa, lda,
                  <const float*>pb, ldb, beta, <float*>pc)
        else:
            _gemm(ta, tb, <int>m, <int>n, <int>k, alpha, <const double*>pa, lda,
                  <const double*>pb, ldb, beta, <double*>pc)
    return o


def _trans_b_copies(int m, int n, int k, dtype):
    """Test hook: whether a product C (m, n) := A B.T with B (n, k) of `dtype` runs on B
    copied transposed (loops.pxd's _gemm_tb_copies), when BLAS computes it."""
    return _gemm_tb_copies(m, n, k, <int>_np.dtype(dtype).itemsize)


def _tiles(int m, int n, int k, dtype):
    """Test hook: whether a product C (m, n) := op(A) op(B) of inner dimension k (alpha 1,
    beta 0, above the scalar loop's size) runs on vmath_gemm.h's tiles (loops.pxd)."""
    return _gemm_tiles(m, n, k, <int>_np.dtype(dtype).itemsize)


# --------------------------------------------------------------------------- bias

def bias_add(x, b, out=None):
    """out := x + b for x (n, m) and b (m,), b added to every row."""
    cdef cnp.ndarray xa = _float_array("x", x, -1)
    cdef int t = cnp.PyArray_TYPE(xa)
    cdef cnp.ndarray ba = _float_array("b", b, t)
    if (cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_NDIM(ba) != 1
            or cnp.PyArray_DIMS(ba)[0] != cnp.PyArray_DIMS(xa)[1]):
        raise ValueError(f"bias_add needs x (n, m) and b (m,), got {x.shape} and {b.shape}")
    cdef cnp.ndarray o = _out("out", out, 2, cnp.PyArray_DIMS(xa), t)
    xa = _unalias(xa, o, True)
    ba = _unalias(ba, o, False)
    cdef Py_ssize_t n = cnp.PyArray_DIMS(xa)[0]
    cdef Py_ssize_t m = cnp.PyArray_DIMS(xa)[1]
    cdef _Bias c
    c.t, c.x, c.b, c.out, c.m = t, cnp.PyArray_DATA(xa), cnp.PyArray_DATA(ba), \
        cnp.PyArray_DATA(o), m
    with nogil:  # split by rows, from as many elements as an elementwise kernel
        _run_chunks(_bias_add_chunk, &c, n, n * m, 1)
    return o


def bias_grad(dy, out=None):
    """out := dy.sum(axis=0) for dy (n, m): the gradient of the bias of bias_add."""
    cdef cnp.ndarray da = _float_array("dy", dy, -1)
    cdef int t = cnp.PyArray_TYPE(da)
    if cnp.PyArray_NDIM(da) != 2:
        raise ValueError(f"bias_grad needs a 2-D dy, got shape {dy.shape}")
    cdef cnp.ndarray o = _out("out", out, 1, cnp.PyArray_DIMS(da) + 1, t)
    da = _unalias(da, o, False)
    cdef Py_ssize_t n = cnp.PyArray_DIMS(da)[0]
    cdef Py_ssize_t m = cnp.PyArray_DIMS(da)[1]
    cdef void* pd = cnp.PyArray_DATA(da)
    cdef void* po = cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _bias_grad(<const float*>pd, <float*>po, n, m)
        else:
            _bias_grad(<const double*>pd, <double*>po, n, m)
    return o
