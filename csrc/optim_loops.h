/* The optimizers' fused update loops, compiled per SIMD level and picked at run time as in
 * vmath.h (the eager kernels of optim.pyx and the captured step call the same functions, so
 * both give the same bits on one machine).
 *
 * Common to every update, in Keras' order: g := clip(grad * scale, -clipvalue, clipvalue)
 * (nan passes through), then p := p - p * (weight_decay * lr) when weight_decay != 0, then
 * the rule. A parameter of a wide layer has 10^5-10^6 values: Adam's square root and
 * division per value ran 4 wide in the SSE2 build, 16 wide with AVX-512.
 *
 * No FMA contraction (VM_EXACT): every variant does the reference's float operations one by
 * one and matches microgradnet/_reference.py to the bit (tests/test_optim_kernels.py).
 */
#ifndef MICROGRADNET_OPTIM_LOOPS_H
#define MICROGRADNET_OPTIM_LOOPS_H

#include "vmath.h"

#define VO_CLIP(g, cv) ((g) < -(cv) ? -(cv) : ((g) > (cv) ? (cv) : (g)))

#define VO_DEFINE(VAR, T, SQRT, TARGET)                                                    \
    VM_UNUSED TARGET VM_EXACT static void vo_sgd_##VAR(T *p, const T *grad, Py_ssize_t n, double lr, \
                                              double wd, double scale, double clipvalue)   \
    {                                                                                     \
        const T flr = (T)lr, fwd = (T)(wd * lr), fs = (T)scale, cv = (T)clipvalue;        \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            T g = grad[i] * fs, w = p[i];                                                 \
            g = VO_CLIP(g, cv);                                                           \
            if (wd != 0)                                                                  \
                w = w - w * fwd;                                                          \
            p[i] = w - flr * g;                                                           \
        }                                                                                 \
    }                                                                                     \
    VM_UNUSED TARGET VM_EXACT static void vo_sgd_momentum_##VAR(                                    \
        T *p, const T *grad, T *vel, Py_ssize_t n, double lr, double momentum,            \
        int nesterov, double wd, double scale, double clipvalue)                          \
    {                                                                                     \
        const T flr = (T)lr, fm = (T)momentum, fwd = (T)(wd * lr), fs = (T)scale;         \
        const T cv = (T)clipvalue;                                                        \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            T g = grad[i] * fs, w = p[i], v;                                              \
            g = VO_CLIP(g, cv);                                                           \
            if (wd != 0)                                                                  \
                w = w - w * fwd;                                                          \
            v = fm * vel[i] - flr * g;                                                    \
            vel[i] = v;                                                                   \
            p[i] = nesterov ? w + (fm * v - flr * g) : w + v;                             \
        }                                                                                 \
    }                                                                                     \
    VM_UNUSED TARGET VM_EXACT static void vo_adam_##VAR(                                            \
        T *p, const T *grad, T *m, T *v, T *vhat, Py_ssize_t n, double lr, double alpha,  \
        double beta_1, double beta_2, double epsilon, double wd, double scale,            \
        double clipvalue)                                                                 \
    {                                                                                     \
        const T fa = (T)alpha, feps = (T)epsilon, fwd = (T)(wd * lr);                     \
        const T c1 = (T)(1 - beta_1), c2 = (T)(1 - beta_2), fs = (T)scale;                \
        const T cv = (T)clipvalue;                                                        \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            T g = grad[i] * fs, w = p[i], mi = m[i], vi = v[i];                           \
            g = VO_CLIP(g, cv);                                                           \
            if (wd != 0)                                                                  \
                w = w - w * fwd;                                                          \
            mi = mi + (g - mi) * c1;                                                      \
            m[i] = mi;                                                                    \
            vi = vi + (g * g - vi) * c2;                                                  \
            v[i] = vi;                                                                    \
            if (vhat != NULL) { /* max(vhat, v), nan winning as numpy's maximum */        \
                T vh = vhat[i];                                                           \
                vh = (vi > vh || vi != vi) ? vi : vh;                                     \
                vhat[i] = vh;                                                             \
                vi = vh;                                                                  \
            }                                                                             \
            p[i] = w - (mi * fa) / (SQRT(vi) + feps);                                     \
        }                                                                                 \
    }                                                                                     \
    VM_UNUSED TARGET VM_EXACT static void vo_rmsprop_##VAR(                                         \
        T *p, const T *grad, T *vel, T *mom, T *avg, Py_ssize_t n, double lr, double rho, \
        double epsilon, double momentum, double wd, double scale, double clipvalue)       \
    {                                                                                     \
        const T flr = (T)lr, frho = (T)rho, c = (T)(1 - rho), feps = (T)epsilon;          \
        const T fm = (T)momentum, fwd = (T)(wd * lr), fs = (T)scale, cv = (T)clipvalue;   \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            T g = grad[i] * fs, w = p[i], vi, denom, inc;                                 \
            g = VO_CLIP(g, cv);                                                           \
            if (wd != 0)                                                                  \
                w = w - w * fwd;                                                          \
            vi = frho * vel[i] + c * (g * g);                                             \
            vel[i] = vi;                                                                  \
            if (avg != NULL) {                                                            \
                T ai = frho * avg[i] + c * g;                                             \
                avg[i] = ai;                                                              \
                denom = (vi - ai * ai) + feps;                                            \
            } else {                                                                      \
                denom = vi + feps;                                                        \
            }                                                                             \
            inc = (flr * g) / SQRT(denom);                                                \
            if (mom != NULL) {                                                            \
                inc = fm * mom[i] + inc;                                                  \
                mom[i] = inc;                                                             \
            }                                                                             \
            p[i] = w - inc;                                                               \
        }                                                                                 \
    }                                                                                     \
    VM_UNUSED TARGET VM_EXACT static void vo_adagrad_##VAR(T *p, const T *grad, T *acc, Py_ssize_t n, \
                                                  double lr, double epsilon, double wd,    \
                                                  double scale, double clipvalue)          \
    {                                                                                     \
        const T flr = (T)lr, feps = (T)epsilon, fwd = (T)(wd * lr), fs = (T)scale;        \
        const T cv = (T)clipvalue;                                                        \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            T g = grad[i] * fs, w = p[i], a;                                              \
            g = VO_CLIP(g, cv);                                                           \
            if (wd != 0)                                                                  \
                w = w - w * fwd;                                                          \
            a = acc[i] + g * g;                                                           \
            acc[i] = a;                                                                   \
            p[i] = w - (flr * g) / SQRT(a + feps);                                        \
        }                                                                                 \
    }

VO_DEFINE(f32_base, float, sqrtf, )
VO_DEFINE(f64_base, double, sqrt, )
#ifdef VM_X86_DISPATCH
#  define VO_AVX2 __attribute__((target("avx2,fma")))
#  define VO_AVX512 \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")))
VO_DEFINE(f32_avx2, float, sqrtf, VO_AVX2)
VO_DEFINE(f64_avx2, double, sqrt, VO_AVX2)
VO_DEFINE(f32_avx512, float, sqrtf, VO_AVX512)
VO_DEFINE(f64_avx512, double, sqrt, VO_AVX512)
#  define VO_PICK(name, T) \
    (vm_simd_level() == 2 ? name##_##T##_avx512 : vm_simd_level() ? name##_##T##_avx2 \
                                                                  : name##_##T##_base)
#else
#  define VO_PICK(name, T) name##_##T##_base
#endif

/* The entry points: the variant picked at run time. */
#define VO_ENTRIES(T, SUF)                                                                 \
    VM_UNUSED static void vo_sgd_##SUF(T *p, const T *grad, Py_ssize_t n, double lr,       \
                                       double wd, double scale, double clipvalue)         \
    {                                                                                     \
        VO_PICK(vo_sgd, SUF)(p, grad, n, lr, wd, scale, clipvalue);                       \
    }                                                                                     \
    VM_UNUSED static void vo_sgd_momentum_##SUF(T *p, const T *grad, T *vel, Py_ssize_t n, \
                                                double lr, double momentum, int nesterov,  \
                                                double wd, double scale, double clipvalue) \
    {                                                                                     \
        VO_PICK(vo_sgd_momentum, SUF)(p, grad, vel, n, lr, momentum, nesterov, wd, scale,  \
                                      clipvalue);                                         \
    }                                                                                     \
    VM_UNUSED static void vo_adam_##SUF(T *p, const T *grad, T *m, T *v, T *vhat,          \
                                        Py_ssize_t n, double lr, double alpha,            \
                                        double beta_1, double beta_2, double epsilon,     \
                                        double wd, double scale, double clipvalue)        \
    {                                                                                     \
        VO_PICK(vo_adam, SUF)(p, grad, m, v, vhat, n, lr, alpha, beta_1, beta_2, epsilon,  \
                              wd, scale, clipvalue);                                      \
    }                                                                                     \
    VM_UNUSED static void vo_rmsprop_##SUF(T *p, const T *grad, T *vel, T *mom, T *avg,    \
                                           Py_ssize_t n, double lr, double rho,           \
                                           double epsilon, double momentum, double wd,    \
                                           double scale, double clipvalue)                \
    {                                                                                     \
        VO_PICK(vo_rmsprop, SUF)(p, grad, vel, mom, avg, n, lr, rho, epsilon, momentum,    \
                                 wd, scale, clipvalue);                                   \
    }                                                                                     \
    VM_UNUSED static void vo_adagrad_##SUF(T *p, const T *grad, T *acc, Py_ssize_t n,      \
                                           double lr, double epsilon, double wd,          \
                                           double scale, double clipvalue)                \
    {                                                                                     \
        VO_PICK(vo_adagrad, SUF)(p, grad, acc, n, lr, epsilon, wd, scale, clipvalue);      \
    }

VO_ENTRIES(float, f32)
VO_ENTRIES(double, f64)

#endif /* MICROGRADNET_OPTIM_LOOPS_H */
