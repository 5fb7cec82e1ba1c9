"""Plain arithmetic for the eager path: a + b, a - b, a * b and -a of one dtype and one shape,
and the sum of every element, each with numpy's bits. Contract: csrc/README.md; oracle:
microgradnet/_reference.py.

These run on a small net's arrays ((32, 32), (4, 3)) once per op of a hand-written training
loop, where numpy's ufunc machinery costs more than the arithmetic. So: the arguments are
checked with the numpy C-API (no Python attribute lookups), the result is allocated by
PyArray_EMPTY in C order, contiguous arrays run one loop over raw pointers (vmath_loops.h,
per SIMD level: each element one exactly rounded operation, the same bits at every level),
other layouts a strided loop (no copy), and the GIL is kept for small arrays (releasing and
taking it back costs more than their loop). Large contiguous arrays split across threads
(threads.pxi); elementwise, so the bits do not depend on the split.
"""

cimport numpy as cnp
import numpy as _np
from cython.parallel cimport prange

from checks cimport _c_aligned, _float_type, _out, _overlap, _same_shape
from loops cimport R_SUM, _pairwise_sum
from vmath cimport (
    _THREAD_THRESHOLD, _default_threads, floating, vm_add_f32, vm_add_f64, vm_mul_f32, vm_mul_f64,
    vm_neg_f32, vm_neg_f64, vm_sub_f32, vm_sub_f64,
)

cnp.import_array()

include "simd.pxi"
include "threads.pxi"

cdef enum:
    OP_ADD, OP_SUB, OP_MUL, OP_NEG

# From this many elements a kernel releases the GIL: below, its loop is shorter than the
# release and the re-acquisition.
cdef enum:
    _NOGIL_MIN = 8192

# The most leaves of the pairwise tree a threaded sum_all splits into (2 ** depth).
cdef enum:
    _MAX_SUM_DEPTH = 6


# The arrays of one elementwise call, for its chunks (_run_chunks).
cdef struct _Job:
    int t
    int op
    const void* a
    const void* b   # unused by OP_NEG
    void* out


cdef void _chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    """out[lo:lo + k] := a op b of C-contiguous arrays."""
    cdef _Job* j = <_Job*>ctx
    cdef const float* af = <const float*>j.a + lo
    cdef const float* bf = <const float*>j.b + lo
    cdef float* of = <float*>j.out + lo
    cdef const double* ad = <const double*>j.a + lo
    cdef const double* bd = <const double*>j.b + lo
    cdef double* od = <double*>j.out + lo
    if j.t == cnp.NPY_FLOAT32:
        if j.op == OP_ADD:
            vm_add_f32(af, bf, of, k, 0.0)
        elif j.op == OP_SUB:
            vm_sub_f32(af, bf, of, k, 0.0)
        elif j.op == OP_MUL:
            vm_mul_f32(af, bf, of, k, 0.0)
        else:
            vm_neg_f32(af, of, k, 0.0)
    else:
        if j.op == OP_ADD:
            vm_add_f64(ad, bd, od, k, 0.0)
        elif j.op == OP_SUB:
            vm_sub_f64(ad, bd, od, k, 0.0)
        elif j.op == OP_MUL:
            vm_mul_f64(ad, bd, od, k, 0.0)
        else:
            vm_neg_f64(ad, od, k, 0.0)


cdef void _strided(floating* o, const char* pa, const char* pb, int op, int nd,
                   const cnp.npy_intp* dims, const cnp.npy_intp* sa,
                   const cnp.npy_intp* sb) noexcept nogil:
    """o (C order, nd >= 1 dims, none 0) := a op b of a and b with any strides (in bytes):
    o's elements in order, the last axis innermost."""
    cdef cnp.npy_intp idx[cnp.NPY_MAXDIMS]
    cdef Py_ssize_t n = dims[nd - 1], i, k = 0
    cdef cnp.npy_intp ia = sa[nd - 1], ib = sb[nd - 1]
    cdef const floating* u
    cdef const floating* v
    cdef int d
    for d in range(nd):
        idx[d] = 0
    while True:
        # one row, the operation picked outside the loop over its elements
        if op == OP_ADD:
            for i in range(n):
                u = <const floating*>(pa + i * ia)
                v = <const floating*>(pb + i * ib)
                o[k + i] = u[0] + v[0]
        elif op == OP_SUB:
            for i in range(n):
                u = <const floating*>(pa + i * ia)
                v = <const floating*>(pb + i * ib)
                o[k + i] = u[0] - v[0]
        elif op == OP_MUL:
            for i in range(n):
                u = <const floating*>(pa + i * ia)
                v = <const floating*>(pb + i * ib)
                o[k + i] = u[0] * v[0]
        else:
            for i in range(n):
                u = <const floating*>(pa + i * ia)
                o[k + i] = -u[0]
        k += n
        d = nd - 2
        while d >= 0:  # the next row: an odometer over the outer axes
            idx[d] += 1
            pa += sa[d]
            pb += sb[d]
            if idx[d] < dims[d]:
                break
            pa -= sa[d] * dims[d]
            pb -= sb[d] * dims[d]
            idx[d] = 0
            d -= 1
        if d < 0:
            return


cdef inline cnp.ndarray _apart(cnp.ndarray a, cnp.ndarray o):
    """`a`, or a C-ordered copy if writing `o` could change `a` before the loop reads it."""
    # Each loop reads element i of its inputs before it writes element i of out, so an input
    # that is out itself (the same memory in the same order: in place) is fine; any other
    # overlap gets a copy, which gives numpy's semantics (inputs read before out written).
    # Shape and dtype are already out's.
    if not _overlap(a, o):
        return a
    if cnp.PyArray_DATA(a) == cnp.PyArray_DATA(o) and _c_aligned(a):
        return a
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef inline cnp.ndarray _readable(cnp.ndarray a):
    """`a`, or a C-ordered copy if it is misaligned (the loops read whole elements)."""
    if cnp.PyArray_ISALIGNED(a):
        return a
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef object _run(cnp.ndarray x, cnp.ndarray y, cnp.ndarray o, int t, int op):
    """o := x op y (y ignored by OP_NEG), x and y of o's shape and dtype, apart from o or o."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(o)
    cdef _Job j
    if n == 0:
        return o
    if not (_c_aligned(x) and _c_aligned(y)):
        x = _readable(x)
        y = _readable(y)
        if not (cnp.PyArray_IS_C_CONTIGUOUS(x) and cnp.PyArray_IS_C_CONTIGUOUS(y)):
            _run_strided(x, y, o, t, op, n)
            return o
    j.t, j.op = t, op
    j.a, j.b, j.out = cnp.PyArray_DATA(x), cnp.PyArray_DATA(y), cnp.PyArray_DATA(o)
    if n < _NOGIL_MIN:
        _chunk(&j, 0, n)
    else:
        with nogil:
            _run_chunks(_chunk, &j, n, n, _CHUNK_ALIGN)
    return o


cdef void _run_strided(cnp.ndarray x, cnp.ndarray y, cnp.ndarray o, int t, int op,
                       Py_ssize_t n) noexcept:
    """o := x op y with x, y aligned, of any strides, o C-contiguous (on one thread)."""
    cdef int nd = cnp.PyArray_NDIM(o)
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(o)
    cdef cnp.npy_intp* sx = cnp.PyArray_STRIDES(x)
    cdef cnp.npy_intp* sy = cnp.PyArray_STRIDES(y)
    cdef const char* px = <const char*>cnp.PyArray_DATA(x)
    cdef const char* py = <const char*>cnp.PyArray_DATA(y)
    cdef void* po = cnp.PyArray_DATA(o)
    if n < _NOGIL_MIN:
        _strided_typed(t, po, px, py, op, nd, dims, sx, sy)
    else:
        with nogil:
            _strided_typed(t, po, px, py, op, nd, dims, sx, sy)


cdef inline void _strided_typed(int t, void* po, const char* px, const char* py, int op, int nd,
                                const cnp.npy_intp* dims, const cnp.npy_intp* sx,
                                const cnp.npy_intp* sy) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        _strided(<float*>po, px, py, op, nd, dims, sx, sy)
    else:
        _strided(<double*>po, px, py, op, nd, dims, sx, sy)


cdef object _binary(object a, object b, object out, int op):
    """Check a, b and out, then out := a op b."""
    cdef int t = _float_type("a", a, -1)
    _float_type("b", b, t)
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef cnp.ndarray y = <cnp.ndarray>b
    _same_shape("b", y, "a", x)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t)
    if out is not None:  # a fresh result overlaps nothing
        x = _apart(x, o)
        y = _apart(y, o)
    return _run(x, y, o, t, op)


# --------------------------------------------------------------------------- kernels

def add(a, b, out=None):
    """out := a + b, elementwise (one dtype, one shape: no broadcasting)."""
    return _binary(a, b, out, OP_ADD)


def subtract(a, b, out=None):
    """out := a - b, elementwise (one dtype, one shape: no broadcasting)."""
    return _binary(a, b, out, OP_SUB)


def multiply(a, b, out=None):
    """out := a * b, elementwise (one dtype, one shape: no broadcasting)."""
    return _binary(a, b, out, OP_MUL)


def negative(a, out=None):
    """out := -a, elementwise."""
    cdef int t = _float_type("a", a, -1)
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t)
    if out is not None:
        x = _apart(x, o)
    return _run(x, x, o, t, OP_NEG)


# --------------------------------------------------------------------------- sum_all
# numpy sums an aligned array that is contiguous in memory (C or F order) in one pairwise
# summation over its memory order (loops.pxd's _pairwise_sum), added to +0.0. Other layouts
# go to numpy itself: its iterator's order for them is its own business, and the point here
# is speed on the common contiguous case, never other bits. A large array's pairwise tree is
# cut at its top levels and the subtrees summed on threads, then joined in the tree's order:
# the same additions as on one thread.

cdef struct _SumJob:
    int t
    const void* a
    Py_ssize_t off[1 << _MAX_SUM_DEPTH]
    Py_ssize_t len[1 << _MAX_SUM_DEPTH]
    double part[1 << _MAX_SUM_DEPTH]   # a float32 subtree's sum is exact in double
    int leaves


cdef void _leaves(_SumJob* s, Py_ssize_t off, Py_ssize_t n, int depth) noexcept nogil:
    """The subtrees `depth` levels below the node a[off:off + n], split as _pairwise_sum does."""
    cdef Py_ssize_t n2
    if depth == 0 or n <= 128:
        s.off[s.leaves] = off
        s.len[s.leaves] = n
        s.leaves += 1
        return
    n2 = n // 2
    n2 -= n2 % 8
    _leaves(s, off, n2, depth - 1)
    _leaves(s, off + n2, n - n2, depth - 1)


cdef floating _join(const _SumJob* s, int* next, Py_ssize_t n, int depth,
                    floating typed) noexcept nogil:
    """The node's sum from its subtrees' in _leaves' order (typed: only names the dtype)."""
    cdef Py_ssize_t n2
    cdef floating left
    if depth == 0 or n <= 128:
        next[0] += 1
        return <floating>s.part[next[0] - 1]
    n2 = n // 2
    n2 -= n2 % 8
    left = _join(s, next, n2, depth - 1, typed)
    return left + _join(s, next, n - n2, depth - 1, typed)


cdef void _sum_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _SumJob* s = <_SumJob*>ctx
    cdef Py_ssize_t i
    for i in range(lo, lo + k):
        if s.t == cnp.NPY_FLOAT32:
            s.part[i] = _pairwise_sum(<const float*>s.a + s.off[i], s.len[i], R_SUM)
        else:
            s.part[i] = _pairwise_sum(<const double*>s.a + s.off[i], s.len[i], R_SUM)


cdef floating _sum(const floating* a, Py_ssize_t n) noexcept nogil:
    """_pairwise_sum(a, n), its top subtrees on threads when a is large."""
    cdef int nt = _threads_for(n)
    cdef int depth = 0
    cdef int next = 0
    cdef _SumJob s
    if nt <= 1:
        return _pairwise_sum(a, n, R_SUM)
    while (1 << depth) < nt and depth < _MAX_SUM_DEPTH:
        depth += 1
    s.t = cnp.NPY_FLOAT32 if floating is float else cnp.NPY_FLOAT64
    s.a = a
    s.leaves = 0
    _leaves(&s, 0, n, depth)
    _run_chunks(_sum_chunk, &s, s.leaves, n, 1)
    return _join(&s, &next, n, depth, a[0])


def sum_all(a):
    """The sum of every element as a 0-d array of a's dtype (np.add.reduce's bits)."""
    cdef int t = _float_type("a", a, -1)
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef cnp.ndarray o = <cnp.ndarray>cnp.PyArray_EMPTY(0, NULL, t, 0)
    if not (cnp.PyArray_ISALIGNED(x)
            and (cnp.PyArray_IS_C_CONTIGUOUS(x) or cnp.PyArray_IS_F_CONTIGUOUS(x))):
        _np.add.reduce(x, axis=None, out=o)
        return o
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* po = cnp.PyArray_DATA(o)
    if n < _NOGIL_MIN:
        _sum_typed(t, px, n, po)
    else:
        with nogil:
            _sum_typed(t, px, n, po)
    return o


cdef inline void _sum_typed(int t, const void* px, Py_ssize_t n, void* po) noexcept nogil:
    # numpy starts the reduction from add's identity, +0.0, and adds the pairwise sum to it:
    # so a sum of -0.0 alone is +0.0 (no other value changes; gcc keeps the addition)
    cdef float zf = 0
    cdef double zd = 0
    if t == cnp.NPY_FLOAT32:
        (<float*>po)[0] = zf + _sum(<const float*>px, n)
    else:
        (<double*>po)[0] = zd + _sum(<const double*>px, n)
