# The activation dispatch of the captured step: each layer's code is a row of the one
# activation table (activation_table.pxi), whose loops the eager kernels call too.

include "activation_table.pxi"

ACTIVATIONS = _ACTIVATION_NAMES  # the names the plan takes; a name's index is its code


cdef inline void _act_fwd(int act, double alpha, floating* z, floating* a,
                          Py_ssize_t n) noexcept nogil:
    """a := f(z) by the activation's row of the table."""
    if floating is float:
        _ACTIVATION_LOOPS[act].fwd_f32(z, a, n, alpha)
    else:
        _ACTIVATION_LOOPS[act].fwd_f64(z, a, n, alpha)


cdef inline void _act_bwd(int act, double alpha, floating* g, const floating* z,
                          const floating* a, Py_ssize_t n) noexcept nogil:
    """g := g * f'(.) in place, from the output a or the input z as the eager op does."""
    cdef const floating* saved = a if _ACTIVATION_LOOPS[act].bwd_reads_y else z
    if floating is float:
        _ACTIVATION_LOOPS[act].bwd_f32(g, saved, g, n, alpha)
    else:
        _ACTIVATION_LOOPS[act].bwd_f64(g, saved, g, n, alpha)
