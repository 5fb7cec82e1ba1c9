# One training step of the plan, in its four parts: the batch (gathered in the epoch's
# order), the forward, the loss and its gradient, the backward with each layer's update.
# Each part is an inline function of the step's loop: the same C as one function.

cdef struct Batch:
    const void* x       # the batch's inputs, targets or labels: rows of the data in place,
    const void* y       # or the plan's gathered copies
    const cnp.int64_t* labels


cdef inline void _dropout_forward(bitgen_t* g, double rate, floating scale, const floating* a,
                                  floating* mask, floating* d, Py_ssize_t n) noexcept nogil:
    """Mirrors layers.Dropout.mask: keep where rng.random() >= rate (one double per value,
    in order, from the layer's generator), d = a * (kept * scale)."""
    cdef Py_ssize_t i
    cdef floating m
    for i in range(n):
        m = scale if g.next_double(g.state) >= rate else 0
        mask[i] = m
        d[i] = a[i] * m


cdef inline void _copy_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    # A loop, not memcpy: rows of one to a few values are the common case here.
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]


cdef inline void _mul_inplace(floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = a[i] * b[i]


cdef inline void _fill(floating* a, floating v, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = v


cdef inline floating _mean(const floating* a, Py_ssize_t n) noexcept nogil:
    """np.mean(a[:n]), as the eager loss reduces its values (functional.mean): numpy's
    pairwise sum in the dtype of a, then one division in that dtype."""
    return _pairwise_sum(a, n, R_SUM) / <floating>n


cdef inline Batch _gather_batch(Config* c, const floating* x, const floating* y,
                                const cnp.int64_t* labels, const cnp.int64_t* orders,
                                Py_ssize_t e, Py_ssize_t k, Py_ssize_t start, Py_ssize_t nb,
                                Py_ssize_t in_dim, Py_ssize_t out_dim) noexcept nogil:
    """Batch k of epoch e: the epoch's order drawn at its first batch (shuffling runs),
    the batch's rows copied in that order, or taken in place when the rows are in order."""
    cdef Batch batch
    cdef Py_ssize_t i
    cdef const cnp.int64_t* idx
    cdef floating* xb = <floating*>c.batch_x
    cdef floating* yb = <floating*>c.batch_y
    if c.rng != NULL and k == 0:
        if c.prefetch != NULL:
            mg_prefetch_take(c.prefetch, c.prefetch_next, c.order)
            c.prefetch_next += 1
        else:
            _permutation(c.rng, c.order, c.n)
    batch.labels = NULL
    if c.rng != NULL or orders != NULL:
        idx = (<const cnp.int64_t*>c.order if c.rng != NULL else orders + e * c.n) + start
        for i in range(nb):
            _copy_row(xb + i * in_dim, x + idx[i] * in_dim, in_dim)
        if labels != NULL:
            for i in range(nb):
                c.batch_labels[i] = labels[idx[i]]
            batch.labels = c.batch_labels
        else:
            for i in range(nb):
                _copy_row(yb + i * out_dim, y + idx[i] * out_dim, out_dim)
        batch.x = xb
        batch.y = yb
    else:
        batch.x = x + start * in_dim
        batch.y = y + start * out_dim if y != NULL else NULL
        batch.labels = labels + start if labels != NULL else NULL
    return batch


cdef inline void _forward(LayerDesc* L, const Config* c, const floating* h,
                          Py_ssize_t nb) noexcept nogil:
    """z = h W + b, a = f(z), then the Dropout; a fused loss takes the top layer's logits."""
    cdef Py_ssize_t li, fan_in, units
    for li in range(c.nlayers):
        fan_in = L[li].fan_in
        units = L[li].units
        _gemm(False, False, nb, units, fan_in, 1.0, h, fan_in, <floating*>L[li].kernel, units,
              0.0, <floating*>L[li].pre_activation)
        if L[li].bias != NULL:
            _bias_add(<floating*>L[li].pre_activation, <floating*>L[li].bias,
                      <floating*>L[li].pre_activation, nb, units)
        if _activated(&L[li], c, li):
            _act_fwd(L[li].activation, L[li].alpha, <floating*>L[li].pre_activation,
                     <floating*>L[li].output, nb * units)
        h = <floating*>L[li].output
        if L[li].dropout_rate > 0:
            _dropout_forward(L[li].dropout_rng, L[li].dropout_rate,
                             <floating>L[li].dropout_scale, <floating*>L[li].output,
                             <floating*>L[li].dropout_mask, <floating*>L[li].dropout_output,
                             nb * units)
            h = <floating*>L[li].dropout_output


cdef inline double _loss(LayerDesc* top, const Config* c, const floating* yt,
                         const cnp.int64_t* lab, Py_ssize_t nb) noexcept nogil:
    """The batch's loss, and its gradient at the top layer's output (mse) or logits (a
    fused loss, which also writes the activated output, for the metrics)."""
    cdef Py_ssize_t out_dim = top.units
    cdef floating* out = <floating*>top.output
    cdef floating* z = <floating*>top.pre_activation
    cdef floating* per = <floating*>c.item_losses
    cdef double loss
    if c.loss == L_MSE:
        loss = <floating>(_sum_sq_diff(out, yt, nb * out_dim) / (nb * out_dim))
        _mse_bwd(out, yt, <floating*>top.grad_out, nb * out_dim, 2.0 / (nb * out_dim))
        return loss
    if c.loss == L_BCE:
        _fill(<floating*>c.dloss, <floating>(1.0 / (nb * out_dim)), nb * out_dim)
        if floating is float:
            vm_bce_fwd_f32(z, yt, per, nb * out_dim, 0)
            vm_bce_bwd_f32(<float*>c.dloss, z, yt, <float*>top.grad_out, nb * out_dim)
            vm_sigmoid_fwd_f32(z, out, nb * out_dim, 0)
        else:
            vm_bce_fwd_f64(z, yt, per, nb * out_dim, 0)
            vm_bce_bwd_f64(<double*>c.dloss, z, yt, <double*>top.grad_out, nb * out_dim)
            vm_sigmoid_fwd_f64(z, out, nb * out_dim, 0)
        return _mean(per, nb * out_dim)
    _fill(<floating*>c.dloss, <floating>(1.0 / nb), nb)
    if c.loss == L_SPARSE:
        _sparse_xent_fwd(z, lab, out, per, nb, out_dim)
        _sparse_xent_bwd(<floating*>c.dloss, out, lab, <floating*>top.grad_out, nb, out_dim)
    else:
        _softmax_xent_fwd(z, yt, out, per, nb, out_dim)
        _softmax_xent_bwd(<floating*>c.dloss, out, yt, <floating*>top.grad_out, nb, out_dim)
    return _mean(per, nb)


cdef inline void _backward_update(LayerDesc* L, Config* c, const floating* x_batch,
                                  Py_ssize_t nb, Py_ssize_t step) noexcept nogil:
    """The gradients from the top layer down, each layer's update as soon as its input
    gradient is computed (all gradients first under global_clipnorm: their norm scales
    every update). step: the step's index in the run, for a schedule's rate."""
    cdef Py_ssize_t li, fan_in, units
    cdef const floating* h
    cdef double alpha = 0
    cdef double scale
    if c.lrs != NULL:
        c.lr = c.lrs[step]
    if c.rule == O_ADAM:
        alpha = _adam_alpha(c.lr, c.beta_1, c.beta_2, <double>(c.iteration + 1))
    for li in range(c.nlayers - 1, -1, -1):
        fan_in = L[li].fan_in
        units = L[li].units
        if L[li].dropout_rate > 0:  # the gradient through the mask first
            _mul_inplace(<floating*>L[li].grad_out, <floating*>L[li].dropout_mask, nb * units)
        if _activated(&L[li], c, li):
            _act_bwd(L[li].activation, L[li].alpha, <floating*>L[li].grad_out,
                     <floating*>L[li].pre_activation, <floating*>L[li].output, nb * units)
        if li > 0:
            h = <floating*>(L[li - 1].dropout_output if L[li - 1].dropout_rate > 0
                            else L[li - 1].output)
        else:
            h = x_batch
        _gemm(True, False, fan_in, units, nb, 1.0, h, fan_in, <floating*>L[li].grad_out, units,
              0.0, <floating*>L[li].kernel_grad)
        if L[li].bias != NULL:
            _bias_grad(<floating*>L[li].grad_out, <floating*>L[li].bias_grad, nb, units)
        if L[li].kernel_reg:  # autograd adds the penalty's gradient after the loss's
            _penalty_grad(<floating*>L[li].kernel_grad, <floating*>L[li].kernel, fan_in * units,
                          L[li].kernel_l1, L[li].kernel_l2)
        if L[li].bias_reg:
            _penalty_grad(<floating*>L[li].bias_grad, <floating*>L[li].bias, units,
                          L[li].bias_l1, L[li].bias_l2)
        if li > 0:
            _gemm(False, True, nb, fan_in, units, 1.0, <floating*>L[li].grad_out, units,
                  <floating*>L[li].kernel, units, 0.0, <floating*>L[li - 1].grad_out)
        if c.global_clipnorm < 0:
            _update_layer(c, &L[li], <floating*>L[li].kernel, alpha, 1.0)
    if c.global_clipnorm >= 0:
        scale = _global_clip_scale(L, c, x_batch)
        for li in range(c.nlayers):
            _update_layer(c, &L[li], <floating*>L[li].kernel, alpha, scale)
    c.iteration += 1


cdef bint _poll(Config* c) noexcept nogil:
    """Every poll_every steps: when a poll is due, run the signal handlers (the GIL held for
    that moment only); whether one raised (its exception is left set)."""
    cdef long long now
    cdef int raised
    c.poll_left = c.poll_every
    now = mg_clock_ns()
    if now < c.poll_at:
        return False
    if c.ftz:  # the handlers run in the caller's floating-point mode
        mg_ftz_leave(c.ftz_mode)
    with gil:
        raised = PyErr_CheckSignals()
    if c.ftz:
        mg_ftz_enter()
    c.poll_at = mg_clock_ns() + c.poll_ns
    return raised != 0


cdef inline void _step(LayerDesc* L, Config* c, const floating* x, const floating* y,
                       const cnp.int64_t* labels, const cnp.int64_t* orders, Py_ssize_t s,
                       Py_ssize_t first, Py_ssize_t per_epoch, double* losses) noexcept nogil:
    """Step s of the run: batch s % per_epoch of epoch s // per_epoch, whose samples are
    orders[epoch, batch rows] (or the rows in order when orders is NULL); its loss goes to
    losses[s - first], its counted accuracies to c.counts (trainer_accuracy.pxi). A Plan's
    run and a BatchedPlan's (K nets in lockstep) both step through here: a net trains the
    same in either."""
    cdef Py_ssize_t e, k, start, nb
    cdef Py_ssize_t in_dim = L[0].fan_in, out_dim = L[c.nlayers - 1].units
    cdef Batch batch
    e = s // per_epoch
    k = s - e * per_epoch
    start = k * c.batch
    nb = min(c.batch, c.n - start)
    batch = _gather_batch(c, x, y, labels, orders, e, k, start, nb, in_dim, out_dim)
    _forward(L, c, <const floating*>batch.x, nb)
    losses[s - first] = _loss(&L[c.nlayers - 1], c, <const floating*>batch.y, batch.labels, nb)
    if c.n_counted > 0:  # on the output of the forward, as Plan.output gives it
        _count_correct(c, <const floating*>c.model_out, <const floating*>batch.y, batch.labels,
                       nb, out_dim, c.counts + (s - first) * c.n_counted)
    if c.regularized:  # the penalties of the weights before the update, as the eager loss
        losses[s - first] = <floating>(<floating>losses[s - first]
                                       + _regularization(L, c, <const floating*>batch.x))
    _backward_update(L, c, <const floating*>batch.x, nb, s - first)
    if c.rec_every > 0 and _snapshot_due(&c.rec_next, c.rec_every):
        _record(L, c, <const floating*>c.rec_x)
    if c.wrec_every > 0 and _snapshot_due(&c.wrec_next, c.wrec_every):
        _record_weights(L, c)


cdef Py_ssize_t _run(LayerDesc* L, Config* c, const floating* x, const floating* y,
                     const cnp.int64_t* labels, const cnp.int64_t* orders, Py_ssize_t first,
                     Py_ssize_t last, Py_ssize_t per_epoch, double* losses) noexcept nogil:
    """Steps [first, last) of the run (_step). Returns the steps done: all of them, or fewer
    when a signal handler raised (polled between steps, never after the last: Python runs
    the handlers then)."""
    cdef Py_ssize_t s
    for s in range(first, last):
        _step(L, c, x, y, labels, orders, s, first, per_epoch, losses)
        if c.poll_ns > 0:
            c.poll_left -= 1
            if c.poll_left == 0 and s + 1 < last and _poll(c):
                return s + 1 - first
    return last - first
