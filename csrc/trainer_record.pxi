# Recording inside a run: the model's outputs for given rows (PredictionRecorder) and
# copies of the parameters (WeightRecorder), at the steps the recorders would see live.

cdef void _record(LayerDesc* L, Config* c, const floating* x) noexcept nogil:
    """The model's outputs for the recorded rows, as predict gives them, batch by batch
    through the step's buffers (free between steps) into rec_out[rec_count]."""
    cdef int nl = c.nlayers
    cdef Py_ssize_t in_dim = L[0].fan_in, out_dim = L[nl - 1].units
    cdef Py_ssize_t r0, nb, li, i, j
    cdef const floating* h
    cdef floating* src
    cdef floating* row
    cdef floating m, s
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
                m = _row_max(src + i * out_dim, out_dim)
                s = _row_exp(src + i * out_dim, m, row + i * out_dim, out_dim)
                for j in range(out_dim):
                    row[i * out_dim + j] = row[i * out_dim + j] / s
        r0 += nb
    c.rec_count += 1


cdef void _record_weights(LayerDesc* L, Config* c) noexcept nogil:
    """Copies of every layer's parameters into its recording buffers, at wrec_count."""
    cdef Py_ssize_t li, size
    for li in range(c.nlayers):
        size = L[li].fan_in * L[li].units
        memcpy(<char*>L[li].kernel_record + c.wrec_count * size * c.itemsize, L[li].kernel,
               size * c.itemsize)
        if L[li].bias != NULL:
            memcpy(<char*>L[li].bias_record + c.wrec_count * L[li].units * c.itemsize,
                   L[li].bias, L[li].units * c.itemsize)
    c.wrec_count += 1
