# The argument check of every array a run writes in place (parameters, state, outputs).

cdef inline void* _ptr(object what, object a, int typenum, tuple shape) except NULL:
    """The data of `a` after checking it is what the loop will read and write in place.

    `what` names `a` in errors: a str, or (state index or -1, parameter index), formatted
    only when there is an error (this runs for every parameter at every call)."""
    cdef cnp.ndarray arr
    if (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>a)
            and (<object>a).shape == shape
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>a, cnp.NPY_ARRAY_C_CONTIGUOUS
                                     | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE)
            and cnp.PyArray_SIZE(<cnp.ndarray>a) > 0):
        return cnp.PyArray_DATA(<cnp.ndarray>a)
    if not isinstance(what, str):
        what = (f"parameter {what[1]}" if what[0] < 0 else
                f"state {what[0]} of parameter {what[1]}")
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_ISBYTESWAPPED(arr):
        raise TypeError(f"{what} has dtype {arr.dtype}, expected "
                        f"{'float32' if typenum == cnp.NPY_FLOAT32 else 'float64'}")
    if (<object>a).shape != shape:
        raise ValueError(f"{what} has shape {(<object>a).shape}, expected {shape}")
    if cnp.PyArray_SIZE(arr) == 0:
        raise ValueError(f"{what} is empty")
    raise ValueError(f"{what} must be C-contiguous, aligned and writeable")
