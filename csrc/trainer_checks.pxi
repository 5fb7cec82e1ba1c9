# The argument check of every array a run writes in place (parameters, state, outputs).

cdef inline void* _ptr(object what, object a, int typenum, tuple shape,
                       bint writeable=True) except NULL:
    """The data of `a` after checking it is what the loop will read and write in place (or
    only read, with writeable=False: the training data may be np.load(mmap_mode="r") or
    np.frombuffer, and needs no copy).

    `what` names `a` in errors: a str, or (state index or -1, parameter index), formatted
    only when there is an error (this runs for every parameter at every call)."""
    cdef cnp.ndarray arr
    if (cnp.PyArray_Check(a) and _has_dtype(<cnp.ndarray>a, typenum)
            and (<object>a).shape == shape
            and (_in_place_ready(<cnp.ndarray>a) if writeable else _c_aligned(<cnp.ndarray>a))
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
    if not writeable:
        raise ValueError(f"{what} must be C-contiguous and aligned")
    raise ValueError(f"{what} must be C-contiguous, aligned and writeable")


cdef int _check_every(str what, object every, object phase) except -1:
    """every >= 1 and phase >= 0, both ints the run can count with."""
    if not (isinstance(every, int) and isinstance(phase, int)
            and 1 <= every <= PY_SSIZE_T_MAX and 0 <= phase <= PY_SSIZE_T_MAX):
        raise ValueError(f"{what}: every must be an int in [1, {PY_SSIZE_T_MAX}] and phase "
                         f"one in [0, {PY_SSIZE_T_MAX}], got {every!r}, {phase!r}")
    return 0


# --------------------------------------------------------------------------- apart
# What a run writes (parameters, their state, the losses, the recordings, the plan's own
# buffers) must not overlap anything else it reads or writes: a parameter that is also
# another's state, or data inside a gradient buffer, would train on values changing under
# the step. Checked on the extents of the raw pointers the run will use, sorted: one pass,
# no Python objects per array (this runs at every call, per batch under metrics).

cdef struct _Extent:
    const char* lo
    const char* hi
    int what        # _EXTENT_NAMES' index; from _FIRST_WRITTEN on, written by the run
    Py_ssize_t k    # the parameter (or state, outs) index where `what` has one
    Py_ssize_t net  # the net of a BatchedPlan's run it belongs to (-1: the data, shared)


cdef enum:
    _FIRST_WRITTEN = 6

_EXTENT_NAMES = ("x", "y", "labels", "orders", "record: rows", "lrs", "losses", "parameter {}",
                 "state {} of parameter {}", "record: out", "record_weights: outs[{}]",
                 "a buffer of the plan (gradients())", "accuracy: counts")


cdef inline void _extent(_Extent* e, Py_ssize_t* n, const void* p, Py_ssize_t nbytes, int what,
                         Py_ssize_t k, Py_ssize_t net=-1) noexcept:
    if p == NULL or nbytes <= 0:
        return
    e[n[0]].lo = <const char*>p
    e[n[0]].hi = <const char*>p + nbytes
    e[n[0]].what = what
    e[n[0]].k = k
    e[n[0]].net = net
    n[0] += 1


cdef int _extent_before(const void* a, const void* b) noexcept nogil:
    cdef const char* x = (<const _Extent*>a).lo
    cdef const char* y = (<const _Extent*>b).lo
    return -1 if x < y else (1 if x > y else 0)


cdef str _extent_name(const _Extent* e):
    name = _EXTENT_NAMES[e.what]
    if e.what == 8:
        name = name.format(e.k % 3, e.k // 3)
    else:
        name = name.format(e.k)
    return name if e.net < 0 else f"net {e.net}: {name}"


cdef inline Py_ssize_t _extent_room(Config* c, list buffers) noexcept:
    """The most extents _data_extents and _net_extents add for one net."""
    return 9 + 10 * c.nlayers + len(buffers)


cdef void _data_extents(_Extent* e, Py_ssize_t* n, LayerDesc* L, Config* c,
                        RunData* data) noexcept:
    """The run's data: read by every net of a batched run."""
    cdef Py_ssize_t item = c.itemsize, in_dim = L[0].fan_in, out_dim = L[c.nlayers - 1].units
    _extent(e, n, data.x, data.n * in_dim * item, 0, 0)
    _extent(e, n, data.y, data.n * out_dim * item, 1, 0)
    _extent(e, n, data.labels, data.n * 8, 2, 0)
    _extent(e, n, data.orders, data.orders_bytes, 3, 0)


cdef int _net_extents(_Extent* e, Py_ssize_t* n, LayerDesc* L, Config* c, list buffers,
                      object lrs, double[::1] losses, Py_ssize_t steps,
                      Py_ssize_t net) except -1:
    """What one net's run reads (recorded rows, rates) and writes."""
    cdef Py_ssize_t nl = c.nlayers, li, i
    cdef Py_ssize_t item = c.itemsize, in_dim = L[0].fan_in, out_dim = L[nl - 1].units
    cdef Py_ssize_t size
    cdef cnp.ndarray a
    _extent(e, n, c.rec_x, c.rec_rows * in_dim * item if c.rec_room else 0, 4, 0, net)
    if lrs is not None:
        _extent(e, n, cnp.PyArray_DATA(<cnp.ndarray>lrs), steps * 8, 5, 0, net)
    _extent(e, n, &losses[0], steps * 8, 6, 0, net)
    _extent(e, n, c.counts, steps * c.n_counted * 8, 12, 0, net)
    for li in range(nl):
        size = L[li].fan_in * L[li].units
        _extent(e, n, L[li].kernel, size * item, 7, 2 * li, net)
        _extent(e, n, L[li].bias, L[li].units * item, 7, 2 * li + 1, net)
        for i in range(3):
            _extent(e, n, L[li].kernel_state[i], size * item, 8, 3 * (2 * li) + i, net)
            _extent(e, n, L[li].bias_state[i], L[li].units * item, 8,
                    3 * (2 * li + 1) + i, net)
        _extent(e, n, L[li].kernel_record, c.wrec_room * size * item, 10, 2 * li, net)
        _extent(e, n, L[li].bias_record, c.wrec_room * L[li].units * item, 10,
                2 * li + 1, net)
    _extent(e, n, c.rec_out, c.rec_room * c.rec_rows * out_dim * item, 9, 0, net)
    for b in buffers:
        a = <cnp.ndarray>b
        _extent(e, n, cnp.PyArray_DATA(a), cnp.PyArray_NBYTES(a), 11, 0, net)
    return 0


cdef int _raise_on_clash(_Extent* e, Py_ssize_t n) except -1:
    """Raise ValueError if an extent that is written overlaps any other (sorts e)."""
    cdef const _Extent* any_end = NULL   # of the extents so far: the one reaching furthest,
    cdef const _Extent* written_end = NULL  # and the written one reaching furthest
    cdef const _Extent* clash = NULL
    cdef Py_ssize_t i
    qsort(e, n, sizeof(_Extent), _extent_before)
    # An extent clashes with an earlier-starting one iff it starts before the furthest
    # end so far of those it may not share memory with (all of them when it is written,
    # the written ones when it is read).
    for i in range(n):
        if e[i].what >= _FIRST_WRITTEN and any_end != NULL and e[i].lo < any_end.hi:
            clash = any_end
        elif written_end != NULL and e[i].lo < written_end.hi:
            clash = written_end
        if clash != NULL:
            raise ValueError(f"{_extent_name(&e[i])} overlaps {_extent_name(clash)}: "
                             f"what a run writes must have memory of its own")
        if any_end == NULL or e[i].hi > any_end.hi:
            any_end = &e[i]
        if e[i].what >= _FIRST_WRITTEN and (written_end == NULL
                                            or e[i].hi > written_end.hi):
            written_end = &e[i]
    return 0


cdef int _check_apart(LayerDesc* L, Config* c, int typenum, list buffers, RunData* data,
                      object lrs, double[::1] losses, Py_ssize_t steps) except -1:
    """Raise ValueError if an array the run writes overlaps any other array of the run."""
    cdef Py_ssize_t n = 0
    cdef _Extent* e = <_Extent*>malloc(_extent_room(c, buffers) * sizeof(_Extent))
    if e == NULL:
        raise MemoryError()
    try:
        _data_extents(e, &n, L, c, data)
        _net_extents(e, &n, L, c, buffers, lrs, losses, steps, -1)
        _raise_on_clash(e, n)
    finally:
        free(e)
    return 0
