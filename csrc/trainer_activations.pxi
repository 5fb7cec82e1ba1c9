# The activation dispatch of the captured step: the names the plan takes (their index is
# the code), and the forward and backward of each, the same loops as the eager kernels.

ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "gelu",
               "silu", "step")

cdef enum:
    A_LINEAR, A_RELU, A_LEAKY, A_ELU, A_SIGMOID, A_TANH, A_SOFTPLUS, A_GELU, A_SILU, A_STEP


cdef inline void _act_fwd(int act, double alpha, floating* z, floating* a,
                          Py_ssize_t n) noexcept nogil:
    if act == A_RELU:
        _relu_fwd(z, a, n, 0)
    elif act == A_LEAKY:
        _leaky_relu_fwd(z, a, n, alpha)
    elif act == A_STEP:
        _step_fwd(z, a, n, 0)
    elif floating is float:
        if act == A_ELU:
            vm_elu_fwd_f32(z, a, n, alpha)
        elif act == A_SIGMOID:
            vm_sigmoid_fwd_f32(z, a, n, 0)
        elif act == A_TANH:
            vm_tanh_fwd_f32(z, a, n, 0)
        elif act == A_SOFTPLUS:
            vm_softplus_fwd_f32(z, a, n, 0)
        elif act == A_GELU:
            vm_gelu_fwd_f32(z, a, n, 0)
        elif act == A_SILU:
            vm_silu_fwd_f32(z, a, n, 0)
    else:
        if act == A_ELU:
            vm_elu_fwd_f64(z, a, n, alpha)
        elif act == A_SIGMOID:
            vm_sigmoid_fwd_f64(z, a, n, 0)
        elif act == A_TANH:
            vm_tanh_fwd_f64(z, a, n, 0)
        elif act == A_SOFTPLUS:
            vm_softplus_fwd_f64(z, a, n, 0)
        elif act == A_GELU:
            vm_gelu_fwd_f64(z, a, n, 0)
        elif act == A_SILU:
            vm_silu_fwd_f64(z, a, n, 0)


cdef inline void _act_bwd(int act, double alpha, floating* g, const floating* z,
                          const floating* a, Py_ssize_t n) noexcept nogil:
    """g := g * f'(.) in place, from the output a or the input z as the eager op does."""
    if act == A_RELU:
        _relu_bwd(g, a, g, n, 0)
    elif act == A_LEAKY:
        _leaky_relu_bwd(g, z, g, n, alpha)
    elif act == A_ELU:
        _elu_bwd(g, a, g, n, alpha)
    elif act == A_SIGMOID:
        _sigmoid_bwd(g, a, g, n, 0)
    elif act == A_TANH:
        _tanh_bwd(g, a, g, n, 0)
    elif act == A_STEP:
        _step_bwd(g, z, g, n, 0)
    elif floating is float:
        if act == A_SOFTPLUS:
            vm_softplus_bwd_f32(g, z, g, n, 0)
        elif act == A_GELU:
            vm_gelu_bwd_f32(g, z, g, n, 0)
        elif act == A_SILU:
            vm_silu_bwd_f32(g, z, g, n, 0)
    else:
        if act == A_SOFTPLUS:
            vm_softplus_bwd_f64(g, z, g, n, 0)
        elif act == A_GELU:
            vm_gelu_bwd_f64(g, z, g, n, 0)
        elif act == A_SILU:
            vm_silu_bwd_f64(g, z, g, n, 0)
