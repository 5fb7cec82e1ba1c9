# The argument check of every array a run writes in place (parameters, state, outputs).

cdef inline void* _ptr(object what, object a, int typenum, tuple shape) except NULL:
    """The data of `a` after checking it is what the loop will read and write in place.

    `what` names `a` in errors: a str, or (state index or -1, parameter index), formatted
    only when there is an error (this runs for every parameter at every call)."""
    cdef cnp.ndarray arr
    if (cnp.PyArray_Check(a) and _has_dtype(<cnp.ndarray>a, typenum)
            and (<object>a).shape == shape and _in_place_ready(<cnp.ndarray>a)
            and cnp.PyArray_SIZE(<cnp.ndarray>a) > 0):
        return cnp.PyArray_DATA(<cnp.ndarray>a)
    if not isinstance(what, str):
        what = (f"parameter {what[1]}" if what[0] < 0 else
                f"state {what[0]} of parameter {what[1]}")
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if not _has_dtype(arr, typenum):
        raise TypeError(f"{what} has dtype {arr.dtype}, expected {_dtype_name(typenum)}")
    if (<object>a).shape != shape:
        raise ValueError(f"{what} has shape {(<object>a).shape}, expected {shape}")
    if cnp.PyArray_SIZE(arr) == 0:
        raise ValueError(f"{what} is empty")
    raise ValueError(f"{what} must be C-contiguous, aligned and writeable")
