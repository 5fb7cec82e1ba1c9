# The weight penalties of the captured step (regularizers.L1L2 and its L1, L2): their value,
# added to the batch's loss, and their gradient, added to the parameter's, in the order and
# dtype the eager path computes them (np.add.reduce's pairwise sums, loops.pxd's
# _pairwise_sum; autograd's accumulation).

cdef inline floating _penalty(const floating* w, Py_ssize_t n, double l1,
                              double l2) noexcept nogil:
    """L1L2(l1, l2)(w) as regularizers.L1L2 computes it: sum(|w|) * l1 + sum(w * w) * l2,
    a term only for a factor that is not 0 (sum(w) * 0 when both are)."""
    cdef floating p
    if l1 != 0:
        p = _pairwise_sum(w, n, R_ABS) * <floating>l1
        if l2 != 0:
            p = p + _pairwise_sum(w, n, R_SQUARE) * <floating>l2
        return p
    if l2 != 0:
        return _pairwise_sum(w, n, R_SQUARE) * <floating>l2
    return _pairwise_sum(w, n, R_SUM) * <floating>0


cdef inline void _penalty_grad(floating* g, const floating* w, Py_ssize_t n, double l1,
                               double l2) noexcept nogil:
    """g += the penalty's gradient, term by term as autograd adds them to the parameter's
    gradient: l1 * sign(w) (sign(0) = 0), then l2 * w twice (w * w has two inputs), or 0
    when both factors are 0."""
    cdef Py_ssize_t i
    cdef floating s, t, v
    cdef floating f1 = <floating>l1, f2 = <floating>l2
    for i in range(n):
        v = g[i]
        if l1 != 0:
            s = 1 if w[i] > 0 else -1 if w[i] < 0 else 0 if w[i] == 0 else w[i]  # np.sign(-0.0) = 0
            v = v + f1 * s
        if l2 != 0:
            t = f2 * w[i]
            v = v + t
            v = v + t
        if l1 == 0 and l2 == 0:
            v = v + <floating>0
        g[i] = v


cdef inline floating _regularization(const LayerDesc* L, const Config* c,
                                     const floating* typed) noexcept nogil:
    """The sum of the layers' penalties, layer by layer (kernel, then bias), as
    training.regularization adds them (typed: only names the dtype)."""
    cdef Py_ssize_t li
    cdef floating total = 0, term
    cdef bint any_term = False, layer_term
    for li in range(c.nlayers):
        layer_term = False
        if L[li].kernel_reg:
            term = _penalty(<const floating*>L[li].kernel, L[li].fan_in * L[li].units,
                            L[li].kernel_l1, L[li].kernel_l2)
            layer_term = True
        if L[li].bias_reg:
            if layer_term:
                term = term + _penalty(<const floating*>L[li].bias, L[li].units,
                                       L[li].bias_l1, L[li].bias_l2)
            else:
                term = _penalty(<const floating*>L[li].bias, L[li].units, L[li].bias_l1,
                                L[li].bias_l2)
            layer_term = True
        if layer_term:
            total = total + term if any_term else term
            any_term = True
    return total


def penalty(w, double l1, double l2):
    """The value of regularizers.L1L2(l1, l2)(w) as the captured step computes it (w: a
    C-contiguous aligned float32 or float64 array, native byte order; for the tests)."""
    if not cnp.PyArray_Check(w) or w.dtype not in (np.float32, np.float64):
        raise TypeError(f"penalty: w must be a float32 or float64 array, got "
                        f"{type(w).__name__ if not cnp.PyArray_Check(w) else w.dtype}")
    if not _c_aligned(w):
        raise ValueError("penalty: w must be C-contiguous and aligned")
    if not (l1 >= 0 and l2 >= 0):
        raise ValueError(f"penalty: the factors must be >= 0, got ({l1}, {l2})")
    cdef Py_ssize_t n = w.size
    cdef void* p = cnp.PyArray_DATA(w)
    if w.dtype == np.float32:
        return np.float32(_penalty(<const float*>p, n, l1, l2))
    return np.float64(_penalty(<const double*>p, n, l1, l2))
