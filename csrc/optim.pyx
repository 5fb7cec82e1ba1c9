"""Optimizer kernels: one fused, in-place pass per parameter update (Keras 3 formulas), and
the squared norm that gradient clipping needs. Contract: csrc/README.md; oracle:
microgradnet/_reference.py.

Every update reads the gradient, scales and clips it, applies decoupled weight decay and
the optimizer's rule, and writes the parameter and its state arrays, element by element in
one loop. The parameter and the state must be C-contiguous, aligned, writeable arrays of
the parameter's dtype and shape: they are updated in place, so a copy would lose the
update. The gradient is only read and may have any layout (it is copied to C order).
"""

cimport numpy as cnp
from libc.math cimport INFINITY

from checks cimport _float_array, _float_type, _overlap, _same_shape, _unalias, _writable
from loops cimport _adagrad, _adam, _adam_alpha, _rmsprop, _sgd, _sgd_momentum, _sum_squares

cnp.import_array()

include "simd.pxi"


# --------------------------------------------------------------------------- checks

# The shared checks are checks.pxd's; these add what an in-place update needs. Each message
# says why a parameter or state array is not copied to the layout the loops need.
cdef str _IN_PLACE = ": it is updated in place"


cdef inline cnp.ndarray _param(object param):
    """Check the parameter: a float array to be updated in place."""
    _float_type("param", param, -1)
    cdef cnp.ndarray p = <cnp.ndarray>param
    _writable("param", p, _IN_PLACE)
    return p


cdef inline cnp.ndarray _state(str name, object a, cnp.ndarray p):
    """Check a state array of the parameter `p`: same dtype and shape, updated in place."""
    _float_type(name, a, cnp.PyArray_TYPE(p))
    cdef cnp.ndarray s = <cnp.ndarray>a
    _same_shape(name, s, "param", p)
    _writable(name, s, _IN_PLACE)
    _distinct(name, s, "param", p)
    return s


cdef inline int _distinct(str name_a, cnp.ndarray a, str name_b, cnp.ndarray b) except -1:
    if _overlap(a, b):
        raise ValueError(f"{name_a} overlaps {name_b}: each state array needs its own memory")
    return 0


cdef inline cnp.ndarray _grad(object grad, cnp.ndarray p, list written):
    """Check the gradient and return it C-contiguous, unaliased from the written arrays."""
    cdef cnp.ndarray g = _float_array("grad", grad, cnp.PyArray_TYPE(p))
    _same_shape("grad", g, "param", p)
    # Element i of grad is read before element i of anything is written, so grad may be
    # the very array being written; any other overlap is resolved by a copy.
    for w in written:
        g = _unalias(g, <cnp.ndarray>w, True)
    return g


cdef inline void* _data(cnp.ndarray a) noexcept:
    return cnp.PyArray_DATA(a) if a is not None else NULL


# --------------------------------------------------------------------------- kernels
# The update loops are in loops.pxd (the captured training step runs them too). Common to
# every update, in Keras' order: g := clip(grad * grad_scale, -clipvalue, clipvalue) (clip
# keeps nan, as numpy's does), then p := p - p * (weight_decay * lr) when weight_decay != 0,
# then the rule.

def sgd_update(param, grad, double lr, double weight_decay=0.0, double grad_scale=1.0,
               double clipvalue=INFINITY):
    """In place: g = clip(grad * grad_scale, +-clipvalue); param -= param * weight_decay * lr;
    param -= lr * g."""
    cdef cnp.ndarray p = _param(param)
    cdef cnp.ndarray g = _grad(grad, p, [p])
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pg = cnp.PyArray_DATA(g)
    with nogil:
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT32:
            _sgd(<float*>pp, <const float*>pg, n, lr, weight_decay, grad_scale, clipvalue)
        else:
            _sgd(<double*>pp, <const double*>pg, n, lr, weight_decay, grad_scale, clipvalue)


def sgd_momentum_update(param, grad, velocity, double lr, double momentum,
                        bint nesterov=False, double weight_decay=0.0, double grad_scale=1.0,
                        double clipvalue=INFINITY):
    """In place: velocity = momentum * velocity - lr * g; param += velocity, or with nesterov
    param += momentum * velocity - lr * g (g clipped and weight decay first, as sgd_update)."""
    cdef cnp.ndarray p = _param(param)
    cdef cnp.ndarray v = _state("velocity", velocity, p)
    cdef cnp.ndarray g = _grad(grad, p, [p, v])
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* pv = cnp.PyArray_DATA(v)
    with nogil:
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT32:
            _sgd_momentum(<float*>pp, <const float*>pg, <float*>pv, n, lr, momentum, nesterov,
                          weight_decay, grad_scale, clipvalue)
        else:
            _sgd_momentum(<double*>pp, <const double*>pg, <double*>pv, n, lr, momentum,
                          nesterov, weight_decay, grad_scale, clipvalue)


def adam_update(param, grad, m, v, double lr, double beta_1, double beta_2, double epsilon,
                long long step, vhat=None, double weight_decay=0.0, double grad_scale=1.0,
                double clipvalue=INFINITY):
    """In place, step t >= 1: m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    with vhat (amsgrad) vhat = max(vhat, v) is used for v;
    param -= alpha * m / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    if step < 1:
        raise ValueError(f"step must be >= 1 (the 1-based count of updates), got {step}")
    cdef cnp.ndarray p = _param(param)
    cdef cnp.ndarray ma = _state("m", m, p)
    cdef cnp.ndarray va = _state("v", v, p)
    _distinct("m", ma, "v", va)
    cdef cnp.ndarray ha = None
    if vhat is not None:
        ha = _state("vhat", vhat, p)
        _distinct("vhat", ha, "m", ma)
        _distinct("vhat", ha, "v", va)
    cdef cnp.ndarray g = _grad(grad, p, [p, ma, va] if ha is None else [p, ma, va, ha])
    cdef double alpha = _adam_alpha(lr, beta_1, beta_2, <double>step)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* pm = cnp.PyArray_DATA(ma)
    cdef void* pv = cnp.PyArray_DATA(va)
    cdef void* ph = _data(ha)
    with nogil:
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT32:
            _adam(<float*>pp, <const float*>pg, <float*>pm, <float*>pv, <float*>ph, n, lr,
                  alpha, beta_1, beta_2, epsilon, weight_decay, grad_scale, clipvalue)
        else:
            _adam(<double*>pp, <const double*>pg, <double*>pm, <double*>pv, <double*>ph, n, lr,
                  alpha, beta_1, beta_2, epsilon, weight_decay, grad_scale, clipvalue)


def rmsprop_update(param, grad, velocity, double lr, double rho, double epsilon,
                   momentum_buf=None, double momentum=0.0, average_grad=None,
                   double weight_decay=0.0, double grad_scale=1.0, double clipvalue=INFINITY):
    """In place: velocity = rho velocity + (1 - rho) g^2; centered (average_grad given):
    average_grad = rho average_grad + (1 - rho) g, denom = velocity - average_grad^2 + epsilon,
    else denom = velocity + epsilon; inc = lr g / sqrt(denom); with momentum_buf:
    momentum_buf = momentum momentum_buf + inc, param -= momentum_buf; else param -= inc."""
    cdef cnp.ndarray p = _param(param)
    cdef cnp.ndarray va = _state("velocity", velocity, p)
    cdef list written = [p, va]
    cdef cnp.ndarray ma = None
    cdef cnp.ndarray aa = None
    if momentum_buf is not None:
        ma = _state("momentum_buf", momentum_buf, p)
        _distinct("momentum_buf", ma, "velocity", va)
        written.append(ma)
    elif momentum != 0:
        raise ValueError(f"momentum={momentum} needs a momentum_buf array")
    if average_grad is not None:
        aa = _state("average_grad", average_grad, p)
        _distinct("average_grad", aa, "velocity", va)
        if ma is not None:
            _distinct("average_grad", aa, "momentum_buf", ma)
        written.append(aa)
    cdef cnp.ndarray g = _grad(grad, p, written)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* pv = cnp.PyArray_DATA(va)
    cdef void* pm = _data(ma)
    cdef void* pa = _data(aa)
    with nogil:
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT32:
            _rmsprop(<float*>pp, <const float*>pg, <float*>pv, <float*>pm, <float*>pa, n, lr,
                     rho, epsilon, momentum, weight_decay, grad_scale, clipvalue)
        else:
            _rmsprop(<double*>pp, <const double*>pg, <double*>pv, <double*>pm, <double*>pa, n,
                     lr, rho, epsilon, momentum, weight_decay, grad_scale, clipvalue)


def adagrad_update(param, grad, accumulator, double lr, double epsilon,
                   double weight_decay=0.0, double grad_scale=1.0, double clipvalue=INFINITY):
    """In place: accumulator += g^2; param -= lr g / sqrt(accumulator + epsilon)."""
    cdef cnp.ndarray p = _param(param)
    cdef cnp.ndarray a = _state("accumulator", accumulator, p)
    cdef cnp.ndarray g = _grad(grad, p, [p, a])
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef void* pp = cnp.PyArray_DATA(p)
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* pa = cnp.PyArray_DATA(a)
    with nogil:
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT32:
            _adagrad(<float*>pp, <const float*>pg, <float*>pa, n, lr, epsilon, weight_decay,
                     grad_scale, clipvalue)
        else:
            _adagrad(<double*>pp, <const double*>pg, <double*>pa, n, lr, epsilon,
                     weight_decay, grad_scale, clipvalue)


def sum_squares(a):
    """sum(a^2) as a Python float, accumulated in double (for clipnorm and global_clipnorm)."""
    cdef cnp.ndarray x = _float_array("a", a, -1)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef void* px = cnp.PyArray_DATA(x)
    cdef double s
    with nogil:
        if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
            s = _sum_squares(<const float*>px, n)
        else:
            s = _sum_squares(<const double*>px, n)
    return s
