# The argument checks of the kernel modules (activations, losses, matmul, optim; cimported as
# `checks`), run by every wrapper before it releases the GIL. Everything here is `cdef
# inline`, so each module compiles its own copy and nothing is imported at run time. The
# error messages are the reference's (microgradnet/_reference.py), so both backends fail the
# same way; the predicates (_has_dtype, _c_aligned, _in_place_ready) let a caller with
# messages of its own (the captured step) test the same conditions.

cimport numpy as cnp


cdef inline str _dtype_name(int typenum):
    return "float32" if typenum == cnp.NPY_FLOAT32 else "float64"


cdef inline bint _has_dtype(cnp.ndarray a, int typenum) noexcept:
    """Whether `a` holds `typenum` values in native byte order (what the loops read)."""
    return cnp.PyArray_TYPE(a) == typenum and not cnp.PyArray_ISBYTESWAPPED(a)


cdef inline bint _c_aligned(cnp.ndarray a) noexcept:
    """Whether the loops may read `a` as it is: C-contiguous and aligned."""
    # Aligned as well: the vectorized loops gcc emits may assume element alignment.
    return cnp.PyArray_CHKFLAGS(a, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED)


cdef inline bint _in_place_ready(cnp.ndarray a) noexcept:
    """Whether a loop may write `a` in place: C-contiguous, aligned and writeable."""
    return cnp.PyArray_CHKFLAGS(
        a, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE)


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
    if _c_aligned(a):
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


cdef inline int _writable(str name, cnp.ndarray a, str why) except -1:
    """Check that a loop may write `a` in place; `why` ends each message (may be empty)."""
    if _in_place_ready(a):
        return 0
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name} must be C-contiguous{why}")
    if not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{name} must be aligned{why}")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} is read-only{why}")
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
    if not _has_dtype(o, typenum):
        raise TypeError(f"{name} has dtype {o.dtype}, expected {_dtype_name(typenum)}")
    cdef int d
    cdef bint same = cnp.PyArray_NDIM(o) == nd
    if same:
        for d in range(nd):
            same = same and cnp.PyArray_DIMS(o)[d] == dims[d]
    if not same:
        raise ValueError(f"{name} has shape {(<object>o).shape}, expected {_shape(nd, dims)}")
    _writable(name, o, "")
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
