/* Vectorizable elementary functions for the kernels, and the elementwise loops that use them.
 *
 * Every function is branch-free straight-line arithmetic on one element (selects, no calls,
 * no tables), so that gcc vectorizes a loop over an array into SIMD code. No -ffast-math is
 * needed or allowed: NaN in gives NaN out, +-inf give the function's limits, signed zeros
 * are kept. Max errors over a dense float32 sweep are in tests/test_vmath.py, which checks them.
 *
 * Technique (float and double alike):
 *   exp     n = round(x / ln2) by adding 1.5 * 2^23 (2^52); r = x - n ln2 in two parts
 *           (Cody-Waite); exp(r) = 1 + r + r^2 q(r), q a minimax polynomial (Taylor in double);
 *           times 2^n built from integer bits in two factors 2^(n/2) 2^(n - n/2), so that
 *           results that underflow to subnormals or 0, or overflow to inf, round once.
 *   expm1   the same reduction; 2^n expm1(r) + (2^n - 1), no cancellation near 0.
 *   log1p   u = 1 + x = 2^k m with m in [sqrt(1/2), sqrt(2)); log(m) by a polynomial in
 *           f = m - 1 (float) or in s = f / (2 + f) (double, fdlibm's); plus k ln2 in two
 *           parts and the rounding error of 1 + x, (x - (u - 1)) / u.
 *   tanh    |t| = e / (e + 2) with e = expm1(2|x|), the sign restored; 1 beyond |x| = 10 (20).
 *   sigmoid e = exp(-|x|); 1 / (1 + e) or e / (1 + e): never overflows.
 *   gelu    (float data) Phi(-t) = e^(-t^2/2) (1 + v p(v)) / (t + c) for t = |x| <= 15, with
 *           v = 2t / (t + c) - m and p a degree-8 polynomial fitted to 1.4e-8 relative error
 *           (m where the leading 1 is the whole value, so the rounding errors of v p(v) count
 *           in proportion); gelu(x) = max(x, -0) - t Phi(-t) and gelu'(x) = -g or 1 + g,
 *           g = t phi(t) - Phi(-t), from the same exp and polynomial; one division.
 *           t^2/2 = th^2/2 + tl (t + th)/2 with th = t truncated to 12 bits: the first part
 *           exact, the second small (< 2^-10 t^2/2), both fed into the exp reduction, so that
 *           e^(-t^2/2) keeps its relative accuracy down to the subnormals (t^2/2 rounded to
 *           float would cost up to ~t^2/4 ulps); its 2^n is applied as 2^(n+64), 2^-64 last,
 *           so that subnormal results round once. Beyond 15, t Phi(-t) and t phi(t) are 0 in
 *           float. Double data: libm's erfc.
 *   erfc    (float, the check of gelu's Phi) 2 Phi(-sqrt2 |x|), e^(-x^2) from x itself; 1 - erf
 *           for |x| < 0.3 (erf by its Taylor series), where the result is near 1.
 *
 * Runtime dispatch: the loops at the end are compiled three times on x86-64 with gcc (clang
 * should do the same; untested): for the baseline (SSE2), with
 * __attribute__((target("avx2,fma"))) and with AVX-512 (F, VL, DQ, BW) and 512-bit vectors;
 * elsewhere only the plain copy is built. The first call picks the best copy the CPU (and
 * OS) support. No -march flag is needed, so a build runs on any x86-64.
 * vm_set_simd_level(0, 1 or 2) forces a copy (for tests and benchmarks).
 * The FMA copies contract a * b + c into one rounding, so their results may differ from the
 * baseline's in the last bit; all three are tested.
 */
#ifndef MICROGRADNET_VMATH_H
#define MICROGRADNET_VMATH_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#  define VM_INLINE static inline __attribute__((always_inline))
#  define VM_UNUSED __attribute__((unused))
#else
#  define VM_INLINE static __inline
#  define VM_UNUSED
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#  define VM_X86_DISPATCH 1
#endif

/* --------------------------------------------------------------------------- bits */

VM_INLINE uint32_t vm_bits_f(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
VM_INLINE float vm_from_bits_f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
VM_INLINE uint64_t vm_bits_d(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
VM_INLINE double vm_from_bits_d(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* The clamps below are written `x > hi ? hi : x`: false for NaN, which passes through. */

/* max(a, c) for a = |x| (or nan) and c > 0: the bit patterns of such floats order as the
 * values do, nan above all, so an integer max (one instruction, no masks) keeps nan. */
VM_INLINE float vm_atleast_f(float a, float c)
{
    uint32_t ua = vm_bits_f(a), uc = vm_bits_f(c);
    return vm_from_bits_f(ua > uc ? ua : uc);
}

/* --------------------------------------------------------------------------- float */

#define VM_MAGIC_F 12582912.0f        /* 1.5 * 2^23: x + magic rounds x to an integer */
#define VM_LOG2E_F 1.44269502f
#define VM_LN2_HI_F 0.693145752f      /* 16 significant bits: n * hi is exact */
#define VM_LN2_LO_F 1.42860677e-06f

/* (expm1(r) - r) / r^2 on [-ln2/2, ln2/2], minimax for relative error 1.3e-8 */
VM_INLINE float vm_expq_f(float r)
{
    float q = 0.00138825201f;
    q = q * r + 0.008366514f;
    q = q * r + 0.0416672006f;
    q = q * r + 0.166665435f;
    return q * r + 0.49999997f;
}

/* x = n ln2 + r; returns r and sets *t to x / ln2 + magic (n sits in its low bits) */
VM_INLINE float vm_reduce_f(float x, float *t)
{
    float tt = x * VM_LOG2E_F + VM_MAGIC_F;
    float n = tt - VM_MAGIC_F;
    *t = tt;
    return (x - n * VM_LN2_HI_F) - n * VM_LN2_LO_F;
}

/* exp(x) = (the result) * *s2 for x <= 89 (or nan): multiply by *s2 last to round once
 * where exp(x) underflows. Without the upper clamp: the activations take exp(-|x|). */
VM_INLINE float vm_expf_split_lo(float x, float *s2)
{
    float t, r, p;
    uint32_t m, e1;
    /* exp(-104) = 0 in float; -150 keeps x e^x (silu) right below -104 */
    x = x < -150.0f ? -150.0f : x;
    r = vm_reduce_f(x, &t);
    p = 1.0f + (r + r * r * vm_expq_f(r));
    /* 2^n = 2^e1 2^(n - e1): both factors normal for n in [-217, 128] */
    m = vm_bits_f(t) - vm_bits_f(VM_MAGIC_F) + 254u;    /* n + 254 >= 0 */
    e1 = m >> 1;
    *s2 = vm_from_bits_f((m - e1) << 23);
    return p * vm_from_bits_f(e1 << 23);
}

VM_INLINE float vm_expf_lo(float x)
{
    float s2;
    float p = vm_expf_split_lo(x, &s2);
    return p * s2;
}

/* exp(x) = (the result) * *s2, any x (exp(89) = inf in float) */
VM_INLINE float vm_expf_split(float x, float *s2)
{
    return vm_expf_split_lo(x > 89.0f ? 89.0f : x, s2);
}

VM_INLINE float vm_expf(float x)
{
    float s2;
    float p = vm_expf_split(x, &s2);
    return p * s2;
}

/* expm1 of x in [-30, 89] (anything else gives garbage: the callers select it away) */
VM_INLINE float vm_expm1f_core(float x)
{
    float t, r, p, u;
    r = vm_reduce_f(x, &t);
    p = r + r * r * vm_expq_f(r);
    /* u = 2^(n-1), normal for n in [-43, 128]; 2^n p + 2^n - 1 = 2 (u p + (u - 1/2)) */
    u = vm_from_bits_f((vm_bits_f(t) - vm_bits_f(VM_MAGIC_F) + 126u) << 23);
    return (u * p + (u - 0.5f)) * 2.0f;
}

VM_INLINE float vm_expm1f(float x)
{
    float xc = x > 89.0f ? 89.0f : x;
    xc = xc < -30.0f ? -30.0f : xc;   /* expm1(-30) = -1 in float */
    return x == 0.0f ? x : vm_expm1f_core(xc);   /* keeps -0 */
}

VM_INLINE float vm_log1pf(float x)
{
    float u = 1.0f + x;
    /* u = 2^k m, m in [sqrt(1/2), sqrt(2)) */
    uint32_t iu = vm_bits_f(u) + (0x3f800000u - 0x3f3504f3u);
    float k = (float)((int32_t)(iu >> 23) - 127);
    float m = vm_from_bits_f((iu & 0x007fffffu) + 0x3f3504f3u);
    float f = m - 1.0f;
    /* the rounding error of u = 1 + x (exactly, in either form), relative to u */
    float c = (u >= 2.0f ? 1.0f - (u - x) : x - (u - 1.0f)) / u;
    float z = f * f;
    /* log(1 + f) = f - f^2/2 + f^3 P(f), P minimax for relative error 5.8e-9 */
    float p = -0.0763442963f, y;
    p = p * f + 0.127615497f;
    p = p * f - 0.131601945f;
    p = p * f + 0.142017618f;
    p = p * f - 0.166233569f;
    p = p * f + 0.200012267f;
    p = p * f - 0.250008225f;
    p = p * f + 0.333333313f;
    y = k * VM_LN2_HI_F + ((f - (0.5f * z - f * z * p)) + (k * VM_LN2_LO_F + c));
    /* x <= -1, inf, nan and the sign of 0 */
    /* inf and nan, the sign of 0, x <= -1: one plain select each (vectorizes) */
    y = x < INFINITY ? y : x;
    y = x == 0.0f ? x : y;
    y = x == -1.0f ? -INFINITY : y;
    return x < -1.0f ? NAN : y;
}

VM_INLINE float vm_tanhf(float x)
{
    float a = fabsf(x);
    /* tanh(x) = x below 2^-12 (selected below); a raised to 2^-12 keeps subnormals out of
     * the arithmetic, where every vector instruction with one takes a microcode assist (a
     * dead unit's inputs, after long training) */
    float e = vm_expm1f_core(2.0f * vm_atleast_f(a, 0x1p-12f));
    float t = e / (e + 2.0f);
    /* tanh(10) = 1 in float; beyond, 2a may leave expm1's range (and inf, nan: garbage) */
    t = a > 10.0f ? 1.0f : t;
    t = a < 0x1p-12f ? a : t;
    return copysignf(t, x);
}

VM_INLINE float vm_sigmoidf(float x)
{
    /* |x| raised to 2^-26: sigmoid is 1/2 there all the same, and no subnormal enters the
     * arithmetic (see vm_tanhf) */
    float e = vm_expf_lo(-vm_atleast_f(fabsf(x), 0x1p-26f));
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* --------------------------------------------------------------------------- double */

#define VM_MAGIC_D 6755399441055744.0  /* 1.5 * 2^52 */
#define VM_LOG2E_D 1.4426950408889634
#define VM_LN2_HI_D 6.93147180369123816490e-01  /* fdlibm's: n * hi is exact */
#define VM_LN2_LO_D 1.90821492927058770002e-10

/* (expm1(r) - r) / r^2 on [-ln2/2, ln2/2]: Taylor to r^13, error < 1e-17 */
VM_INLINE double vm_expq_d(double r)
{
    double q = 1.6059043836821613e-10;
    q = q * r + 2.08767569878681e-09;
    q = q * r + 2.505210838544172e-08;
    q = q * r + 2.7557319223985888e-07;
    q = q * r + 2.7557319223985893e-06;
    q = q * r + 2.4801587301587302e-05;
    q = q * r + 0.00019841269841269841;
    q = q * r + 0.0013888888888888889;
    q = q * r + 0.0083333333333333332;
    q = q * r + 0.041666666666666664;
    q = q * r + 0.16666666666666666;
    return q * r + 0.5;
}

VM_INLINE double vm_reduce_d(double x, double *t)
{
    double tt = x * VM_LOG2E_D + VM_MAGIC_D;
    double n = tt - VM_MAGIC_D;
    *t = tt;
    return (x - n * VM_LN2_HI_D) - n * VM_LN2_LO_D;
}

VM_INLINE double vm_exp(double x)
{
    double t, r, p;
    uint64_t m, e1;
    x = x > 710.0 ? 710.0 : x;        /* exp(710) = inf, exp(-746) = 0 */
    x = x < -746.0 ? -746.0 : x;
    r = vm_reduce_d(x, &t);
    p = 1.0 + (r + r * r * vm_expq_d(r));
    m = vm_bits_d(t) - vm_bits_d(VM_MAGIC_D) + 2046u;   /* n + 2046 >= 0 */
    e1 = m >> 1;
    return p * vm_from_bits_d(e1 << 52) * vm_from_bits_d((m - e1) << 52);
}

VM_INLINE double vm_expm1(double x)
{
    double t, r, p, u, y;
    double xc = x > 710.0 ? 710.0 : x;
    xc = xc < -40.0 ? -40.0 : xc;     /* expm1(-40) = -1 in double */
    r = vm_reduce_d(xc, &t);
    p = r + r * r * vm_expq_d(r);
    u = vm_from_bits_d((vm_bits_d(t) - vm_bits_d(VM_MAGIC_D) + 1022u) << 52);
    y = (u * p + (u - 0.5)) * 2.0;
    return x == 0.0 ? x : y;
}

VM_INLINE double vm_log1p(double x)
{
    double u = 1.0 + x;
    uint64_t iu = vm_bits_d(u) + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
    /* k as a double through 2^52 + e (AVX2 has no int64 -> double conversion) */
    double k = vm_from_bits_d(0x4330000000000000ull | (iu >> 52)) - (4503599627370496.0 + 1023.0);
    double m = vm_from_bits_d((iu & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
    double f = m - 1.0;
    double c = (u >= 2.0 ? 1.0 - (u - x) : x - (u - 1.0)) / u;
    /* fdlibm: log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f) */
    double s = f / (2.0 + f);
    double z = s * s, w = z * z;
    double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01
                + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01
                + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    double hfsq = 0.5 * f * f;
    double y = k * VM_LN2_HI_D + ((f - (hfsq - s * (hfsq + (t1 + t2)))) + (k * VM_LN2_LO_D + c));
    /* inf and nan, the sign of 0, x <= -1: one plain select each (vectorizes) */
    y = x < INFINITY ? y : x;
    y = x == 0.0 ? x : y;
    y = x == -1.0 ? -INFINITY : y;
    return x < -1.0 ? NAN : y;
}

VM_INLINE double vm_tanh(double x)
{
    double a = fabs(x);
    double e = vm_expm1(2.0 * a);
    double t = e / (e + 2.0);
    t = a > 20.0 ? 1.0 : t;
    return copysign(t, x);
}

VM_INLINE double vm_sigmoid(double x)
{
    double e = vm_exp(-fabs(x));
    double r = 1.0 / (1.0 + e);
    return x >= 0.0 ? r : e * r;
}

/* --------------------------------------------------------------------------- gelu */

#define VM_SQRT1_2 0.70710678118654752440
#define VM_INV_SQRT_2PI 0.39894228040143267794

/* e^(-k a^2) = (1 + *y) 2^n for 0 <= a <= 15 (or NaN), k = 1 or 1/2: returns 2^(n + 64), a
 * normal float for all these a, so that a caller who applies it and 2^-64 last rounds a
 * subnormal result once. a = ah + al with ah = a truncated to 12 significant bits:
 * k a^2 = k ah^2 + k al (a + ah), the first part exact, the second small (< 2^-10 k a^2);
 * -k ah^2 - n ln2_hi is exact too (below 1/2, it fits in 24 bits: checked for every 3rd float
 * a in [2^-60, 15]), so no rounding error grows with a^2. */
VM_INLINE float vm_exp_nsq_f(float a, float k, float *y)
{
    float ah = vm_from_bits_f(vm_bits_f(a) & 0xfffff000u);
    float al = a - ah;
    float sh = ah * (k * ah);
    float sl = al * (a + ah);
    /* n + 64 + 127 in the low bits of tt: shifted by 23, the exponent field of 2^(n + 64) */
    float tt = (a * a) * (-k * VM_LOG2E_F) + (VM_MAGIC_F + 191.0f);
    float n = tt - (VM_MAGIC_F + 191.0f);
    float r = (-sh - n * VM_LN2_HI_F) - k * (n * (VM_LN2_LO_F / k) + sl);
    *y = r + r * r * vm_expq_f(r);
    return vm_from_bits_f(vm_bits_f(tt) << 23);
}

/* (t + c) Phi(-t) e^(t^2/2) = 1 + v p(v) with v = 2t / (t + c) - m, for 0 <= t <= 15; p of
 * degree 8 fitted for relative error 1.4e-8 (m is where the left side is 1, so that the leading
 * 1 is exact and the rounding errors of v p(v) count in proportion to its share) */
#define VM_PHI_C 2.65f
#define VM_PHI_M 0.474224091f
VM_INLINE float vm_phi_poly(float v)
{
    float p = -0.000117212592f;
    p = p * v + 0.000141045297f;
    p = p * v + 0.000704369857f;
    p = p * v + 0.000447715924f;
    p = p * v - 0.00421947800f;
    p = p * v - 0.0116571086f;
    p = p * v + 0.0273523796f;
    p = p * v + 0.143645540f;
    return p * v - 0.624387145f;
}

#define VM_INV_SQRT_2PI_F 0.398942280f
#define VM_TWO_M64_F 5.42101086e-20f        /* 2^-64 */

/* erfc(x) = 2 Phi(-sqrt2 |x|) (2 - that for x < 0) by gelu's Phi; e^(-x^2) from |x| itself.
 * For |x| < 0.3, 1 - erf(|x|), erf by its Taylor series, where the result is near 1. */
VM_INLINE float vm_erfcf(float x)
{
    float a = fabsf(x);
    a = a > 10.5f ? 10.5f : a;              /* erfc(10.5) = 6e-50: 0 in float */
    float y, s = vm_exp_nsq_f(a, 1.0f, &y);
    float t = a * 1.41421354f;
    float inv2 = 2.0f / (t + VM_PHI_C);
    float v = t * inv2 - VM_PHI_M;
    float e = inv2 * s;
    e = e + e * y;
    float h = (v * (vm_phi_poly(v) * e) + e) * VM_TWO_M64_F;
    float a2 = a * a;
    float ef = -0.000854832702f;            /* 2/sqrt(pi) (-1)^n / (n! (2n + 1)), n = 5 .. 0 */
    ef = ef * a2 + 0.00522397762f;
    ef = ef * a2 - 0.0268661706f;
    ef = ef * a2 + 0.112837917f;
    ef = ef * a2 - 0.376126389f;
    ef = ef * a2 + 1.12837917f;
    h = a < 0.3f ? 1.0f - a * ef : h;
    return x < 0.0f ? 2.0f - h : h;
}

/* gelu(x) = x Phi(x) = max(x, -0) - z with z = |x| Phi(-|x|) = t Phi(-t), rounded once: the
 * 2^-65 last, after e = w e^(-t^2/2) 2^64, w = 2t / (t + c). |x| is clamped to 15 (z(15) is 0 in
 * float and Phi(15) is 1), which gives the limits at +-inf; x = -0 gives -0. */
VM_INLINE float vm_gelu_f(float x)
{
    float t = fabsf(x);
    t = t > 15.0f ? 15.0f : t;
    float y, s = vm_exp_nsq_f(t, 0.5f, &y);
    float w = (t + t) / (t + VM_PHI_C);
    float v = w - VM_PHI_M;
    float e = w * s;
    e = e + e * y;
    float z = (v * (vm_phi_poly(v) * e) + e) * 2.71050543e-20f;    /* 2^-65 */
    return (x < 0.0f ? -0.0f : x) - z;
}

/* gelu'(x) = Phi(x) + x phi(x) = -g (x <= 0) or 1 + g with g = t phi(t) - Phi(-t), t = |x|:
 * g e^(t^2/2) = t / sqrt(2 pi) - (1 + v p(v)) / (t + c). No cancellation but at the zero
 * crossing x = -0.75; the clamp as in vm_gelu_f. */
VM_INLINE float vm_gelu_grad_f(float x)
{
    float t = fabsf(x);
    t = t > 15.0f ? 15.0f : t;
    float y, s = vm_exp_nsq_f(t, 0.5f, &y);
    float inv = 1.0f / (t + VM_PHI_C);
    float v = (t + t) * inv - VM_PHI_M;
    float h = (t * VM_INV_SQRT_2PI_F - inv) - v * (vm_phi_poly(v) * inv);
    float a = h * s;
    float g = (a + a * y) * VM_TWO_M64_F;
    return x <= 0.0f ? -g : 1.0f + g;
}

/* double data: libm's erfc (no vectorizable double erfc here), the limits at +-inf fixed */
VM_INLINE double vm_gelu_d(double x)
{
    return x == -INFINITY ? -0.0 : 0.5 * x * erfc(-x * VM_SQRT1_2);
}

VM_INLINE double vm_gelu_grad_d(double x)
{
    double cdf = 0.5 * erfc(-x * VM_SQRT1_2);
    double pdf = VM_INV_SQRT_2PI * vm_exp(-0.5 * x * x);
    return cdf + (pdf == 0.0 ? 0.0 : x * pdf);
}

/* --------------------------------------------------------------------------- fused parts */

/* silu(x) = x sigmoid(x); for x < 0, x e / (1 + e) with exp's last factor applied last, so
 * that a subnormal result rounds once (x times a subnormal sigmoid would not). -> -0 at -inf
 * (where x * 0 would be nan). */
VM_INLINE float vm_silu_f(float x)
{
    float s2, eh = vm_expf_split_lo(-fabsf(x), &s2);
    float r = 1.0f / (1.0f + eh * s2);
    float y = x >= 0.0f ? x * r : ((x * r) * eh) * s2;
    return x < -150.0f ? -0.0f : y;   /* exp is clamped there; x e^x is -0 from -110 */
}

VM_INLINE double vm_silu_d(double x)
{
    return x == -INFINITY ? -0.0 : x * vm_sigmoid(x);
}

/* silu'(x) = s (1 + x (1 - s)): r + x e r^2 for x >= 0 and e r (1 + x r) for x < 0, with
 * r = 1 / (1 + e), e = exp(-|x|) (1 - s would cancel for large x; the last factor of exp
 * last, as in vm_silu_f). -> 1 at +inf, 0 at -inf. */
VM_INLINE float vm_silu_grad_f(float x)
{
    float s2, eh = vm_expf_split_lo(-fabsf(x), &s2);
    float e = eh * s2;
    float r = 1.0f / (1.0f + e);
    float d = x >= 0.0f ? r + x * (e * r * r) : (eh * (r * (1.0f + x * r))) * s2;
    d = x == INFINITY ? 1.0f : d;
    return x < -150.0f ? 0.0f : d;
}

VM_INLINE double vm_silu_grad_d(double x)
{
    double e = vm_exp(-fabs(x));
    double r = 1.0 / (1.0 + e);
    double s = x >= 0.0 ? r : e * r;
    double xq = x * (e * r * r);
    return s + (fabs(x) < INFINITY ? xq : 0.0);
}

/* sigmoid'(x) = s (1 - s) = e / (1 + e)^2, e = exp(-|x|): one division, no cancellation */
VM_INLINE float vm_sigmoid_grad_f(float x)
{
    float e = vm_expf_lo(-fabsf(x));
    float t = 1.0f + e;
    return e / (t * t);
}

VM_INLINE double vm_sigmoid_grad_d(double x)
{
    double e = vm_exp(-fabs(x));
    double t = 1.0 + e;
    return e / (t * t);
}

/* tanh'(x) = 1 - tanh(x)^2 = 4 e / (1 + e)^2, e = exp(-2|x|): no cancellation for large |x| */
VM_INLINE float vm_tanh_grad_f(float x)
{
    float e = vm_expf_lo(-2.0f * fabsf(x));
    float t = 1.0f + e;
    return 4.0f * e / (t * t);
}

VM_INLINE double vm_tanh_grad_d(double x)
{
    double e = vm_exp(-2.0 * fabs(x));
    double t = 1.0 + e;
    return 4.0 * e / (t * t);
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)) */
VM_INLINE float vm_softplus_f(float x)
{
    return (x > 0.0f ? x : 0.0f) + vm_log1pf(vm_expf_lo(-fabsf(x)));
}

VM_INLINE double vm_softplus_d(double x)
{
    return (x > 0.0 ? x : 0.0) + vm_log1p(vm_exp(-fabs(x)));
}

/* --------------------------------------------------------------------------- selu, mish */

/* selu (Keras' constants): scale (x > 0 ? x : alpha expm1(x)), scale alpha as one constant
 * so that each side rounds once after expm1; selu' = y > 0 ? scale : y + scale alpha */
#define VM_SELU_SCALE 1.0507009873554804934193349852946
#define VM_SELU_SCALE_ALPHA 1.7580993408473768599402175208123

/* mish(x) = x tanh(softplus(x)); tanh(log(1 + e)) = n / (n + 2) with e = exp(x),
 * n = e (e + 2): no cancellation, no log. Beyond x = 20 (40 in double) tanh(softplus) is 1
 * and mish(x) = x; below -150 (-800) e is 0 and the result -0 (also at -inf). */
VM_INLINE float vm_mish_f(float x)
{
    float xc = x > 20.0f ? 20.0f : x;
    xc = xc < -150.0f ? -150.0f : xc;
    /* e = eh s2, s2 applied last: a subnormal result rounds once (as vm_silu_f) */
    float s2, eh = vm_expf_split_lo(xc, &s2);
    float e = eh * s2;
    float n = e * (e + 2.0f);
    return x > 20.0f ? x : (xc * (eh * (e + 2.0f) / (n + 2.0f))) * s2;
}

VM_INLINE double vm_mish_d(double x)
{
    double xc = x > 40.0 ? 40.0 : x;
    xc = xc < -800.0 ? -800.0 : xc;
    double e = vm_exp(xc);
    double n = e * (e + 2.0);
    return x > 40.0 ? x : xc * (n / (n + 2.0));
}

/* mish'(x) = t + x sigmoid(x) (1 - t^2), t = n / (n + 2) as above, 1 - t^2 =
 * 4 (n + 1) / (n + 2)^2 (no cancellation) and sigmoid(x) = e / (1 + e); with x clamped as in
 * vm_mish_f the second term vanishes beyond the clamp: 1 at +inf, 0 at -inf. */
VM_INLINE float vm_mish_grad_f(float x)
{
    float xc = x > 20.0f ? 20.0f : x;
    xc = xc < -150.0f ? -150.0f : xc;
    float s2, eh = vm_expf_split_lo(xc, &s2);
    float e = eh * s2;
    float n = e * (e + 2.0f);
    float d = n + 2.0f;
    /* (e / d) ((e + 2) + x 4 (n + 1) / ((1 + e) d)), the factor s2 of e last */
    return ((eh / d) * ((e + 2.0f) + xc * (4.0f * (n + 1.0f)) / ((1.0f + e) * d))) * s2;
}

VM_INLINE double vm_mish_grad_d(double x)
{
    double xc = x > 40.0 ? 40.0 : x;
    xc = xc < -800.0 ? -800.0 : xc;
    double e = vm_exp(xc);
    double n = e * (e + 2.0);
    double d = n + 2.0;
    return n / d + xc * (e / (1.0 + e)) * (4.0 * (n + 1.0) / (d * d));
}

/* --------------------------------------------------------------------------- dispatch */

/* The loops that run: 2 AVX-512, 1 AVX2+FMA, 0 the baseline; decided at the first call */
static int vm_simd = -1;

/* The best level this CPU and OS run (libgcc's check includes the OS saving the registers) */
VM_UNUSED static int vm_simd_detect(void)
{
#ifdef VM_X86_DISPATCH
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return 2;
    return 1;
#else
    return 0;
#endif
}

VM_UNUSED static int vm_simd_level(void)
{
    if (vm_simd < 0)
        vm_simd = vm_simd_detect();
    return vm_simd;
}

/* Force a level: 0 the baseline, 1 AVX2+FMA, 2 AVX-512, each only up to what the CPU runs
 * (a higher request gets the best there is); -1 detects again. Returns the level. */
VM_UNUSED static int vm_set_simd_level(int level)
{
    int best = vm_simd_detect();
    vm_simd = level < 0 || level > best ? best : level;
    return vm_simd;
}

/* The loops: vmath_loops.h expands VM_LOOP1/2/3 once per variant.
 *
 * VM_IVDEP: no run-time alias check. Without it gcc versions each loop on whether y lies
 * within a vector's width of an input, and runs a scalar copy where it does: arrays packed a
 * few elements apart (numpy's small allocations) or y == x. The FMA variants' scalar code
 * contracts other products than their vector code (a product before a select, as in
 * sigmoid(v) - w), so the same values gave other last bits by where the arrays sat. Every
 * loop reads element i of its inputs before it writes element i of y, so y may be an input
 * itself (in place) or apart from it; the callers copy an input that partly overlaps y
 * (checks.pxd's _unalias). So each element runs the same code wherever its arrays are:
 * the vector body, a narrower vector epilogue or the scalar tail, by its index alone. */
#if defined(__GNUC__) && !defined(__clang__)
#  define VM_IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#  define VM_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#  define VM_IVDEP
#endif
#define VM_LOOP1(NAME, T, EXPR)                                                           \
    VM_UNUSED VM_TARGET static void VM_VARIANT(NAME)(const T *x, T *y, Py_ssize_t n,       \
                                                     double alpha)                        \
    {                                                                                     \
        Py_ssize_t i;                                                                     \
        const T al = (T)alpha;                                                            \
        (void)al;                                                                         \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            const T v = x[i];                                                             \
            y[i] = (EXPR);                                                                \
        }                                                                                 \
    }
#define VM_LOOP2(NAME, T, EXPR)                                                           \
    VM_UNUSED VM_TARGET static void VM_VARIANT(NAME)(const T *a, const T *b, T *y,         \
                                                     Py_ssize_t n, double alpha)          \
    {                                                                                     \
        Py_ssize_t i;                                                                     \
        const T al = (T)alpha;                                                            \
        (void)al;                                                                         \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            const T u = a[i], v = b[i];                                                   \
            y[i] = (EXPR);                                                                \
        }                                                                                 \
    }
/* A loop whose results must be the plain IEEE operations as written (the numpy reference's,
 * bit for bit): no contraction of a * b + c into an FMA in any variant. */
#if defined(__GNUC__) && !defined(__clang__)
#  define VM_EXACT __attribute__((optimize("fp-contract=off")))
#else
#  define VM_EXACT
#endif
#define VM_LOOP2X(NAME, T, EXPR)                                                          \
    VM_UNUSED VM_TARGET VM_EXACT static void VM_VARIANT(NAME)(const T *a, const T *b, T *y, \
                                                              Py_ssize_t n, double alpha) \
    {                                                                                     \
        Py_ssize_t i;                                                                     \
        (void)alpha;                                                                      \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            const T u = a[i], v = b[i];                                                   \
            y[i] = (EXPR);                                                                \
        }                                                                                 \
    }
#define VM_LOOP3(NAME, T, EXPR)                                                           \
    VM_UNUSED VM_TARGET static void VM_VARIANT(NAME)(const T *a, const T *b, const T *c,   \
                                                     T *y, Py_ssize_t n)                  \
    {                                                                                     \
        Py_ssize_t i;                                                                     \
        VM_IVDEP                                                                          \
        for (i = 0; i < n; i++) {                                                         \
            const T u = a[i], v = b[i], w = c[i];                                         \
            y[i] = (EXPR);                                                                \
        }                                                                                 \
    }

/* Row-wise loops over an (n, m) array and a row of m: a bias added to every row, and the
 * bias gradient (the column sums, in the order numpy sums them: row by row). */
#define VM_DISJOINT(p, np, q, nq) ((p) + (np) <= (q) || (q) + (nq) <= (p))
#define VM_ROWS(T, SUF)                                                                   \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_bias_rows_##SUF)(                        \
        const T *restrict x, const T *restrict b, T *restrict y, Py_ssize_t n,             \
        Py_ssize_t m)                                                                     \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        for (i = 0; i < n; i++)                                                           \
            for (j = 0; j < m; j++)                                                       \
                y[i * m + j] = x[i * m + j] + b[j];                                       \
    }                                                                                     \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_bias_inplace_##SUF)(                     \
        T *restrict y, const T *restrict b, Py_ssize_t n, Py_ssize_t m)                    \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        for (i = 0; i < n; i++)                                                           \
            for (j = 0; j < m; j++)                                                       \
                y[i * m + j] = y[i * m + j] + b[j];                                       \
    }                                                                                     \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_bias_add_##SUF)(                         \
        const T *x, const T *b, T *y, Py_ssize_t n, Py_ssize_t m)                          \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        /* the layouts the kernels and the captured step use, without gcc's run-time      \
         * alias checks (which fail for y == x and leave the loop scalar) */              \
        if (y == x && VM_DISJOINT(b, m, y, n * m)) {                                      \
            VM_VARIANT(vm_bias_inplace_##SUF)(y, b, n, m);                                \
            return;                                                                       \
        }                                                                                 \
        if (VM_DISJOINT(x, n * m, y, n * m) && VM_DISJOINT(b, m, y, n * m)) {             \
            VM_VARIANT(vm_bias_rows_##SUF)(x, b, y, n, m);                                \
            return;                                                                       \
        }                                                                                 \
        for (i = 0; i < n; i++)                                                           \
            for (j = 0; j < m; j++)                                                       \
                y[i * m + j] = x[i * m + j] + b[j];                                       \
    }                                                                                     \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_bias_sums_##SUF)(                        \
        const T *restrict dy, T *restrict db, Py_ssize_t n, Py_ssize_t m)                  \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        T s;                                                                              \
        if (m < 8) {                                                                      \
            /* few columns: each sum in a register (in db, every addition would wait for  \
             * the store of the one before), the same additions in the same order */      \
            for (j = 0; j < m; j++) {                                                     \
                s = n ? dy[j] : 0;                                                        \
                for (i = 1; i < n; i++)                                                   \
                    s = s + dy[i * m + j];                                                \
                db[j] = s;                                                                \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        for (j = 0; j < m; j++)                                                           \
            db[j] = n ? dy[j] : 0;                                                        \
        for (i = 1; i < n; i++)                                                           \
            for (j = 0; j < m; j++)                                                       \
                db[j] = db[j] + dy[i * m + j];                                            \
    }                                                                                     \
    /* C (m, n) := a b.T, a with stride sa, b contiguous, C dense and apart from both     \
     * (loops.pxd's _outer): one product per element, the same bits at every level */     \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_outer_##SUF)(                            \
        const T *restrict a, Py_ssize_t sa, const T *restrict b, T *restrict c,            \
        Py_ssize_t m, Py_ssize_t n)                                                        \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        for (i = 0; i < m; i++) {                                                         \
            const T ai = a[i * sa];                                                       \
            for (j = 0; j < n; j++)                                                       \
                c[i * n + j] = ai * b[j];                                                 \
        }                                                                                 \
    }                                                                                     \
    VM_UNUSED VM_TARGET static void VM_VARIANT(vm_bias_grad_##SUF)(                        \
        const T *dy, T *db, Py_ssize_t n, Py_ssize_t m)                                    \
    {                                                                                     \
        Py_ssize_t i, j;                                                                  \
        if (VM_DISJOINT(dy, n * m, db, m)) {                                              \
            VM_VARIANT(vm_bias_sums_##SUF)(dy, db, n, m);                                 \
            return;                                                                       \
        }                                                                                 \
        /* db overlapping dy (the wrappers copy such inputs first): in order */           \
        for (j = 0; j < m; j++) {                                                         \
            T s = n ? dy[j] : 0;                                                          \
            for (i = 1; i < n; i++)                                                       \
                s = s + dy[i * m + j];                                                    \
            db[j] = s;                                                                    \
        }                                                                                 \
    }

#define VM_TARGET
#define VM_VARIANT(name) name##_base
#include "vmath_loops.h"
#undef VM_TARGET
#undef VM_VARIANT

#ifdef VM_X86_DISPATCH
#  define VM_TARGET __attribute__((target("avx2,fma")))
#  define VM_VARIANT(name) name##_avx2
#  include "vmath_loops.h"
#  undef VM_TARGET
#  undef VM_VARIANT
/* 512-bit vectors: gcc's generic tuning would keep 256 with AVX-512 enabled; the wider
 * vectors halve the instructions per element (measured in csrc/README.md) */
#  define VM_TARGET \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")))
#  define VM_VARIANT(name) name##_avx512
#  include "vmath_loops.h"
#  undef VM_TARGET
#  undef VM_VARIANT
#  define VM_PICK(name) \
    (vm_simd_level() == 2 ? name##_avx512 : vm_simd_level() ? name##_avx2 : name##_base)
#else
#  define VM_PICK(name) name##_base
#endif

/* The entry points the kernels call: the same signatures, the variant picked at run time. */
#undef VM_LOOP1
#undef VM_LOOP2
#undef VM_LOOP2X
#undef VM_LOOP3
#undef VM_ROWS
#define VM_ROWS(T, SUF)                                                                   \
    VM_UNUSED static void vm_bias_add_##SUF(const T *x, const T *b, T *y, Py_ssize_t n,    \
                                           Py_ssize_t m)                                  \
    {                                                                                     \
        VM_PICK(vm_bias_add_##SUF)(x, b, y, n, m);                                        \
    }                                                                                     \
    VM_UNUSED static void vm_bias_grad_##SUF(const T *dy, T *db, Py_ssize_t n, Py_ssize_t m) \
    {                                                                                     \
        VM_PICK(vm_bias_grad_##SUF)(dy, db, n, m);                                        \
    }                                                                                     \
    /* 1 when done; 0 when C overlaps a or b (the caller loops in order) */               \
    VM_UNUSED static int vm_outer_##SUF(const T *a, Py_ssize_t sa, const T *b, T *c,       \
                                       Py_ssize_t m, Py_ssize_t n)                        \
    {                                                                                     \
        if (m > 0 && n > 0 && !(VM_DISJOINT(a, (m - 1) * sa + 1, c, m * n)                 \
                                && VM_DISJOINT(b, n, c, m * n)))                          \
            return 0;                                                                     \
        VM_PICK(vm_outer_##SUF)(a, sa, b, c, m, n);                                       \
        return 1;                                                                         \
    }
#define VM_LOOP1(NAME, T, EXPR)                                                           \
    VM_UNUSED static void NAME(const T *x, T *y, Py_ssize_t n, double alpha)               \
    {                                                                                     \
        VM_PICK(NAME)(x, y, n, alpha);                                                    \
    }
#define VM_LOOP2(NAME, T, EXPR)                                                           \
    VM_UNUSED static void NAME(const T *a, const T *b, T *y, Py_ssize_t n, double alpha)   \
    {                                                                                     \
        VM_PICK(NAME)(a, b, y, n, alpha);                                                 \
    }
#define VM_LOOP2X(NAME, T, EXPR) VM_LOOP2(NAME, T, EXPR)
#define VM_LOOP3(NAME, T, EXPR)                                                           \
    VM_UNUSED static void NAME(const T *a, const T *b, const T *c, T *y, Py_ssize_t n)     \
    {                                                                                     \
        VM_PICK(NAME)(a, b, c, y, n);                                                     \
    }
#include "vmath_loops.h"
#undef VM_LOOP1
#undef VM_LOOP2
#undef VM_LOOP2X
#undef VM_LOOP3
#undef VM_ROWS

/* --------------------------------------------------------------------------- transpose */

/* d (k, n) := b.T for b (n, k) with rows ldb apart, d dense and apart from b: the operand
 * of a product with B transposed, copied so that BLAS runs its plain form (loops.pxd's
 * _gemm). Only moves, so every level gives the same bits. With AVX2: tiles of 8 x 8 floats
 * (4 x 4 doubles) through registers, the edges element by element. */
#define VM_TRANSPOSE_EDGES(T)                                                             \
    for (j = 0; j < n; j++)                                                               \
        for (p = j < nt ? kt : 0; p < k; p++)                                             \
            d[p * n + j] = b[j * ldb + p];

#ifdef VM_X86_DISPATCH
#include <immintrin.h>

VM_UNUSED __attribute__((target("avx2"))) static void vm_transpose_f32_avx2(
    const float *restrict b, Py_ssize_t ldb, float *restrict d, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t nt = n & ~(Py_ssize_t)7, kt = k & ~(Py_ssize_t)7, i, j, p;
    for (i = 0; i < nt; i += 8)
        for (p = 0; p < kt; p += 8) {
            const float *s = b + i * ldb + p;
            float *t = d + p * n + i;
            /* rows r0..r7 -> pairs interleaved -> quads -> the 128-bit halves swapped */
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ldb);
            __m256 r2 = _mm256_loadu_ps(s + 2 * ldb), r3 = _mm256_loadu_ps(s + 3 * ldb);
            __m256 r4 = _mm256_loadu_ps(s + 4 * ldb), r5 = _mm256_loadu_ps(s + 5 * ldb);
            __m256 r6 = _mm256_loadu_ps(s + 6 * ldb), r7 = _mm256_loadu_ps(s + 7 * ldb);
            __m256 u0 = _mm256_unpacklo_ps(r0, r1), u1 = _mm256_unpackhi_ps(r0, r1);
            __m256 u2 = _mm256_unpacklo_ps(r2, r3), u3 = _mm256_unpackhi_ps(r2, r3);
            __m256 u4 = _mm256_unpacklo_ps(r4, r5), u5 = _mm256_unpackhi_ps(r4, r5);
            __m256 u6 = _mm256_unpacklo_ps(r6, r7), u7 = _mm256_unpackhi_ps(r6, r7);
            __m256 q0 = _mm256_shuffle_ps(u0, u2, 0x44), q1 = _mm256_shuffle_ps(u0, u2, 0xEE);
            __m256 q2 = _mm256_shuffle_ps(u1, u3, 0x44), q3 = _mm256_shuffle_ps(u1, u3, 0xEE);
            __m256 q4 = _mm256_shuffle_ps(u4, u6, 0x44), q5 = _mm256_shuffle_ps(u4, u6, 0xEE);
            __m256 q6 = _mm256_shuffle_ps(u5, u7, 0x44), q7 = _mm256_shuffle_ps(u5, u7, 0xEE);
            _mm256_storeu_ps(t, _mm256_permute2f128_ps(q0, q4, 0x20));
            _mm256_storeu_ps(t + n, _mm256_permute2f128_ps(q1, q5, 0x20));
            _mm256_storeu_ps(t + 2 * n, _mm256_permute2f128_ps(q2, q6, 0x20));
            _mm256_storeu_ps(t + 3 * n, _mm256_permute2f128_ps(q3, q7, 0x20));
            _mm256_storeu_ps(t + 4 * n, _mm256_permute2f128_ps(q0, q4, 0x31));
            _mm256_storeu_ps(t + 5 * n, _mm256_permute2f128_ps(q1, q5, 0x31));
            _mm256_storeu_ps(t + 6 * n, _mm256_permute2f128_ps(q2, q6, 0x31));
            _mm256_storeu_ps(t + 7 * n, _mm256_permute2f128_ps(q3, q7, 0x31));
        }
    VM_TRANSPOSE_EDGES(float)
}

VM_UNUSED __attribute__((target("avx2"))) static void vm_transpose_f64_avx2(
    const double *restrict b, Py_ssize_t ldb, double *restrict d, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t nt = n & ~(Py_ssize_t)3, kt = k & ~(Py_ssize_t)3, i, j, p;
    for (i = 0; i < nt; i += 4)
        for (p = 0; p < kt; p += 4) {
            const double *s = b + i * ldb + p;
            double *t = d + p * n + i;
            __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ldb);
            __m256d r2 = _mm256_loadu_pd(s + 2 * ldb), r3 = _mm256_loadu_pd(s + 3 * ldb);
            __m256d u0 = _mm256_unpacklo_pd(r0, r1), u1 = _mm256_unpackhi_pd(r0, r1);
            __m256d u2 = _mm256_unpacklo_pd(r2, r3), u3 = _mm256_unpackhi_pd(r2, r3);
            _mm256_storeu_pd(t, _mm256_permute2f128_pd(u0, u2, 0x20));
            _mm256_storeu_pd(t + n, _mm256_permute2f128_pd(u1, u3, 0x20));
            _mm256_storeu_pd(t + 2 * n, _mm256_permute2f128_pd(u0, u2, 0x31));
            _mm256_storeu_pd(t + 3 * n, _mm256_permute2f128_pd(u1, u3, 0x31));
        }
    VM_TRANSPOSE_EDGES(double)
}
#endif

#define VM_TRANSPOSE(T, SUF)                                                              \
    VM_UNUSED static void vm_transpose_##SUF##_base(                                      \
        const T *restrict b, Py_ssize_t ldb, T *restrict d, Py_ssize_t n, Py_ssize_t k)    \
    {                                                                                     \
        Py_ssize_t nt = 0, kt = 0, j, p;                                                  \
        VM_TRANSPOSE_EDGES(T)                                                             \
    }                                                                                     \
    VM_UNUSED static void vm_transpose_##SUF(const T *b, Py_ssize_t ldb, T *d, Py_ssize_t n, \
                                            Py_ssize_t k)                                 \
    {                                                                                     \
        VM_TRANSPOSE_PICK(SUF)(b, ldb, d, n, k);                                          \
    }
#ifdef VM_X86_DISPATCH
#  define VM_TRANSPOSE_PICK(SUF) \
    (vm_simd_level() ? vm_transpose_##SUF##_avx2 : vm_transpose_##SUF##_base)
#else
#  define VM_TRANSPOSE_PICK(SUF) vm_transpose_##SUF##_base
#endif
VM_TRANSPOSE(float, f32)
VM_TRANSPOSE(double, f64)
#undef VM_TRANSPOSE
#undef VM_TRANSPOSE_PICK
#undef VM_TRANSPOSE_EDGES

/* small matrix products (loops.pxd's _gemm) */
#include "vmath_gemm.h"

#endif /* MICROGRADNET_VMATH_H */
