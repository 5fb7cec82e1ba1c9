# The optimizer update of the captured step: the fused kernels of optim.pyx (the same
# loops, loops.pxd), with clipnorm and global_clipnorm as optimizers.Optimizer.step does.

cdef inline void _update(const Config* c, floating* p, const floating* g, void** state,
                         Py_ssize_t n, double alpha, double scale) noexcept nogil:
    """The optimizer's fused update of one parameter (alpha: Adam's step size)."""
    if c.clipnorm >= 0:
        scale = _clip_scale(_sum_squares(g, n), c.clipnorm)
    if c.rule == O_SGD:
        _sgd(p, g, n, c.lr, c.weight_decay, scale, c.clipvalue)
    elif c.rule == O_MOMENTUM:
        _sgd_momentum(p, g, <floating*>state[0], n, c.lr, c.momentum, c.nesterov,
                      c.weight_decay, scale, c.clipvalue)
    elif c.rule == O_ADAM:
        _adam(p, g, <floating*>state[0], <floating*>state[1], <floating*>state[2], n, c.lr,
              alpha, c.beta_1, c.beta_2, c.epsilon, c.weight_decay, scale, c.clipvalue)
    elif c.rule == O_RMSPROP:
        _rmsprop(p, g, <floating*>state[0], <floating*>state[1], <floating*>state[2], n, c.lr,
                 c.rho, c.epsilon, c.momentum, c.weight_decay, scale, c.clipvalue)
    else:
        _adagrad(p, g, <floating*>state[0], n, c.lr, c.epsilon, c.weight_decay, scale,
                 c.clipvalue)


cdef inline void _update_layer(const Config* c, LayerDesc* layer, floating* kernel,
                               double alpha, double scale) noexcept nogil:
    """Both parameters of a layer (kernel: layer.kernel, typed)."""
    _update(c, kernel, <floating*>layer.kernel_grad, layer.kernel_state,
            layer.fan_in * layer.units, alpha, scale)
    if layer.bias != NULL:
        _update(c, <floating*>layer.bias, <floating*>layer.bias_grad, layer.bias_state,
                layer.units, alpha, scale)


cdef inline double _global_clip_scale(const LayerDesc* L, const Config* c,
                                      const floating* typed) noexcept nogil:
    """The global_clipnorm factor of all gradients, summed parameter by parameter as
    optimizers.Optimizer._global_scale sums them (typed: only names the dtype)."""
    cdef double total = 0
    cdef Py_ssize_t li
    for li in range(c.nlayers):
        total += _sum_squares(<const floating*>L[li].kernel_grad, L[li].fan_in * L[li].units)
        if L[li].bias != NULL:
            total += _sum_squares(<const floating*>L[li].bias_grad, L[li].units)
    return _clip_scale(total, c.global_clipnorm)
