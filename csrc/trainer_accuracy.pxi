# Accuracy inside the run: each step counts the samples of its batch that its output gets
# right, for the accuracies whose value per sample is 0 or 1 (metrics.py: binary_accuracy on
# one output column, categorical_accuracy, sparse_categorical_accuracy). A count divided by
# the batch's size is numpy's mean of those 0s and 1s, to the bit, and counts add exactly.


cdef inline Py_ssize_t _argmax(const floating* a, Py_ssize_t n) noexcept nogil:
    """np.argmax of a row: the first maximum, or the first NaN (numpy's NaN is the max)."""
    cdef Py_ssize_t j, best = 0
    cdef floating m = a[0]
    if m != m:
        return 0
    for j in range(1, n):
        if a[j] > m:
            best = j
            m = a[j]
        elif a[j] != a[j]:
            return j
    return best


cdef inline void _count_correct(const Config* c, const floating* out, const floating* yt,
                                const cnp.int64_t* lab, Py_ssize_t nb, Py_ssize_t out_dim,
                                cnp.int64_t* counts) noexcept nogil:
    """For each counted accuracy, the rows of the batch's output `out` (nb, out_dim) that
    match their target row of yt or label in lab, into counts[j]."""
    cdef Py_ssize_t i, right
    cdef int j
    for j in range(c.n_counted):
        right = 0
        if c.counted[j] == ACC_BINARY:  # out_dim 1: (pred > 0.5) == (true > 0.5)
            if lab != NULL:
                for i in range(nb):
                    right += (out[i] > 0.5) == (lab[i] > 0)
            else:
                for i in range(nb):
                    right += (out[i] > 0.5) == (yt[i] > 0.5)
        elif c.counted[j] == ACC_CATEGORICAL:
            for i in range(nb):
                right += (_argmax(out + i * out_dim, out_dim)
                          == _argmax(yt + i * out_dim, out_dim))
        else:
            for i in range(nb):
                right += _argmax(out + i * out_dim, out_dim) == lab[i]
        counts[j] = right


cdef int _set_accuracy(Config* c, Py_ssize_t out_dim, object accuracy, Py_ssize_t first,
                       Py_ssize_t last) except -1:
    """Check a run's accuracy argument, (kinds, counts) or None, and point the run at it."""
    cdef Py_ssize_t j
    c.n_counted = 0
    c.counts = NULL
    if accuracy is None:
        return 0
    try:
        kinds, counts = accuracy
    except (TypeError, ValueError):
        raise ValueError("accuracy must be (kinds, counts) or None") from None
    if not isinstance(kinds, tuple) or not 1 <= len(kinds) <= MAX_COUNTED:
        raise ValueError(f"accuracy: kinds must be a tuple of 1 to {MAX_COUNTED} of "
                         f"{', '.join(ACCURACIES)}, got {kinds!r}")
    for kind in kinds:
        if kind not in ACCURACIES:
            raise ValueError(f"accuracy: unknown kind {kind!r}; known: {', '.join(ACCURACIES)}")
        if kind == "binary" and out_dim != 1:
            raise ValueError(f"accuracy: binary counts one output column, the plan has "
                             f"{out_dim}")
        if (kind == "sparse_categorical") != (c.loss == L_SPARSE) and kind != "binary":
            raise ValueError(f"accuracy: {kind} needs "
                             f"{'' if kind == 'sparse_categorical' else 'no '}"
                             f"integer labels (sparse_softmax_xent)")
    shape = (last - first, len(kinds))
    if not (cnp.PyArray_Check(counts) and counts.dtype == cnp.dtype("int64")
            and counts.shape == shape and counts.flags.c_contiguous
            and counts.flags.writeable and counts.flags.aligned):
        raise TypeError(f"accuracy: counts must be a writeable C-contiguous int64 array of "
                        f"shape {shape}")
    for j in range(len(kinds)):
        c.counted[j] = ACCURACIES.index(kinds[j])
    c.n_counted = len(kinds)
    c.counts = <cnp.int64_t*>cnp.PyArray_DATA(counts) if last > first else NULL
    return 0
