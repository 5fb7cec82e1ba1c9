"""The captured training step: forward, loss, backward and optimizer update of a stack of
Dense layers, replayed in C for every batch over buffers allocated once.

`microgradnet/fastpath.py` captures a compiled Sequential into a `Plan` and drives it; the
eager path (Tensor ops through autograd) is its oracle: the same inner loops (loops.pxd,
vmath.h) in the same order, so both give the same weights. Every call checks the arrays
it will touch (parameters, optimizer state, data, order) before it releases the GIL, and
re-reads the parameters from their tensors, so `set_weights` between calls is safe.
"""

import threading

import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport INFINITY, NAN, pow, sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from kernels cimport (
    _default_threads, floating, vm_set_simd_level, vm_simd_level, vm_sigmoid_fwd_f32,
    vm_sigmoid_fwd_f64,
    vm_bce_bwd_f32, vm_bce_bwd_f64, vm_bce_fwd_f32, vm_bce_fwd_f64,
)
from loops cimport (
    _adagrad, _adam, _bias_add, _bias_grad, _gemm, _mse_bwd, _rmsprop, _row_exp, _row_max,
    _sgd, _sgd_momentum, _softmax_xent_bwd, _softmax_xent_fwd, _sparse_xent_bwd,
    _sparse_xent_fwd, _sum_sq_diff, _sum_squares,
)

cnp.import_array()

cdef extern from "numpy/random/bitgen.h":
    struct bitgen:
        void* state
        uint64_t (*next_uint64)(void* st) nogil
        unsigned int (*next_uint32)(void* st) nogil
        double (*next_double)(void* st) nogil

    ctypedef bitgen bitgen_t

cdef extern from "prefetch.h" nogil:
    ctypedef struct mg_prefetch:
        pass
    ctypedef void (*mg_perm_fn)(void* rng, cnp.int64_t* out, Py_ssize_t n) noexcept nogil
    int MG_HAVE_PREFETCH
    int mg_prefetch_start(mg_prefetch* p, mg_perm_fn perm, void* rng, cnp.int64_t* ring,
                          Py_ssize_t n, long long slots, long long total)
    void mg_prefetch_take(mg_prefetch* p, long long e, cnp.int64_t* out)
    void mg_prefetch_join(mg_prefetch* p)

cdef extern from "fpenv.h" nogil:
    unsigned int mg_ftz_enter()
    void mg_ftz_leave(unsigned int old)
    int mg_ftz_supported()

# Whether run(flush_denormal=True) can flush subnormals to zero here (x86); see fpenv.h.
CAN_FLUSH_DENORMAL = bool(mg_ftz_supported())


def _ftz_enter():
    """Set flush-to-zero and denormals-are-zero on this thread; return the mode to restore."""
    return mg_ftz_enter()


def _ftz_leave(unsigned int old):
    """Restore this thread's floating-point mode as _ftz_enter returned it."""
    mg_ftz_leave(old)


# Activation codes: the rows of activation_table.pxi (ACTIVATIONS gives their names);
# loss codes, optimizer codes.
include "activation_table.pxi"
ACTIVATIONS = _ACTIVATION_NAMES
LOSSES = ("mse", "sigmoid_bce", "softmax_xent", "sparse_softmax_xent")
OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "rmsprop", "adagrad")

cdef enum:
    L_MSE, L_BCE, L_XENT, L_SPARSE

cdef enum:
    O_SGD, O_MOMENTUM, O_ADAM, O_RMSPROP, O_ADAGRAD


cdef struct LayerDesc:
    Py_ssize_t fan_in
    Py_ssize_t units
    int act
    double alpha
    void* w       # the parameters (updated in place) and their optimizer state
    void* b
    void* sw[3]
    void* sb[3]
    void* z       # buffers: pre-activation, activation (z itself when linear),
    void* a       # gradient at the output, then at the pre-activation (in place),
    void* g       # and the parameter gradients
    void* gw
    void* gb
    void* rw      # weight recording: copies of w and b go to rw[count], rb[count]
    void* rb
    double drop   # Dropout after the layer: its rate (0: none), the scale of what it keeps,
    double drop_scale  # the mask it drew (0 or drop_scale), the output it passes on, and
    void* mask         # the generator it draws from (set for each run)
    void* d
    bitgen_t* drng


cdef struct Config:
    int nlayers
    int loss
    int opt
    double lr
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double wd
    double clipvalue
    double rho
    double clipnorm         # < 0: none (each gradient scaled to this norm, as Keras)
    double global_clipnorm  # < 0: none (all gradients together; updates wait for them all)
    long long iteration
    const double* lrs  # when set, the learning rate of step s is lrs[s - first] (a schedule)
    Py_ssize_t n
    Py_ssize_t batch
    void* xb      # the gathered batch (shuffled runs)
    void* yb
    cnp.int64_t* lb
    void* per     # per-element (bce) or per-sample (softmax) losses
    void* dloss   # their gradient, 1 / batch
    bitgen_t* rng  # when set, each epoch's order is drawn here into `order`
    mg_prefetch* pf  # ... or, when set, drawn ahead by its thread and taken from it
    long long pf_next  # the index in the run of the next order to take from pf
    cnp.int64_t* order
    int out_act   # the output activation a fused loss applies: 0 none, 1 sigmoid, 2 softmax
    const void* rec_x  # recording: the model's outputs for rec_x (rec_rows rows) after
    void* rec_out      # every rec_every-th step, counting rec_phase steps before `first`,
    Py_ssize_t rec_rows  # into rec_out[rec_count], rec_count += 1
    Py_ssize_t rec_every
    Py_ssize_t rec_phase
    Py_ssize_t rec_count
    Py_ssize_t wrec_every  # weight recording: the parameters after every wrec_every-th step,
    Py_ssize_t wrec_phase  # counting wrec_phase steps before `first`, into the layers' rw/rb
    Py_ssize_t wrec_count  # at wrec_count, wrec_count += 1
    Py_ssize_t itemsize


# --------------------------------------------------------------------------- elementwise

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


cdef inline double _clip_scale(double sum_squares, double clip) noexcept nogil:
    """optimizers._clip_scale: the factor that brings the norm down to clip; nan when the
    norm is not finite (nan is never hidden)."""
    cdef double norm = sqrt(sum_squares)
    if norm <= clip:
        return 1.0
    if norm < INFINITY:
        return clip / norm
    return NAN


cdef inline void _update(const Config* c, floating* p, const floating* g, void** state,
                         Py_ssize_t n, double alpha, double scale) noexcept nogil:
    """The optimizer's fused update of one parameter (optim.pyx's kernels, the same loops)."""
    if c.clipnorm >= 0:
        scale = _clip_scale(_sum_squares(g, n), c.clipnorm)
    if c.opt == O_SGD:
        _sgd(p, g, n, c.lr, c.wd, scale, c.clipvalue)
    elif c.opt == O_MOMENTUM:
        _sgd_momentum(p, g, <floating*>state[0], n, c.lr, c.momentum, c.nesterov, c.wd, scale,
                      c.clipvalue)
    elif c.opt == O_ADAM:
        _adam(p, g, <floating*>state[0], <floating*>state[1], <floating*>state[2], n, c.lr,
              alpha, c.beta_1, c.beta_2, c.epsilon, c.wd, scale, c.clipvalue)
    elif c.opt == O_RMSPROP:
        _rmsprop(p, g, <floating*>state[0], <floating*>state[1], <floating*>state[2], n, c.lr,
                 c.rho, c.epsilon, c.momentum, c.wd, scale, c.clipvalue)
    else:
        _adagrad(p, g, <floating*>state[0], n, c.lr, c.epsilon, c.wd, scale, c.clipvalue)


cdef inline void _update_layer(const Config* c, LayerDesc* l, floating* w, double alpha,
                               double scale) noexcept nogil:
    """Both parameters of a layer (w: l.w, typed)."""
    _update(c, w, <floating*>l.gw, l.sw, l.fan_in * l.units, alpha, scale)
    if l.b != NULL:
        _update(c, <floating*>l.b, <floating*>l.gb, l.sb, l.units, alpha, scale)


cdef inline void _dropout_fwd(bitgen_t* g, double rate, floating scale, const floating* a,
                              floating* mask, floating* d, Py_ssize_t n) noexcept nogil:
    """layers.Dropout while training: keep where rng.random() >= rate (one double per value,
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


cdef inline double _mean(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef double s = 0
    cdef Py_ssize_t i
    for i in range(n):
        s += a[i]
    return s / n


# --------------------------------------------------------------------------- shuffling
# numpy's Generator.permutation(n), drawn from the same bit generator: a Fisher-Yates
# shuffle of 0..n-1 from the last element down, each index drawn in [0, i] by masked
# rejection (numpy's random_interval). The captured run draws the same orders as the eager
# epoch loop, without a call into Python per epoch; shuffle_matches_numpy() checks it.

cdef inline uint64_t _interval(bitgen_t* g, uint64_t mx) noexcept nogil:
    cdef uint64_t mask = mx, value
    if mx == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if mx <= <uint64_t>0xffffffffU:
        value = g.next_uint32(g.state) & mask
        while value > mx:
            value = g.next_uint32(g.state) & mask
    else:
        value = g.next_uint64(g.state) & mask
        while value > mx:
            value = g.next_uint64(g.state) & mask
    return value


cdef void _permutation(bitgen_t* g, cnp.int64_t* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef cnp.int64_t tmp
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>_interval(g, <uint64_t>i)
        tmp = out[i]
        out[i] = out[j]
        out[j] = tmp


cdef bitgen_t* _bitgen(object generator) except NULL:
    capsule = generator.bit_generator.capsule
    return <bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")


def permutation(generator, Py_ssize_t n):
    """generator.permutation(n) drawn in C, the way the captured run shuffles."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.empty(n, np.int64)
    cdef bitgen_t* g = _bitgen(generator)
    cdef cnp.int64_t* po = <cnp.int64_t*>cnp.PyArray_DATA(out)
    with generator.bit_generator.lock, nogil:
        _permutation(g, po, n)
    return out


def shuffle_matches_numpy():
    """Whether permutation() draws what this numpy's Generator.permutation draws."""
    a = np.random.default_rng(12345)
    b = np.random.default_rng(12345)
    for n in (0, 1, 2, 7, 100, 1000, 3):
        if not np.array_equal(permutation(a, n), b.permutation(n)):
            return False
    return a.integers(1 << 62) == b.integers(1 << 62)


# --------------------------------------------------------------------------- recording

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
                  <floating*>L[li].w, L[li].units, 0.0, <floating*>L[li].z)
            if L[li].b != NULL:
                _bias_add(<floating*>L[li].z, <floating*>L[li].b, <floating*>L[li].z, nb,
                          L[li].units)
            if L[li].act != A_LINEAR and (li < nl - 1 or c.loss == L_MSE):
                _act_fwd(L[li].act, L[li].alpha, <floating*>L[li].z, <floating*>L[li].a,
                         nb * L[li].units)
                h = <floating*>L[li].a
            else:
                h = <floating*>L[li].z
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
        memcpy(<char*>L[li].rw + c.wrec_count * size * c.itemsize, L[li].w, size * c.itemsize)
        if L[li].b != NULL:
            memcpy(<char*>L[li].rb + c.wrec_count * L[li].units * c.itemsize, L[li].b,
                   L[li].units * c.itemsize)
    c.wrec_count += 1


# --------------------------------------------------------------------------- the step

cdef void _run(LayerDesc* L, Config* c, const floating* x, const floating* y,
               const cnp.int64_t* labels, const cnp.int64_t* orders, Py_ssize_t first,
               Py_ssize_t last, Py_ssize_t per_epoch, double* losses) noexcept nogil:
    """Steps [first, last) of the run: step s is batch s % per_epoch of epoch s // per_epoch,
    whose samples are orders[epoch, batch rows] (or the rows in order when orders is NULL)."""
    cdef Py_ssize_t s, e, k, start, nb, i, li, fan_in, units, out_dim
    cdef Py_ssize_t in_dim = L[0].fan_in
    cdef int nl = c.nlayers
    cdef const floating* h
    cdef const floating* yt
    cdef const cnp.int64_t* lab
    cdef const cnp.int64_t* idx
    cdef floating* xb = <floating*>c.xb
    cdef floating* yb = <floating*>c.yb
    cdef LayerDesc* top = &L[nl - 1]
    cdef double loss, alpha = 0, t, total, gscale
    cdef floating* out
    out_dim = top.units
    for s in range(first, last):
        e = s // per_epoch
        k = s - e * per_epoch
        start = k * c.batch
        nb = min(c.batch, c.n - start)
        lab = NULL
        if c.rng != NULL and k == 0:
            if c.pf != NULL:
                mg_prefetch_take(c.pf, c.pf_next, c.order)
                c.pf_next += 1
            else:
                _permutation(c.rng, c.order, c.n)
        if c.rng != NULL or orders != NULL:
            idx = (c.order if c.rng != NULL else orders + e * c.n) + start
            for i in range(nb):
                _copy_row(xb + i * in_dim, x + idx[i] * in_dim, in_dim)
            if labels != NULL:
                for i in range(nb):
                    c.lb[i] = labels[idx[i]]
                lab = c.lb
            else:
                for i in range(nb):
                    _copy_row(yb + i * out_dim, y + idx[i] * out_dim, out_dim)
            h = xb
            yt = yb
        else:
            h = x + start * in_dim
            yt = y + start * out_dim if y != NULL else NULL
            lab = labels + start if labels != NULL else NULL

        # forward: z = h W + b, a = f(z); a fused loss takes the top layer's logits
        for li in range(nl):
            fan_in = L[li].fan_in
            units = L[li].units
            _gemm(False, False, nb, units, fan_in, 1.0, h, fan_in, <floating*>L[li].w, units,
                  0.0, <floating*>L[li].z)
            if L[li].b != NULL:
                _bias_add(<floating*>L[li].z, <floating*>L[li].b, <floating*>L[li].z, nb, units)
            if L[li].act != A_LINEAR and (li < nl - 1 or c.loss == L_MSE):
                _act_fwd(L[li].act, L[li].alpha, <floating*>L[li].z, <floating*>L[li].a,
                         nb * units)
            h = <floating*>L[li].a
            if L[li].drop > 0:
                _dropout_fwd(L[li].drng, L[li].drop, <floating>L[li].drop_scale,
                             <floating*>L[li].a, <floating*>L[li].mask, <floating*>L[li].d,
                             nb * units)
                h = <floating*>L[li].d

        # loss, and its gradient at the top layer's output (mse) or logits (fused)
        out = <floating*>top.a
        if c.loss == L_MSE:
            loss = <floating>(_sum_sq_diff(out, yt, nb * out_dim) / (nb * out_dim))
            _mse_bwd(out, yt, <floating*>top.g, nb * out_dim, 2.0 / (nb * out_dim))
        elif c.loss == L_BCE:
            _fill(<floating*>c.dloss, <floating>(1.0 / (nb * out_dim)), nb * out_dim)
            if floating is float:
                vm_bce_fwd_f32(<float*>top.z, yt, <float*>c.per, nb * out_dim, 0)
                vm_bce_bwd_f32(<float*>c.dloss, <float*>top.z, yt, <float*>top.g,
                               nb * out_dim)
                vm_sigmoid_fwd_f32(<float*>top.z, out, nb * out_dim, 0)  # for the metrics
            else:
                vm_bce_fwd_f64(<double*>top.z, yt, <double*>c.per, nb * out_dim, 0)
                vm_bce_bwd_f64(<double*>c.dloss, <double*>top.z, yt, <double*>top.g,
                               nb * out_dim)
                vm_sigmoid_fwd_f64(<double*>top.z, out, nb * out_dim, 0)
            loss = <floating>_mean(<floating*>c.per, nb * out_dim)
        else:
            _fill(<floating*>c.dloss, <floating>(1.0 / nb), nb)
            if c.loss == L_SPARSE:
                _sparse_xent_fwd(<floating*>top.z, lab, out, <floating*>c.per, nb, out_dim)
                _sparse_xent_bwd(<floating*>c.dloss, out, lab, <floating*>top.g, nb, out_dim)
            else:
                _softmax_xent_fwd(<floating*>top.z, yt, out, <floating*>c.per, nb, out_dim)
                _softmax_xent_bwd(<floating*>c.dloss, out, yt, <floating*>top.g, nb, out_dim)
            loss = <floating>_mean(<floating*>c.per, nb)
        losses[s - first] = loss

        # backward, each layer's update as soon as its input gradient is computed
        if c.lrs != NULL:
            c.lr = c.lrs[s - first]
        if c.opt == O_ADAM:
            t = <double>(c.iteration + 1)
            alpha = c.lr * sqrt(1 - pow(c.beta_2, t)) / (1 - pow(c.beta_1, t))
        for li in range(nl - 1, -1, -1):
            fan_in = L[li].fan_in
            units = L[li].units
            if L[li].drop > 0:  # the gradient through the mask first
                _mul_inplace(<floating*>L[li].g, <floating*>L[li].mask, nb * units)
            if L[li].act != A_LINEAR and (li < nl - 1 or c.loss == L_MSE):
                _act_bwd(L[li].act, L[li].alpha, <floating*>L[li].g, <floating*>L[li].z,
                         <floating*>L[li].a, nb * units)
            if li > 0:
                h = <floating*>(L[li - 1].d if L[li - 1].drop > 0 else L[li - 1].a)
            elif orders != NULL or c.rng != NULL:
                h = xb
            else:
                h = x + start * in_dim
            _gemm(True, False, fan_in, units, nb, 1.0, h, fan_in, <floating*>L[li].g, units,
                  0.0, <floating*>L[li].gw)
            if L[li].b != NULL:
                _bias_grad(<floating*>L[li].g, <floating*>L[li].gb, nb, units)
            if li > 0:
                _gemm(False, True, nb, fan_in, units, 1.0, <floating*>L[li].g, units,
                      <floating*>L[li].w, units, 0.0, <floating*>L[li - 1].g)
            if c.global_clipnorm < 0:  # else all gradients first: their norm scales each update
                _update_layer(c, &L[li], <floating*>L[li].w, alpha, 1.0)
        if c.global_clipnorm >= 0:
            total = 0  # summed as optimizers.Optimizer._global_scale, parameter by parameter
            for li in range(nl):
                total += _sum_squares(<floating*>L[li].gw, L[li].fan_in * L[li].units)
                if L[li].b != NULL:
                    total += _sum_squares(<floating*>L[li].gb, L[li].units)
            gscale = _clip_scale(total, c.global_clipnorm)
            for li in range(nl):
                _update_layer(c, &L[li], <floating*>L[li].w, alpha, gscale)
        c.iteration += 1
        if c.rec_every > 0 and (c.rec_phase + s - first + 1) % c.rec_every == 0:
            _record(L, c, <const floating*>c.rec_x)
        if c.wrec_every > 0 and (c.wrec_phase + s - first + 1) % c.wrec_every == 0:
            _record_weights(L, c)


# --------------------------------------------------------------------------- checks

cdef inline void* _ptr(object what, object a, int typenum, tuple shape) except NULL:
    """The data of `a` after checking it is what the loop will read and write in place.

    `what` names `a` in errors: a str, or (state index or -1, parameter index), formatted
    only when there is an error (this runs for every parameter at every call)."""
    cdef cnp.ndarray arr
    if (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>a)
            and (<object>a).shape == shape
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>a, cnp.NPY_ARRAY_C_CONTIGUOUS
                                     | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE)
            and cnp.PyArray_SIZE(<cnp.ndarray>a) > 0):
        return cnp.PyArray_DATA(<cnp.ndarray>a)
    if not isinstance(what, str):
        what = (f"parameter {what[1]}" if what[0] < 0 else
                f"state {what[0]} of parameter {what[1]}")
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_ISBYTESWAPPED(arr):
        raise TypeError(f"{what} has dtype {arr.dtype}, expected "
                        f"{'float32' if typenum == cnp.NPY_FLOAT32 else 'float64'}")
    if (<object>a).shape != shape:
        raise ValueError(f"{what} has shape {(<object>a).shape}, expected {shape}")
    if cnp.PyArray_SIZE(arr) == 0:
        raise ValueError(f"{what} is empty")
    raise ValueError(f"{what} must be C-contiguous, aligned and writeable")


# A run that shuffles draws its epochs' orders on a second thread, ahead of the training
# (prefetch.h), when it draws at least this many (below, the thread costs more than it
# saves) and microgradnet may use 2 threads (set_num_threads). The orders are the same.
_PREFETCH_MIN_ORDERS = 8
CAN_PREFETCH = bool(MG_HAVE_PREFETCH)  # POSIX threads and C11 atomics where it was built
cdef int _prefetch_threads = _default_threads() if MG_HAVE_PREFETCH else 1


def _set_num_threads(int n):
    """Draw the orders ahead on a second thread only when n >= 2 (set_num_threads)."""
    global _prefetch_threads
    _prefetch_threads = max(1, n) if MG_HAVE_PREFETCH else 1


def _get_num_threads():
    """The threads a shuffling run may use (1: the orders drawn on the training thread)."""
    return _prefetch_threads


cdef class Plan:
    """Buffers and descriptors of one captured training step (one batch size, one dtype).

    Plan(dtype, layers, loss, batch) with layers a list of (fan_in, units, activation name,
    alpha, has_bias); `run` trains with given parameter and optimizer-state arrays.
    """

    cdef LayerDesc* L
    cdef Config c
    cdef int typenum
    cdef list shapes
    cdef list buffers  # keeps the numpy buffers alive; L[] points into them
    cdef object out_buf
    cdef list grads
    cdef object order
    cdef object order_key
    cdef object ring  # the orders drawn ahead (prefetch.h), (slots, n)
    cdef mg_prefetch* pf_state
    cdef object _lock
    cdef readonly Py_ssize_t batch
    cdef readonly int nlayers

    def __cinit__(self):
        self.L = NULL
        # One run at a time: a run writes the plan's buffers and descriptors without the
        # GIL, so a second thread's run would change them under it.
        self._lock = threading.Lock()

    def run(self, *args, **kwargs):
        """Train steps [first, last) (see _run_locked), one call at a time per plan."""
        with self._lock:
            return self._run_locked(*args, **kwargs)

    def __init__(self, dtype, list layers, str loss, Py_ssize_t batch):
        if self.L != NULL:
            raise RuntimeError("Plan: already initialized")
        dt = cnp.dtype(dtype)
        if dt not in (cnp.dtype("float32"), cnp.dtype("float64")):
            raise TypeError(f"Plan: dtype must be float32 or float64, got {dt}")
        if not layers:
            raise ValueError("Plan: no layers")
        if batch < 1:
            raise ValueError(f"Plan: batch must be >= 1, got {batch}")
        if loss not in LOSSES:
            raise ValueError(f"Plan: unknown loss {loss!r}; known: {', '.join(LOSSES)}")
        self.typenum = cnp.NPY_FLOAT32 if dt == cnp.dtype("float32") else cnp.NPY_FLOAT64
        self.c.itemsize = dt.itemsize
        self.batch = batch
        self.nlayers = len(layers)
        self.L = <LayerDesc*>calloc(len(layers), sizeof(LayerDesc))
        if self.L == NULL:
            raise MemoryError()
        self.c.nlayers = len(layers)
        self.c.loss = LOSSES.index(loss)
        self.c.out_act = {"mse": 0, "sigmoid_bce": 1}.get(loss, 2)
        self.c.batch = batch
        self.shapes = []
        self.buffers = []
        self.grads = []
        self.order = None
        self.order_key = None
        cdef Py_ssize_t li, fan_in, units, prev = -1
        for li, spec in enumerate(layers):
            if len(spec) not in (5, 6):
                raise ValueError(f"Plan: layer {li} must be (fan_in, units, activation, alpha, "
                                 f"has_bias[, dropout rate]), got {spec!r}")
            fan_in, units, act, alpha, has_bias = spec[:5]
            drop = float(spec[5]) if len(spec) == 6 else 0.0
            if not 0 <= drop < 1 or (drop and li == len(layers) - 1):
                raise ValueError(f"Plan: layer {li}: a dropout rate must be in [0, 1), and "
                                 f"the top layer has none; got {drop}")
            if fan_in < 1 or units < 1:
                raise ValueError(f"Plan: layer {li} has shape ({fan_in}, {units})")
            if prev >= 0 and fan_in != prev:
                raise ValueError(f"Plan: layer {li} takes {fan_in} inputs, layer {li - 1} "
                                 f"gives {prev}")
            if act not in ACTIVATIONS:
                raise ValueError(f"Plan: unknown activation {act!r}")
            prev = units
            self.L[li].fan_in = fan_in
            self.L[li].units = units
            self.L[li].act = ACTIVATIONS.index(act)
            self.L[li].alpha = alpha
            self.L[li].drop = drop
            self.L[li].drop_scale = 1 / (1 - drop)
            if drop:
                self.L[li].mask = cnp.PyArray_DATA(self._buffer((batch, units)))
                self.L[li].d = cnp.PyArray_DATA(self._buffer((batch, units)))
            self.shapes.append(((fan_in, units), (units,) if has_bias else None))
            z = self._buffer((batch, units))
            self.L[li].z = cnp.PyArray_DATA(z)
            self.L[li].a = self.L[li].z
            top = li == len(layers) - 1
            a = z
            if self.L[li].act != A_LINEAR or (top and loss != "mse"):
                a = self._buffer((batch, units))
                self.L[li].a = cnp.PyArray_DATA(a)
            if top:
                self.out_buf = a
            self.L[li].g = cnp.PyArray_DATA(self._buffer((batch, units)))
            gw = self._buffer((fan_in, units))
            self.L[li].gw = cnp.PyArray_DATA(gw)
            gb = self._buffer((units,)) if has_bias else None
            self.L[li].gb = cnp.PyArray_DATA(gb) if has_bias else NULL
            self.grads += [gw, gb]
        out_dim = self.L[len(layers) - 1].units
        self.c.xb = cnp.PyArray_DATA(self._buffer((batch, self.L[0].fan_in)))
        self.c.yb = cnp.PyArray_DATA(self._buffer((batch, out_dim)))
        self.c.per = cnp.PyArray_DATA(self._buffer((batch * out_dim,)))
        self.c.dloss = cnp.PyArray_DATA(self._buffer((batch * out_dim,)))
        lb = np.zeros(batch, np.int64)
        self.buffers.append(lb)
        self.c.lb = <cnp.int64_t*>cnp.PyArray_DATA(lb)

    cdef object _buffer(self, tuple shape):
        a = np.zeros(shape, np.float32 if self.typenum == cnp.NPY_FLOAT32 else np.float64)
        self.buffers.append(a)
        return a

    def __dealloc__(self):
        free(self.L)
        free(self.pf_state)

    def gradients(self):
        """The gradient buffers [dW0, db0 or None, dW1, ...], rewritten by every step."""
        return list(self.grads)

    def last_order(self):
        """A copy of the sample order of the last epoch a shuffling run drew (None if none)."""
        return None if self.order is None or self.order_key is None else self.order.copy()

    def output(self, Py_ssize_t rows):
        """A copy of the top layer's activated output for the first `rows` of the last batch."""
        if not 0 <= rows <= self.batch:
            raise ValueError(f"rows must be in [0, {self.batch}], got {rows}")
        return self.out_buf[:rows].copy()

    def _run_locked(self, x, y, labels, orders, Py_ssize_t first, Py_ssize_t last,
                    Py_ssize_t per_epoch, list params, list states, str optimizer,
                    dict hyper, long long iteration, double[::1] losses,
                    bint flush_denormal=False, shuffle_with=None, record=None,
                    record_weights=None, lrs=None, dropout_rngs=None):
        """Train steps [first, last); return nothing, write each step's loss into losses.

        x (n, in) and y (n, out) or labels (n,) int64; orders (epochs, n) int64 sample
        orders or None (rows in order); params [W0, b0 or None, W1, ...] updated in place;
        states per parameter a tuple of its optimizer arrays; hyper the optimizer's numbers;
        flush_denormal: subnormals flushed to zero (faster once weights get that small, not
        IEEE arithmetic; fpenv.h). shuffle_with: a numpy Generator that draws each epoch's
        order (its permutation(n)) in place of `orders`, at the epoch's first step; a run
        that starts within an epoch goes on with the order the previous run drew.
        record: (rows, every, phase, out) to write the model's outputs for `rows` (m, in)
        after every `every`-th step, counting `phase` steps before `first`, into out[0],
        out[1], ... (out: (snapshots, m, out_dim), as many as the steps make); returns the
        number of snapshots written. record_weights: (every, phase, outs) to copy the
        parameters after every `every`-th step (counted as for record) into outs, a list
        like params of arrays (snapshots, *shape) (None for a missing bias), at 0, 1, ...
        lrs: float64 (last - first,), the learning rate of each step (a schedule), in place
        of hyper["lr"]. dropout_rngs: per layer, the numpy Generator its Dropout draws from
        (None for a layer without one); a generator may also be shuffle_with.
        """
        cdef int t = self.typenum
        cdef Py_ssize_t li, n, in_dim = self.L[0].fan_in
        cdef Py_ssize_t out_dim = self.L[self.nlayers - 1].units
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if len(params) != 2 * self.nlayers or len(states) != 2 * self.nlayers:
            raise ValueError(f"expected {2 * self.nlayers} parameters and states")
        n = len(x) if cnp.PyArray_Check(x) and cnp.PyArray_NDIM(x) >= 1 else -1
        cdef void* px = _ptr("x", x, t, (n, in_dim))
        cdef void* py = NULL
        cdef cnp.int64_t* plab = NULL
        cdef cnp.int64_t* pord = NULL
        if self.c.loss == L_SPARSE:
            if not (cnp.PyArray_Check(labels) and labels.dtype == cnp.dtype("int64")
                    and labels.shape == (n,) and labels.flags.c_contiguous):
                raise TypeError(f"labels must be a C-contiguous int64 array of shape ({n},)")
            if n and (labels.min() < 0 or labels.max() >= out_dim):
                raise ValueError(f"labels must be in [0, {out_dim})")
            plab = <cnp.int64_t*>cnp.PyArray_DATA(labels)
        else:
            py = _ptr("y", y, t, (n, out_dim))
        if per_epoch != (n + self.batch - 1) // self.batch:
            raise ValueError(f"per_epoch must be ceil(n / batch) = "
                             f"{(n + self.batch - 1) // self.batch}, got {per_epoch}")
        if not 0 <= first <= last:
            raise ValueError(f"bad step range [{first}, {last})")
        if losses.shape[0] != last - first:
            raise ValueError(f"losses has {losses.shape[0]} places for {last - first} steps")
        epochs_needed = (last + per_epoch - 1) // per_epoch if last > first else 0
        if orders is not None:
            if not (cnp.PyArray_Check(orders) and orders.dtype == cnp.dtype("int64")
                    and orders.ndim == 2 and orders.shape[1] == n
                    and orders.flags.c_contiguous):
                raise TypeError(f"orders must be a C-contiguous int64 array (epochs, {n})")
            if orders.shape[0] < epochs_needed:
                raise ValueError(f"orders has {orders.shape[0]} epochs, steps need "
                                 f"{epochs_needed}")
            if orders.size and (orders.min() < 0 or orders.max() >= n):
                raise ValueError(f"orders must hold sample indices in [0, {n})")
            pord = <cnp.int64_t*>cnp.PyArray_DATA(orders)
        self.c.rng = NULL
        if shuffle_with is not None:
            if orders is not None:
                raise ValueError("give orders or shuffle_with, not both")
            if per_epoch and first % per_epoch and self.order_key != (
                    id(shuffle_with), n, first // per_epoch):
                raise ValueError("a run that shuffles and starts within an epoch must go on "
                                 "from the run that drew that epoch's order")
            if self.order is None or len(self.order) != n:
                self.order = np.empty(n, np.int64)  # once per data size, not per step
            self.c.order = <cnp.int64_t*>cnp.PyArray_DATA(self.order)
        # The state arrays the update writes: `needed` must be given (a None among them would
        # be NULL); RMSprop's momentum and centered buffers are used when given, as the eager
        # update does (needed for momentum != 0).
        needed = {"sgd": (), "sgd_momentum": (0,), "adagrad": (0,), "adam": (0, 1),
                  "rmsprop": (0,)}[optimizer]
        if optimizer == "adam" and hyper.get("amsgrad"):
            needed = (0, 1, 2)
        if optimizer == "rmsprop" and hyper.get("momentum", 0.0) != 0:
            needed = (0, 1)
        optional = (1, 2) if optimizer == "rmsprop" else ()
        nstate = len(needed)
        for li in range(self.nlayers):
            shape_w, shape_b = self.shapes[li]
            self.L[li].w = _ptr((-1, 2 * li), params[2 * li], t, shape_w)
            if (shape_b is None) != (params[2 * li + 1] is None):
                raise ValueError(f"parameter {2 * li + 1}: the bias does not match the plan")
            self.L[li].b = NULL
            if shape_b is not None:
                self.L[li].b = _ptr((-1, 2 * li + 1), params[2 * li + 1], t, shape_b)
            for j, (shape, slots) in enumerate(((shape_w, 0), (shape_b, 1))):
                st = states[2 * li + j]
                if shape is None:
                    continue
                if len(st) < (max(needed) + 1 if needed else 0) or len(st) > 3:
                    raise ValueError(f"parameter {2 * li + j}: {optimizer} needs {nstate} "
                                     f"state arrays, got {len(st)}")
                for i in range(3):
                    used = i in needed or (i in optional and i < len(st) and st[i] is not None)
                    p = _ptr((i, 2 * li + j), st[i], t, shape) if used else NULL
                    if slots == 0:
                        self.L[li].sw[i] = p
                    else:
                        self.L[li].sb[i] = p
        self.c.opt = OPTIMIZERS.index(optimizer)
        self.c.lr = hyper.get("lr", 0.0)
        self.c.momentum = hyper.get("momentum", 0.0)
        self.c.nesterov = hyper.get("nesterov", False)
        self.c.beta_1 = hyper.get("beta_1", 0.9)
        self.c.beta_2 = hyper.get("beta_2", 0.999)
        self.c.epsilon = hyper.get("epsilon", 1e-7)
        self.c.wd = hyper.get("weight_decay", 0.0)
        self.c.clipvalue = hyper.get("clipvalue", INFINITY)
        self.c.rho = hyper.get("rho", 0.9)
        self.c.clipnorm = hyper.get("clipnorm", -1.0)
        self.c.global_clipnorm = hyper.get("global_clipnorm", -1.0)
        if self.c.clipnorm >= 0 and self.c.global_clipnorm >= 0:
            raise ValueError("give clipnorm or global_clipnorm, not both")
        self.c.iteration = iteration
        gens = [] if shuffle_with is None else [shuffle_with]
        if dropout_rngs is None:
            dropout_rngs = [None] * self.nlayers
        if not isinstance(dropout_rngs, list) or len(dropout_rngs) != self.nlayers:
            raise ValueError(f"dropout_rngs must be a list of {self.nlayers} generators or None")
        for li in range(self.nlayers):
            gen = dropout_rngs[li]
            if (gen is None) != (self.L[li].drop == 0):
                raise ValueError(f"dropout_rngs[{li}]: a generator for a layer with Dropout, "
                                 f"None for one without")
            if gen is not None:
                if not isinstance(gen, np.random.Generator):
                    raise TypeError(f"dropout_rngs[{li}] must be a numpy Generator")
                if not any(gen is g for g in gens):
                    gens.append(gen)
        self.c.lrs = NULL
        if lrs is not None:
            if not (cnp.PyArray_Check(lrs) and lrs.dtype == cnp.dtype("float64")
                    and lrs.shape == (last - first,) and lrs.flags.c_contiguous):
                raise TypeError(f"lrs must be a C-contiguous float64 array of shape "
                                f"({last - first},)")
            if lrs.size and not (np.isfinite(lrs).all() and lrs.min() >= 0):
                raise ValueError("lrs must be finite and >= 0")
            if last > first:
                self.c.lrs = <const double*>cnp.PyArray_DATA(lrs)
        self.c.n = n
        self.c.rec_every = 0
        self.c.rec_count = 0
        self.c.wrec_every = 0
        self.c.wrec_count = 0
        if record is not None:
            self._check_record(record, first, last)
        if record_weights is not None:
            self._check_record_weights(record_weights, first, last)
        if last == first:
            return 0
        if n == 0:
            raise ValueError("no samples")
        cdef double* pl = &losses[0]
        # Every generator the run draws from is locked while it runs (as numpy's own methods
        # hold it while they draw).
        locks = [g.bit_generator.lock for g in gens]
        taken = 0
        prefetch = False
        drawn = 0
        try:
            for lk in locks:
                lk.acquire()
                taken += 1
            if shuffle_with is not None:
                self.c.rng = _bitgen(shuffle_with)
                # The epochs whose first step is in [first, last) draw an order each.
                drawn = ((last - 1) // per_epoch - (first + per_epoch - 1) // per_epoch + 1
                         if per_epoch else 0)
                prefetch = (drawn >= _PREFETCH_MIN_ORDERS and _prefetch_threads >= 2
                            and not any(g is shuffle_with for g in dropout_rngs))
            for li in range(self.nlayers):
                gen = dropout_rngs[li]
                self.L[li].drng = _bitgen(gen) if gen is not None else NULL
            if prefetch:
                # last before the run, which cannot fail: the producer stops only after
                # the run has taken every order it drew
                self._prefetch_start(drawn)
            self._run_nogil(t, px, py, plab, pord, first, last, per_epoch, pl, flush_denormal)
        finally:
            if self.c.pf != NULL:
                # every order was taken (the run has no early exit): the producer is done
                with nogil:
                    mg_prefetch_join(self.c.pf)
                self.c.pf = NULL
            self.c.rng = NULL
            for li in range(self.nlayers):
                self.L[li].drng = NULL
            for lk in reversed(locks[:taken]):
                lk.release()
        snapshots = self.c.rec_count
        self.c.lrs = NULL
        self.c.wrec_every = 0
        for li in range(self.nlayers):
            self.L[li].rw = NULL
            self.L[li].rb = NULL
        self.c.rec_every = 0
        self.c.rec_x = NULL
        self.c.rec_out = NULL
        # The order in the buffer now is that of the run's last epoch: a next run may go on
        # within that epoch with it.
        self.order_key = (None if shuffle_with is None else
                          (id(shuffle_with), n, (last - 1) // per_epoch))
        return snapshots

    cdef int _check_record(self, tuple record, Py_ssize_t first, Py_ssize_t last) except -1:
        rows, every, phase, out = record
        cdef int t = self.typenum
        cdef Py_ssize_t in_dim = self.L[0].fan_in
        cdef Py_ssize_t out_dim = self.L[self.nlayers - 1].units
        if not isinstance(every, int) or every < 1 or not isinstance(phase, int) or phase < 0:
            raise ValueError(f"record: every must be >= 1 and phase >= 0, got {every}, {phase}")
        if not (cnp.PyArray_Check(rows) and cnp.PyArray_TYPE(<cnp.ndarray>rows) == t
                and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>rows)
                and cnp.PyArray_CHKFLAGS(<cnp.ndarray>rows,
                                         cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED)
                and rows.ndim == 2 and rows.shape[1] == in_dim and rows.shape[0] >= 1):
            raise ValueError(f"record: rows must be a C-contiguous (m >= 1, {in_dim}) array "
                             f"of the parameters' dtype")
        wanted = (phase + (last - first)) // every - phase // every
        if wanted:
            _ptr("record: out", out, t, (wanted, rows.shape[0], out_dim))
        self.c.rec_x = cnp.PyArray_DATA(<cnp.ndarray>rows)
        self.c.rec_out = cnp.PyArray_DATA(<cnp.ndarray>out) if wanted else NULL
        self.c.rec_rows = rows.shape[0]
        self.c.rec_every = every if wanted else 0
        self.c.rec_phase = phase
        return 0

    cdef int _check_record_weights(self, tuple spec, Py_ssize_t first,
                                   Py_ssize_t last) except -1:
        every, phase, outs = spec
        cdef int t = self.typenum
        cdef Py_ssize_t li
        if not isinstance(every, int) or every < 1 or not isinstance(phase, int) or phase < 0:
            raise ValueError(f"record_weights: every must be >= 1 and phase >= 0, got {every}, "
                             f"{phase}")
        if not isinstance(outs, list) or len(outs) != 2 * self.nlayers:
            raise ValueError(f"record_weights: outs must be a list of {2 * self.nlayers} "
                             f"arrays (None for a missing bias)")
        wanted = (phase + (last - first)) // every - phase // every
        if not wanted:
            return 0
        # All checked before any pointer is kept: a bad array leaves nothing half set.
        ptrs = []
        for li in range(self.nlayers):
            shape_w, shape_b = self.shapes[li]
            ptrs.append(<Py_ssize_t>_ptr(f"record_weights: outs[{2 * li}]", outs[2 * li], t,
                                         (wanted, *shape_w)))
            if shape_b is None:
                if outs[2 * li + 1] is not None:
                    raise ValueError(f"record_weights: outs[{2 * li + 1}] must be None (no bias)")
                ptrs.append(0)
            else:
                ptrs.append(<Py_ssize_t>_ptr(f"record_weights: outs[{2 * li + 1}]",
                                             outs[2 * li + 1], t, (wanted, *shape_b)))
        for li in range(self.nlayers):
            self.L[li].rw = <void*><Py_ssize_t>ptrs[2 * li]
            self.L[li].rb = <void*><Py_ssize_t>ptrs[2 * li + 1]
        self.c.wrec_every = every
        self.c.wrec_phase = phase
        return 0

    cdef int _prefetch_start(self, long long drawn) except -1:
        """Start the thread that draws the run's `drawn` orders ahead (prefetch.h)."""
        cdef Py_ssize_t n = self.c.n
        cdef long long slots = max(4, min(64, (1 << 17) // max(n, 1)))  # about 1 MB at most
        if self.ring is None or self.ring.shape[1] != n:
            self.ring = np.empty((slots, n), np.int64)  # once per data size, not per run
        if self.pf_state == NULL:
            self.pf_state = <mg_prefetch*>malloc(sizeof(mg_prefetch))
            if self.pf_state == NULL:
                raise MemoryError()
        if mg_prefetch_start(self.pf_state, <mg_perm_fn>_permutation, self.c.rng,
                             <cnp.int64_t*>cnp.PyArray_DATA(self.ring), n,
                             self.ring.shape[0], drawn):
            self.c.pf = self.pf_state
            self.c.pf_next = 0
        return 0

    cdef void _run_nogil(self, int t, void* px, void* py, cnp.int64_t* plab,
                         cnp.int64_t* pord, Py_ssize_t first, Py_ssize_t last,
                         Py_ssize_t per_epoch, double* pl, bint flush_denormal) noexcept:
        cdef unsigned int mode = 0
        with nogil:
            if flush_denormal:
                mode = mg_ftz_enter()
            if t == cnp.NPY_FLOAT32:
                _run(self.L, &self.c, <const float*>px, <const float*>py, plab, pord, first,
                     last, per_epoch, pl)
            else:
                _run(self.L, &self.c, <const double*>px, <const double*>py, plab, pord, first,
                     last, per_epoch, pl)
            if flush_denormal:
                mg_ftz_leave(mode)


def _simd_level(level=None):
    """The SIMD variant the vmath loops of this module run (see activations._simd_level)."""
    if level is not None:
        vm_set_simd_level(level)
    return vm_simd_level()
