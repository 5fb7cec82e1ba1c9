# The inner loops that more than one module runs: the kernel wrappers (matmul, activations,
# losses, optim) and the captured training step (trainer) call the same code, so the fast
# path computes exactly what the eager path does. Everything is `cdef inline ... nogil` over
# raw pointers: the callers check shapes, dtypes and contiguity (checks.pxd) before they get
# here.

cimport numpy as cnp
from libc.math cimport INFINITY, NAN, pow, sqrt
from libc.stdint cimport uintptr_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from vmath cimport (
    _log, _softmax_row, floating, vm_bias_add_f32, vm_bias_add_f64, vm_bias_grad_f32,
    vm_bias_grad_f64,
    vm_outer_f32, vm_outer_f64, vm_transpose_f32, vm_transpose_f64,
    vm_gemm_tiles_f32, vm_gemm_tiles_f64,
    vm_elu_bwd_f32, vm_elu_bwd_f64, vm_relu_bwd_f32, vm_relu_bwd_f64, vm_relu_fwd_f32,
    vm_relu_fwd_f64, vm_sigmoid_bwd_y_f32, vm_sigmoid_bwd_y_f64, vm_tanh_bwd_y_f32,
    vm_tanh_bwd_y_f64,
)

# Class labels are read as they come in either common width; other integer types are
# converted to int64 once checked.
ctypedef fused label_t:
    cnp.int32_t
    cnp.int64_t


# Below this many multiply-adds a product is cheaper as a plain loop than as a call into
# BLAS, whose entry costs more than the arithmetic of the tiny layers this library trains
# (a Dense(1) on a batch of 50 is 50 of them).
cdef enum:
    _SMALL_GEMM = 256

# Up to this many multiply-adds (and a packed B that fits _gemm's scratch) a product runs on
# vmath_gemm.h's tiles, with the bits of _gemm_small's rule; above, BLAS's blocking and
# threads pay for its packing (measured in csrc/README.md, matmul).
cdef enum:
    _TILE_GEMM = 1 << 18


# A product with B transposed (C = A B.T: a layer's input gradient dY W.T) whose B fits in
# this many doubles (16 KB) may take B transposed into a buffer on the stack and the plain
# form: OpenBLAS's small-matrix kernel for the transposed form (column-major "T", "N") sums
# along k, slowly for short sums, and the plain one runs whole vectors along n
# (_gemm_tb_copies; measured in csrc/README.md, matmul).
cdef enum:
    _TB_SCRATCH = 2048


cdef inline bint _gemm_tb_copies(int m, int n, int k, int size) noexcept nogil:
    """Whether C (m, n) := A B.T with B (n, k) of `size`-byte elements runs faster with B
    copied transposed: when B fits the buffer and the sums are short (k <= 16), or the rows of
    C fill a 64-byte vector and there are enough of them (m >= 16) to pay for the copy."""
    if <long long>n * k * size > _TB_SCRATCH * <int>sizeof(double):
        return False
    return k <= 16 or (m >= 16 and n * size >= 64)


cdef inline bint _gemm_tiles(long long m, long long n, long long k, int size) noexcept nogil:
    """Whether C (m, n) := op(A) op(B) of `size`-byte elements (alpha 1, beta 0) runs on
    vmath_gemm.h's tiles: at most _TILE_GEMM multiply-adds, C at least a vector wide (a
    narrower C would be mostly padding), and B packed within _gemm's scratch."""
    cdef long long lanes = 32 // size
    return (m * n * k <= _TILE_GEMM and n >= lanes
            and k * ((n + lanes - 1) // lanes * lanes) * size <= _TB_SCRATCH * <int>sizeof(double))


cdef inline void _gemm_small(bint ta, bint tb, int m, int n, int k, const floating* a, int lda,
                             const floating* b, int ldb, floating* c,
                             int ldc) noexcept nogil:
    """Row-major C (m, n) := op(A) op(B) by loops, the sum over k in order (not (ta and tb))."""
    cdef Py_ssize_t i, j, p
    cdef Py_ssize_t sa_i = 1 if ta else lda, sa_p = lda if ta else 1  # A[i, p] strides
    cdef Py_ssize_t sb_j = ldb if tb else 1, sb_p = 1 if tb else ldb  # B[p, j] strides
    cdef floating s
    # Each sum in a register: summed into C in memory, every step would wait for the store
    # of the one before (C could alias A or B).
    for i in range(m):
        for j in range(n):
            s = 0
            for p in range(k):
                s = s + a[i * sa_i + p * sa_p] * b[p * sb_p + j * sb_j]
            c[i * ldc + j] = s


cdef inline void _outer(const floating* a, Py_ssize_t sa, const floating* b, Py_ssize_t sb,
                        floating* c, int m, int n) noexcept nogil:
    """Row-major C (m, n) := a b.T of the columns a[i * sa], b[j * sb]: a product of inner
    dimension 1 (a layer of one input, or the gradient through a layer of one unit), one
    rounded product per element as BLAS gives it: BLAS treats it as any other product, at
    a cost far above its arithmetic (csrc/README.md, matmul); this loop is a few vectors."""
    cdef Py_ssize_t i, j
    if sb == 1:  # vectors of the widest SIMD level (vmath.h's VM_ROWS)
        if floating is float:
            if vm_outer_f32(a, sa, b, c, m, n):
                return
        else:
            if vm_outer_f64(a, sa, b, c, m, n):
                return
    for i in range(m):
        for j in range(n):
            c[i * n + j] = a[i * sa] * b[j * sb]


cdef inline void _gemm(bint ta, bint tb, int m, int n, int k, double alpha, const floating* a,
                       int lda, const floating* b, int ldb, double beta,
                       floating* c) noexcept nogil:
    """Row-major C (m, n) := alpha * op(A) op(B) + beta * C with op(X) = X.T where tX.

    A, B are row-major buffers with leading dimensions lda, ldb. BLAS is column-major, and a
    row-major buffer read column-major is its transpose, so ask it for C.T = op(B).T op(A).T:
    B's buffer as the first operand, A's as the second, m and n exchanged.
    """
    cdef int ldc = max(1, n)
    # 64 bytes to spare: the copy starts on a cache line wherever the stack is
    cdef double scratch[_TB_SCRATCH + 8]
    cdef floating* bt
    if (alpha == 1 and beta == 0 and not (ta and tb)
            and <long long>m * n * k <= _SMALL_GEMM):
        _gemm_small(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
        return
    if k == 1 and alpha == 1 and beta == 0:
        _outer(a, 1 if ta else lda, b, ldb if tb else 1, c, m, n)
        return
    if alpha == 1 and beta == 0 and _gemm_tiles(m, n, k, sizeof(floating)):
        bt = <floating*>((<uintptr_t>scratch + 63) & ~(<uintptr_t>63))
        if floating is float:
            vm_gemm_tiles_f32(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, bt)
        else:
            vm_gemm_tiles_f64(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, bt)
        return
    if tb and not ta and _gemm_tb_copies(m, n, k, sizeof(floating)):
        bt = <floating*>((<uintptr_t>scratch + 63) & ~(<uintptr_t>63))
        if floating is float:
            vm_transpose_f32(b, ldb, bt, n, k)
        else:
            vm_transpose_f64(b, ldb, bt, n, k)
        b = bt
        ldb = max(1, n)
        tb = False
    cdef char* trans_b = "T" if tb else "N"
    cdef char* trans_a = "T" if ta else "N"
    cdef floating fa = <floating>alpha
    cdef floating fb = <floating>beta
    # scipy's cython_blas declares no const; BLAS does not write the operands.
    if floating is float:
        sgemm(trans_b, trans_a, &n, &m, &k, &fa, <float*>b, &ldb, <float*>a, &lda, &fb, c, &ldc)
    else:
        dgemm(trans_b, trans_a, &n, &m, &k, &fa, <double*>b, &ldb, <double*>a, &lda, &fb, c, &ldc)


cdef inline void _bias_add(const floating* x, const floating* b, floating* y, Py_ssize_t n,
                           Py_ssize_t m) noexcept nogil:
    # vmath.h's VM_ROWS: compiled per SIMD level, like every loop the kernels share
    if floating is float:
        vm_bias_add_f32(x, b, y, n, m)
    else:
        vm_bias_add_f64(x, b, y, n, m)


cdef inline void _bias_grad(const floating* dy, floating* db, Py_ssize_t n,
                            Py_ssize_t m) noexcept nogil:
    # the column sums row by row, as numpy adds them (few columns: in registers)
    if floating is float:
        vm_bias_grad_f32(dy, db, n, m)
    else:
        vm_bias_grad_f64(dy, db, n, m)


cdef inline void _relu_fwd(const floating* x, floating* y, Py_ssize_t n,
                           double alpha) noexcept nogil:
    # Not max(x, 0): x <= 0 is false for nan, which then passes through (vmath_loops.h).
    if floating is float:
        vm_relu_fwd_f32(x, y, n, alpha)
    else:
        vm_relu_fwd_f64(x, y, n, alpha)


cdef inline void _relu_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n,
                           double alpha) noexcept nogil:
    if floating is float:
        vm_relu_bwd_f32(dy, y, dx, n, alpha)
    else:
        vm_relu_bwd_f64(dy, y, dx, n, alpha)


cdef inline void _leaky_relu_fwd(const floating* x, floating* y, Py_ssize_t n,
                                 double alpha) noexcept nogil:
    cdef floating a = <floating>alpha
    cdef floating nz = -0.0  # the additive identity: -0 + z is z for every z, even +-0
    cdef floating v
    cdef Py_ssize_t i
    if not a - a == 0:  # alpha is inf or nan, and 0 * alpha nan: no trick below
        for i in range(n):
            y[i] = x[i] if x[i] > 0 else x[i] * a
        return
    for i in range(n):
        # (x or -0) + alpha * (0 or x): exactly x or alpha * x, signed zeros and nan included
        # (for a finite alpha). gcc vectorizes selects of plain values, but keeps
        # `x if x > 0 else alpha * x` a branch (the product might raise an FP flag), which
        # random signs mispredict (csrc/README.md, activations).
        v = x[i]
        y[i] = (v if v > 0 else nz) + a * (0 if v > 0 else v)


cdef inline void _leaky_relu_bwd(const floating* dy, const floating* x, floating* dx, Py_ssize_t n,
                                 double alpha) noexcept nogil:
    cdef floating a = <floating>alpha
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = dy[i] * (1 if x[i] > 0 else a)  # a select, not a branch: see _leaky_relu_fwd


cdef inline void _elu_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n,
                          double alpha) noexcept nogil:
    # For x <= 0, y = alpha * (exp(x) - 1) so y' = alpha * exp(x) = y + alpha (vmath_loops.h)
    if floating is float:
        vm_elu_bwd_f32(dy, y, dx, n, alpha)
    else:
        vm_elu_bwd_f64(dy, y, dx, n, alpha)


cdef inline void _sigmoid_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n,
                              double alpha) noexcept nogil:
    if floating is float:
        vm_sigmoid_bwd_y_f32(dy, y, dx, n, alpha)
    else:
        vm_sigmoid_bwd_y_f64(dy, y, dx, n, alpha)


cdef inline void _tanh_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n,
                           double alpha) noexcept nogil:
    if floating is float:
        vm_tanh_bwd_y_f32(dy, y, dx, n, alpha)
    else:
        vm_tanh_bwd_y_f64(dy, y, dx, n, alpha)


cdef inline void _step_fwd(const floating* x, floating* y, Py_ssize_t n,
                           double alpha) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        # Both comparisons are false for nan, which then passes through.
        y[i] = 1 if x[i] >= 0 else (0 if x[i] < 0 else x[i])


cdef inline void _step_bwd(const floating* dy, const floating* x, floating* dx, Py_ssize_t n,
                           double alpha) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = 0


cdef inline void _softmax_xent_fwd(const floating* z, const floating* t, floating* p,
                                   floating* loss, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating m, s, lse
    cdef double acc
    for i in range(n):
        if c == 0:
            loss[i] = 0
            continue
        # log_softmax = (z - m) - log(sum of exp(z - m)), with m the max
        s = _softmax_row(z, p, c, &m)
        lse = _log(s)
        acc = 0
        for j in range(c):
            # 0 * log p is 0 even where p underflowed to 0 (log p = -inf).
            if t[j] != 0:
                acc += t[j] * ((z[j] - m) - lse)
        loss[i] = <floating>-acc
        z += c
        t += c
        p += c


cdef inline void _softmax_xent_bwd(const floating* dloss, const floating* p, const floating* t,
                                   floating* dz, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating d, ts
    cdef double acc
    for i in range(n):
        acc = 0
        for j in range(c):
            acc += t[j]
        ts = <floating>acc
        d = dloss[i]
        for j in range(c):
            dz[j] = d * (p[j] * ts - t[j])
        p += c
        t += c
        dz += c


cdef inline void _sparse_xent_fwd(const floating* z, const label_t* labels, floating* p,
                                  floating* loss, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating m, s, zk
    for i in range(n):
        zk = z[labels[i]]  # read first: p may be z itself
        s = _softmax_row(z, p, c, &m)
        loss[i] = -((zk - m) - _log(s))
        z += c
        p += c


cdef inline void _sparse_xent_bwd(const floating* dloss, const floating* p, const label_t* labels,
                                  floating* dz, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i, j, k
    cdef floating d, pk
    for i in range(n):
        d = dloss[i]
        k = labels[i]
        pk = p[k]  # read first: dz may be p itself
        for j in range(c):
            dz[j] = p[j] * d
        dz[k] = (pk - <floating>1) * d
        p += c
        dz += c


cdef inline double _sum_sq_diff(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """sum((a - b)^2) in double, four partial sums: more accurate, and not latency bound."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef double d0, d1, d2, d3
    cdef Py_ssize_t i = 0
    while i + 4 <= n:
        d0 = a[i] - b[i]
        d1 = a[i + 1] - b[i + 1]
        d2 = a[i + 2] - b[i + 2]
        d3 = a[i + 3] - b[i + 3]
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
        i += 4
    while i < n:
        d0 = a[i] - b[i]
        s0 += d0 * d0
        i += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _mse_bwd(const floating* a, const floating* b, floating* d, Py_ssize_t n,
                          double scale) noexcept nogil:
    cdef floating f = <floating>scale
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = (a[i] - b[i]) * f


# --------------------------------------------------------------------------- sums
# Shared by the captured step (the mean loss, the weight penalties) and elementwise.pyx's
# sum_all: one copy of numpy's summation order.

cdef enum:
    R_SUM, R_ABS, R_SQUARE  # what _pairwise_sum sums: the values, their |.|, their squares


cdef inline floating _summand(floating v, int how) noexcept nogil:
    if how == R_ABS:
        return v if v > 0 else -v if v < 0 else 0 if v == 0 else v  # |-0.0| is 0.0
    if how == R_SQUARE:
        return v * v
    return v


cdef inline floating _pairwise_sum(const floating* a, Py_ssize_t n, int how) noexcept nogil:
    """The sum of a[:n] (or of their |.| or squares) as numpy's pairwise summation adds them
    (np.add.reduce on a contiguous array: eight partial sums in blocks of up to 128, halves
    of a multiple of eight above that), in the dtype of a."""
    cdef Py_ssize_t i, j, n2
    cdef floating r[8]
    cdef floating res
    if n == 0:
        return 0  # numpy's sum of nothing: +0.0
    if n < 8:
        res = -0.0  # numpy's start: a sum of -0.0 alone stays -0.0
        for i in range(n):
            res = res + _summand(a[i], how)
        return res
    if n <= 128:
        for j in range(8):
            r[j] = _summand(a[j], how)
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] = r[j] + _summand(a[i + j], how)
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + _summand(a[i], how)
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2, how) + _pairwise_sum(a + n2, n - n2, how)


cdef extern from "optim_loops.h" nogil:
    void vo_sgd_f32(float* p, const float* grad, Py_ssize_t n, double lr, double wd,
                    double scale, double clipvalue)
    void vo_sgd_f64(double* p, const double* grad, Py_ssize_t n, double lr, double wd,
                    double scale, double clipvalue)
    void vo_sgd_momentum_f32(float* p, const float* grad, float* vel, Py_ssize_t n, double lr,
                             double momentum, int nesterov, double wd, double scale,
                             double clipvalue)
    void vo_sgd_momentum_f64(double* p, const double* grad, double* vel, Py_ssize_t n,
                             double lr, double momentum, int nesterov, double wd, double scale,
                             double clipvalue)
    void vo_adam_f32(float* p, const float* grad, float* m, float* v, float* vhat, Py_ssize_t n,
                     double lr, double alpha, double beta_1, double beta_2, double epsilon,
                     double wd, double scale, double clipvalue)
    void vo_adam_f64(double* p, const double* grad, double* m, double* v, double* vhat,
                     Py_ssize_t n, double lr, double alpha, double beta_1, double beta_2,
                     double epsilon, double wd, double scale, double clipvalue)
    void vo_rmsprop_f32(float* p, const float* grad, float* vel, float* mom, float* avg,
                        Py_ssize_t n, double lr, double rho, double epsilon, double momentum,
                        double wd, double scale, double clipvalue)
    void vo_rmsprop_f64(double* p, const double* grad, double* vel, double* mom, double* avg,
                        Py_ssize_t n, double lr, double rho, double epsilon, double momentum,
                        double wd, double scale, double clipvalue)
    void vo_adagrad_f32(float* p, const float* grad, float* acc, Py_ssize_t n, double lr,
                        double epsilon, double wd, double scale, double clipvalue)
    void vo_adagrad_f64(double* p, const double* grad, double* acc, Py_ssize_t n, double lr,
                        double epsilon, double wd, double scale, double clipvalue)


# The updates (optim_loops.h: compiled per SIMD level, picked at run time; the rules are
# written out there). NULL state pointers switch off what they hold (AMSGrad's vhat,
# RMSprop's momentum and centered average).

cdef inline void _sgd(floating* p, const floating* grad, Py_ssize_t n, double lr, double wd,
                      double scale, double clipvalue) noexcept nogil:
    if floating is float:
        vo_sgd_f32(p, grad, n, lr, wd, scale, clipvalue)
    else:
        vo_sgd_f64(p, grad, n, lr, wd, scale, clipvalue)


cdef inline void _sgd_momentum(floating* p, const floating* grad, floating* vel, Py_ssize_t n,
                               double lr, double momentum, bint nesterov, double wd, double scale,
                               double clipvalue) noexcept nogil:
    if floating is float:
        vo_sgd_momentum_f32(p, grad, vel, n, lr, momentum, nesterov, wd, scale, clipvalue)
    else:
        vo_sgd_momentum_f64(p, grad, vel, n, lr, momentum, nesterov, wd, scale, clipvalue)


cdef inline double _adam_alpha(double lr, double beta_1, double beta_2,
                               double step) noexcept nogil:
    """Adam's bias-corrected step size at step t >= 1 (1-based): lr sqrt(1 - beta_2^t) /
    (1 - beta_1^t). optim.pyx and the captured step use this one; _reference.adam_update
    mirrors it in Python."""
    return lr * sqrt(1 - pow(beta_2, step)) / (1 - pow(beta_1, step))


cdef inline void _adam(floating* p, const floating* grad, floating* m, floating* v, floating* vhat,
                       Py_ssize_t n, double lr, double alpha, double beta_1, double beta_2,
                       double epsilon, double wd, double scale, double clipvalue) noexcept nogil:
    if floating is float:
        vo_adam_f32(p, grad, m, v, vhat, n, lr, alpha, beta_1, beta_2, epsilon, wd, scale,
                    clipvalue)
    else:
        vo_adam_f64(p, grad, m, v, vhat, n, lr, alpha, beta_1, beta_2, epsilon, wd, scale,
                    clipvalue)


cdef inline void _rmsprop(floating* p, const floating* grad, floating* vel, floating* mom,
                          floating* avg, Py_ssize_t n, double lr, double rho, double epsilon,
                          double momentum, double wd, double scale,
                          double clipvalue) noexcept nogil:
    if floating is float:
        vo_rmsprop_f32(p, grad, vel, mom, avg, n, lr, rho, epsilon, momentum, wd, scale,
                       clipvalue)
    else:
        vo_rmsprop_f64(p, grad, vel, mom, avg, n, lr, rho, epsilon, momentum, wd, scale,
                       clipvalue)


cdef inline void _adagrad(floating* p, const floating* grad, floating* acc, Py_ssize_t n,
                          double lr, double epsilon, double wd, double scale,
                          double clipvalue) noexcept nogil:
    if floating is float:
        vo_adagrad_f32(p, grad, acc, n, lr, epsilon, wd, scale, clipvalue)
    else:
        vo_adagrad_f64(p, grad, acc, n, lr, epsilon, wd, scale, clipvalue)


cdef inline double _sum_squares(const floating* a, Py_ssize_t n) noexcept nogil:
    # Accumulated in double: a float32 norm of many elements keeps its digits.
    cdef double s = 0, x
    cdef Py_ssize_t i
    for i in range(n):
        x = a[i]
        s += x * x
    return s


cdef inline double _clip_scale(double sum_squares, double clip) noexcept nogil:
    """The factor that brings a gradient of this squared norm down to norm `clip` (clipnorm,
    global_clipnorm); nan when the norm is not finite, so nan is never hidden. Mirrors
    optimizers._clip_scale, which the eager step uses."""
    cdef double norm = sqrt(sum_squares)
    if norm <= clip:
        return 1.0
    if norm < INFINITY:
        return clip / norm
    return NAN
