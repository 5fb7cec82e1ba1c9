# Recording inside a run: the model's outputs for given rows (PredictionRecorder) and
# copies of the parameters (WeightRecorder), at the steps the recorders would see live;
# the setup of a run's recording (its arguments checked) and its end.

# When a run records: a countdown of the steps to the next snapshot, started by the check
# of its arguments (_first_snapshot) and counted by the same rule there (_snapshots), so that
# the buffers hold exactly the snapshots the run takes. (A phase added to the step index
# wrapped around for a large phase and wrote past the buffer.)

cdef inline Py_ssize_t _first_snapshot(Py_ssize_t every, Py_ssize_t phase) noexcept nogil:
    """The steps of a run up to its first snapshot, `phase` steps counted before it."""
    return every - phase % every


cdef inline Py_ssize_t _snapshots(Py_ssize_t first, Py_ssize_t every,
                                  Py_ssize_t steps) noexcept nogil:
    """The snapshots of `steps` steps: after step `first`, then after every `every`-th."""
    return 0 if first > steps else 1 + (steps - first) // every


cdef inline bint _snapshot_due(Py_ssize_t* left, Py_ssize_t every) noexcept nogil:
    """Count one step down; at 0 a snapshot is due and the count starts over from every."""
    left[0] -= 1
    if left[0] > 0:
        return False
    left[0] = every
    return True


cdef void _record(LayerDesc* L, Config* c, const floating* x) noexcept nogil:
    """The model's outputs for the recorded rows, as predict gives them, batch by batch
    through the step's buffers (free between steps) into rec_out[rec_count]."""
    if c.rec_count >= c.rec_room:  # never past the buffer (the check sized it)
        return
    cdef int nl = c.nlayers
    cdef Py_ssize_t in_dim = L[0].fan_in, out_dim = L[nl - 1].units
    cdef Py_ssize_t r0, nb, li, i
    cdef const floating* h
    cdef floating* src
    cdef floating* row
    cdef floating m  # the row's max, not needed here
    cdef floating* dest = <floating*>c.rec_out + c.rec_count * c.rec_rows * out_dim
    r0 = 0
    while r0 < c.rec_rows:
        nb = min(c.batch, c.rec_rows - r0)
        h = x + r0 * in_dim
        for li in range(nl):
            _gemm(False, False, nb, L[li].units, L[li].fan_in, 1.0, h, L[li].fan_in,
                  <floating*>L[li].kernel, L[li].units, 0.0, <floating*>L[li].pre_activation)
            if L[li].bias != NULL:
                _bias_add(<floating*>L[li].pre_activation, <floating*>L[li].bias,
                          <floating*>L[li].pre_activation, nb, L[li].units)
            if _activated(&L[li], c, li):
                _act_fwd(L[li].activation, L[li].alpha, <floating*>L[li].pre_activation,
                         <floating*>L[li].output, nb * L[li].units)
                h = <floating*>L[li].output
            else:
                h = <floating*>L[li].pre_activation
        src = <floating*>h
        row = dest + r0 * out_dim
        if c.out_act == 0:
            for i in range(nb * out_dim):
                row[i] = src[i]
        elif c.out_act == 1:
            if floating is float:
                vm_sigmoid_fwd_f32(src, row, nb * out_dim, 0)
            else:
                vm_sigmoid_fwd_f64(src, row, nb * out_dim, 0)
        else:  # softmax by rows, as the softmax kernel computes it
            for i in range(nb):
                _softmax_row(src + i * out_dim, row + i * out_dim, out_dim, &m)
        r0 += nb
    c.rec_count += 1


cdef void _record_weights(LayerDesc* L, Config* c) noexcept nogil:
    """Copies of every layer's parameters into its recording buffers, at wrec_count."""
    cdef Py_ssize_t li, size
    if c.wrec_count >= c.wrec_room:
        return
    for li in range(c.nlayers):
        size = L[li].fan_in * L[li].units
        memcpy(<char*>L[li].kernel_record + c.wrec_count * size * c.itemsize, L[li].kernel,
               size * c.itemsize)
        if L[li].bias != NULL:
            memcpy(<char*>L[li].bias_record + c.wrec_count * L[li].units * c.itemsize,
                   L[li].bias, L[li].units * c.itemsize)
    c.wrec_count += 1


cdef int _set_recording(LayerDesc* L, Config* c, int typenum, list shapes, record,
                        record_weights, Py_ssize_t first, Py_ssize_t last) except -1:
    """The run's recording: record and record_weights as Plan.run takes them, or None."""
    c.rec_every = 0
    c.rec_count = 0
    c.rec_room = 0
    c.wrec_every = 0
    c.wrec_count = 0
    c.wrec_room = 0
    if record is not None:
        _check_record(L, c, typenum, record, first, last)
    if record_weights is not None:
        _check_record_weights(L, c, typenum, shapes, record_weights, first, last)
    return 0


cdef int _check_record(LayerDesc* L, Config* c, int t, tuple record, Py_ssize_t first,
                       Py_ssize_t last) except -1:
    """Point the run at the rows to record and where their outputs go (checked)."""
    if len(record) != 4:
        raise ValueError(f"record must be (rows, every, phase, out), got {len(record)} items")
    rows, every, phase, out = record
    cdef Py_ssize_t in_dim = L[0].fan_in
    cdef Py_ssize_t out_dim = L[c.nlayers - 1].units
    _check_every("record", every, phase)
    if not (cnp.PyArray_Check(rows) and _has_dtype(<cnp.ndarray>rows, t)
            and _c_aligned(<cnp.ndarray>rows)
            and rows.ndim == 2 and rows.shape[1] == in_dim and rows.shape[0] >= 1):
        raise ValueError(f"record: rows must be a C-contiguous (m >= 1, {in_dim}) array "
                         f"of the parameters' dtype")
    cdef Py_ssize_t after = _first_snapshot(every, phase)
    cdef Py_ssize_t wanted = _snapshots(after, every, last - first)
    if wanted:
        _ptr("record: out", out, t, (wanted, rows.shape[0], out_dim))
    c.rec_x = cnp.PyArray_DATA(<cnp.ndarray>rows)
    c.rec_out = cnp.PyArray_DATA(<cnp.ndarray>out) if wanted else NULL
    c.rec_rows = rows.shape[0]
    c.rec_every = every if wanted else 0
    c.rec_next = after
    c.rec_room = wanted
    return 0


cdef int _check_record_weights(LayerDesc* L, Config* c, int t, list shapes, tuple spec,
                               Py_ssize_t first, Py_ssize_t last) except -1:
    """Point each layer at where copies of its parameters go (checked)."""
    if len(spec) != 3:
        raise ValueError(f"record_weights must be (every, phase, outs), got {len(spec)} items")
    every, phase, outs = spec
    cdef Py_ssize_t li
    _check_every("record_weights", every, phase)
    if not isinstance(outs, list) or len(outs) != 2 * c.nlayers:
        raise ValueError(f"record_weights: outs must be a list of {2 * c.nlayers} "
                         f"arrays (None for a missing bias)")
    cdef Py_ssize_t after = _first_snapshot(every, phase)
    cdef Py_ssize_t wanted = _snapshots(after, every, last - first)
    if not wanted:
        return 0
    # All checked before any pointer is kept: a bad array leaves nothing half set.
    ptrs = []
    for li in range(c.nlayers):
        shape_w, shape_b = shapes[li]
        ptrs.append(<Py_ssize_t>_ptr(f"record_weights: outs[{2 * li}]", outs[2 * li], t,
                                     (wanted, *shape_w)))
        if shape_b is None:
            if outs[2 * li + 1] is not None:
                raise ValueError(f"record_weights: outs[{2 * li + 1}] must be None (no bias)")
            ptrs.append(0)
        else:
            ptrs.append(<Py_ssize_t>_ptr(f"record_weights: outs[{2 * li + 1}]",
                                         outs[2 * li + 1], t, (wanted, *shape_b)))
    for li in range(c.nlayers):
        L[li].kernel_record = <void*><Py_ssize_t>ptrs[2 * li]
        L[li].bias_record = <void*><Py_ssize_t>ptrs[2 * li + 1]
    c.wrec_every = every
    c.wrec_next = after
    c.wrec_room = wanted
    return 0


cdef void _end_recording(LayerDesc* L, Config* c) noexcept:
    """Forget the run's recording buffers."""
    cdef Py_ssize_t li
    c.wrec_every = 0
    c.wrec_room = 0
    for li in range(c.nlayers):
        L[li].kernel_record = NULL
        L[li].bias_record = NULL
    c.rec_every = 0
    c.rec_room = 0
    c.rec_x = NULL
    c.rec_out = NULL
