"""Loss kernels: softmax cross-entropy (dense and sparse targets), sigmoid binary
cross-entropy on logits, and mean squared error. Per-sample losses, so that callers can
weight and reduce them. Contract: csrc/README.md; oracle: microgradnet/_reference.py.
"""

cimport numpy as cnp
from cython.parallel cimport prange

from checks cimport _c_order, _float_array, _out, _same_shape, _unalias
from vmath cimport (
    _THREAD_THRESHOLD, _default_threads, vm_bce_bwd_f32, vm_bce_bwd_f64, vm_bce_fwd_f32,
    vm_bce_fwd_f64,
)
from loops cimport (
    _mse_bwd, _softmax_xent_bwd, _softmax_xent_fwd, _sparse_xent_bwd, _sparse_xent_fwd,
    _sum_sq_diff, label_t,
)

cnp.import_array()

include "simd.pxi"

# --------------------------------------------------------------------------- threads
# The elementwise losses (sigmoid binary cross-entropy, mse's gradient) split large arrays
# like the activations do; the row-wise softmax losses stay on one thread.

include "threads.pxi"


# The arrays of an elementwise loss, for its chunks: sigmoid BCE's forward (logits a,
# targets b), its backward (dloss a, logits b, targets c) or mse's gradient (pred a,
# targets b, scale).
cdef struct _LossArrays:
    int t
    const void* a
    const void* b
    const void* c
    void* out
    double scale


cdef void _bce_fwd_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _LossArrays* c = <_LossArrays*>ctx
    if c.t == cnp.NPY_FLOAT32:
        vm_bce_fwd_f32(<const float*>c.a + lo, <const float*>c.b + lo, <float*>c.out + lo, k,
                       0.0)
    else:
        vm_bce_fwd_f64(<const double*>c.a + lo, <const double*>c.b + lo, <double*>c.out + lo,
                       k, 0.0)


cdef void _bce_bwd_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _LossArrays* c = <_LossArrays*>ctx
    if c.t == cnp.NPY_FLOAT32:
        vm_bce_bwd_f32(<const float*>c.a + lo, <const float*>c.b + lo, <const float*>c.c + lo,
                       <float*>c.out + lo, k)
    else:
        vm_bce_bwd_f64(<const double*>c.a + lo, <const double*>c.b + lo,
                       <const double*>c.c + lo, <double*>c.out + lo, k)


cdef void _mse_bwd_chunk(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil:
    cdef _LossArrays* c = <_LossArrays*>ctx
    if c.t == cnp.NPY_FLOAT32:
        _mse_bwd(<const float*>c.a + lo, <const float*>c.b + lo, <float*>c.out + lo, k,
                 c.scale)
    else:
        _mse_bwd(<const double*>c.a + lo, <const double*>c.b + lo, <double*>c.out + lo, k,
                 c.scale)

# --------------------------------------------------------------------------- checks

cdef cnp.ndarray _logits_2d(str name, object a, int typenum):
    """Check a 2-D (samples, classes) float array."""
    cdef cnp.ndarray arr = _float_array(name, a, typenum)
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name} must be 2-D (samples, classes), got shape {a.shape}")
    return arr


cdef cnp.ndarray _dloss(object dloss, int typenum, Py_ssize_t n):
    """Check the per-sample upstream gradient, shape (n,)."""
    cdef cnp.ndarray d = _float_array("dloss", dloss, typenum)
    if cnp.PyArray_NDIM(d) != 1 or cnp.PyArray_DIMS(d)[0] != n:
        raise ValueError(f"dloss has shape {dloss.shape}, expected ({n},)")
    return d


cdef Py_ssize_t _first_bad(const label_t* labels, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """Index of the first label outside [0, c), or -1."""
    cdef Py_ssize_t i
    for i in range(n):
        if labels[i] < 0 or labels[i] >= c:
            return i
    return -1


cdef cnp.ndarray _labels(object labels, Py_ssize_t n, Py_ssize_t c):
    """Check integer labels (n,) in [0, c); return them C-contiguous as int32 or int64."""
    if not cnp.PyArray_Check(labels) or not cnp.PyArray_ISINTEGER(<cnp.ndarray>labels):
        raise TypeError(
            "labels must be an integer numpy array, got "
            + (str(labels.dtype) if cnp.PyArray_Check(labels) else type(labels).__name__)
        )
    cdef cnp.ndarray lab = <cnp.ndarray>labels
    if cnp.PyArray_NDIM(lab) != 1 or cnp.PyArray_DIMS(lab)[0] != n:
        raise ValueError(f"labels has shape {labels.shape}, expected ({n},)")
    cdef Py_ssize_t bad = -1
    cdef cnp.npy_intp size = cnp.PyArray_ITEMSIZE(lab)
    if (cnp.PyArray_ISSIGNED(lab) and (size == 4 or size == 8)
            and not cnp.PyArray_ISBYTESWAPPED(lab)):
        lab = _c_order(lab)
        if size == 4:
            bad = _first_bad(<const cnp.int32_t*>cnp.PyArray_DATA(lab), n, c)
        else:
            bad = _first_bad(<const cnp.int64_t*>cnp.PyArray_DATA(lab), n, c)
    else:
        # Rare integer types: compare in their own type (a uint64 need not fit int64).
        mask = (lab < 0) | (lab >= c)
        if mask.any():
            bad = mask.argmax()
        else:
            lab = <cnp.ndarray>cnp.PyArray_Cast(lab, cnp.NPY_INT64)
    if bad >= 0:
        raise ValueError(f"label {labels[bad]} at index {bad} is out of range [0, {c})")
    return lab


# --------------------------------------------------------------------------- loops
# One row (sample) at a time: max, exp and sum, then normalize and reduce, all while the
# row is in cache. Sums accumulate in double. The elementwise sigmoid binary cross-entropy
# loops (vm_bce_fwd/bwd_f32/f64) are in vmath_loops.h.

# --------------------------------------------------------------------------- kernels

def softmax_cross_entropy_forward(logits, target, probs_out=None):
    """loss (n,) = -sum(target * log_softmax(logits), 1) and probs = softmax(logits, 1)."""
    cdef cnp.ndarray z = _logits_2d("logits", logits, -1)
    cdef int t = cnp.PyArray_TYPE(z)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "logits", z)
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(z)
    cdef cnp.ndarray p = _out("probs_out", probs_out, 2, dims, t)
    cdef cnp.ndarray loss = <cnp.ndarray>cnp.PyArray_EMPTY(1, dims, t, 0)
    # The loop writes probs before it reads logits and target again: no aliasing at all.
    z = _unalias(z, p, False)
    ta = _unalias(ta, p, False)
    cdef void* pz = cnp.PyArray_DATA(z)
    cdef void* pt = cnp.PyArray_DATA(ta)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pl = cnp.PyArray_DATA(loss)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _softmax_xent_fwd(<const float*>pz, <const float*>pt, <float*>pp, <float*>pl,
                              dims[0], dims[1])
        else:
            _softmax_xent_fwd(<const double*>pz, <const double*>pt, <double*>pp, <double*>pl,
                              dims[0], dims[1])
    return loss, p


def softmax_cross_entropy_backward(dloss, probs, target, out=None):
    """dlogits = dloss[:, None] * (probs * target.sum(1, keepdims=True) - target)."""
    cdef cnp.ndarray pa = _logits_2d("probs", probs, -1)
    cdef int t = cnp.PyArray_TYPE(pa)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "probs", pa)
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(pa)
    cdef cnp.ndarray da = _dloss(dloss, t, dims[0])
    cdef cnp.ndarray o = _out("out", out, 2, dims, t)
    pa = _unalias(pa, o, True)
    ta = _unalias(ta, o, True)
    da = _unalias(da, o, False)
    cdef void* pd = cnp.PyArray_DATA(da)
    cdef void* pp = cnp.PyArray_DATA(pa)
    cdef void* pt = cnp.PyArray_DATA(ta)
    cdef void* po = cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _softmax_xent_bwd(<const float*>pd, <const float*>pp, <const float*>pt,
                              <float*>po, dims[0], dims[1])
        else:
            _softmax_xent_bwd(<const double*>pd, <const double*>pp, <const double*>pt,
                              <double*>po, dims[0], dims[1])
    return o


def sparse_softmax_cross_entropy_forward(logits, labels, probs_out=None):
    """loss_i = -log_softmax(logits)[i, labels[i]] and probs = softmax(logits, 1)."""
    cdef cnp.ndarray z = _logits_2d("logits", logits, -1)
    cdef int t = cnp.PyArray_TYPE(z)
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(z)
    cdef cnp.ndarray lab = _labels(labels, dims[0], dims[1])
    cdef cnp.ndarray p = _out("probs_out", probs_out, 2, dims, t)
    cdef cnp.ndarray loss = <cnp.ndarray>cnp.PyArray_EMPTY(1, dims, t, 0)
    z = _unalias(z, p, True)
    lab = _unalias(lab, p, False)
    cdef bint wide = cnp.PyArray_ITEMSIZE(lab) == 8
    cdef void* pz = cnp.PyArray_DATA(z)
    cdef void* pk = cnp.PyArray_DATA(lab)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pl = cnp.PyArray_DATA(loss)
    with nogil:
        if t == cnp.NPY_FLOAT32 and wide:
            _sparse_xent_fwd(<const float*>pz, <const cnp.int64_t*>pk, <float*>pp, <float*>pl,
                             dims[0], dims[1])
        elif t == cnp.NPY_FLOAT32:
            _sparse_xent_fwd(<const float*>pz, <const cnp.int32_t*>pk, <float*>pp, <float*>pl,
                             dims[0], dims[1])
        elif wide:
            _sparse_xent_fwd(<const double*>pz, <const cnp.int64_t*>pk, <double*>pp,
                             <double*>pl, dims[0], dims[1])
        else:
            _sparse_xent_fwd(<const double*>pz, <const cnp.int32_t*>pk, <double*>pp,
                             <double*>pl, dims[0], dims[1])
    return loss, p


def sparse_softmax_cross_entropy_backward(dloss, probs, labels, out=None):
    """dlogits = dloss[:, None] * (probs - onehot(labels))."""
    cdef cnp.ndarray pa = _logits_2d("probs", probs, -1)
    cdef int t = cnp.PyArray_TYPE(pa)
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(pa)
    cdef cnp.ndarray lab = _labels(labels, dims[0], dims[1])
    cdef cnp.ndarray da = _dloss(dloss, t, dims[0])
    cdef cnp.ndarray o = _out("out", out, 2, dims, t)
    pa = _unalias(pa, o, True)
    lab = _unalias(lab, o, False)
    da = _unalias(da, o, False)
    cdef bint wide = cnp.PyArray_ITEMSIZE(lab) == 8
    cdef void* pd = cnp.PyArray_DATA(da)
    cdef void* pp = cnp.PyArray_DATA(pa)
    cdef void* pk = cnp.PyArray_DATA(lab)
    cdef void* po = cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32 and wide:
            _sparse_xent_bwd(<const float*>pd, <const float*>pp, <const cnp.int64_t*>pk,
                             <float*>po, dims[0], dims[1])
        elif t == cnp.NPY_FLOAT32:
            _sparse_xent_bwd(<const float*>pd, <const float*>pp, <const cnp.int32_t*>pk,
                             <float*>po, dims[0], dims[1])
        elif wide:
            _sparse_xent_bwd(<const double*>pd, <const double*>pp, <const cnp.int64_t*>pk,
                             <double*>po, dims[0], dims[1])
        else:
            _sparse_xent_bwd(<const double*>pd, <const double*>pp, <const cnp.int32_t*>pk,
                             <double*>po, dims[0], dims[1])
    return o


def sigmoid_binary_cross_entropy_forward(logits, target, out=None):
    """loss = max(z, 0) - z * t + log1p(exp(-|z|)) elementwise, z the logits."""
    cdef cnp.ndarray z = _float_array("logits", logits, -1)
    cdef int t = cnp.PyArray_TYPE(z)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "logits", z)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(z), cnp.PyArray_DIMS(z), t)
    z = _unalias(z, o, True)
    ta = _unalias(ta, o, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(z)
    cdef _LossArrays c
    c.t, c.a, c.b, c.out = t, cnp.PyArray_DATA(z), cnp.PyArray_DATA(ta), cnp.PyArray_DATA(o)
    with nogil:
        _run_chunks(_bce_fwd_chunk, &c, n, n, _CHUNK_ALIGN)
    return o


def sigmoid_binary_cross_entropy_backward(dloss, logits, target, out=None):
    """dlogits = dloss * (sigmoid(z) - t) elementwise."""
    cdef cnp.ndarray z = _float_array("logits", logits, -1)
    cdef int t = cnp.PyArray_TYPE(z)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "logits", z)
    cdef cnp.ndarray da = _float_array("dloss", dloss, t)
    _same_shape("dloss", da, "logits", z)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(z), cnp.PyArray_DIMS(z), t)
    z = _unalias(z, o, True)
    ta = _unalias(ta, o, True)
    da = _unalias(da, o, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(z)
    cdef _LossArrays c
    c.t, c.a, c.b, c.c = t, cnp.PyArray_DATA(da), cnp.PyArray_DATA(z), cnp.PyArray_DATA(ta)
    c.out, c.scale = cnp.PyArray_DATA(o), 0.0
    with nogil:
        _run_chunks(_bce_bwd_chunk, &c, n, n, _CHUNK_ALIGN)
    return o


def mse_forward(pred, target):
    """mean((pred - target)^2) as a Python float (0.0 when empty)."""
    cdef cnp.ndarray pa = _float_array("pred", pred, -1)
    cdef int t = cnp.PyArray_TYPE(pa)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "pred", pa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(pa)
    if n == 0:
        return 0.0
    cdef void* pp = cnp.PyArray_DATA(pa)
    cdef void* pt = cnp.PyArray_DATA(ta)
    cdef double s
    with nogil:
        if t == cnp.NPY_FLOAT32:
            s = _sum_sq_diff(<const float*>pp, <const float*>pt, n)
        else:
            s = _sum_sq_diff(<const double*>pp, <const double*>pt, n)
    return s / n


def mse_backward(double dloss, pred, target, out=None):
    """dpred = dloss * 2 * (pred - target) / size."""
    cdef cnp.ndarray pa = _float_array("pred", pred, -1)
    cdef int t = cnp.PyArray_TYPE(pa)
    cdef cnp.ndarray ta = _float_array("target", target, t)
    _same_shape("target", ta, "pred", pa)
    cdef cnp.ndarray o = _out("out", out, cnp.PyArray_NDIM(pa), cnp.PyArray_DIMS(pa), t)
    pa = _unalias(pa, o, True)
    ta = _unalias(ta, o, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(pa)
    if n == 0:
        return o
    cdef _LossArrays c
    c.t, c.a, c.b = t, cnp.PyArray_DATA(pa), cnp.PyArray_DATA(ta)
    c.out, c.scale = cnp.PyArray_DATA(o), 2.0 * dloss / n
    with nogil:
        _run_chunks(_mse_bwd_chunk, &c, n, n, _CHUNK_ALIGN)
    return o
