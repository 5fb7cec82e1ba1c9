/* Flush-to-zero for fit's training steps (csrc/trainer.pyx, microgradnet/fastpath.py).
 *
 * x86 computes on subnormal numbers (below 1.2e-38 in float) through a microcode assist,
 * about 100x slower. Training drives a few weights there (a unit whose weights decay
 * towards 0), and from then on every step touches them: W2a ran 2x slower. With FTZ and
 * DAZ set, subnormals read and written as 0, the step keeps its speed, but the arithmetic
 * is no longer IEEE's: a weight flushed to 0 stays there where a tiny one could grow back
 * under Adam, so training follows another path. XLA and TensorFlow run so on CPU, PyTorch
 * offers it (torch.set_flush_denormal); fit trains so by default, on both of its paths
 * (microgradnet.fastpath.set_flush_denormal), and the caller's mode is restored after.
 */
#ifndef MICROGRADNET_FPENV_H
#define MICROGRADNET_FPENV_H

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define MG_FTZ_DAZ 0x8040u  /* MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero */
static inline unsigned int mg_ftz_enter(void)
{
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | MG_FTZ_DAZ);
    return old;
}
static inline void mg_ftz_leave(unsigned int old) { _mm_setcsr(old); }
static inline int mg_ftz_supported(void) { return 1; }
/* An OpenMP worker computes in its own mode, not its caller's: a threaded kernel reads the
 * caller's mode (mg_fp_mode) and each chunk adopts it, then gives the thread its own back,
 * so that every chunk computes as the calling thread would (the same bits on any number of
 * threads, flushed or not). */
static inline unsigned int mg_fp_mode(void) { return _mm_getcsr(); }
static inline unsigned int mg_fp_adopt(unsigned int mode)
{
    unsigned int old = _mm_getcsr();
    if (old != mode)
        _mm_setcsr(mode);
    return old;
}
static inline void mg_fp_restore(unsigned int old, unsigned int mode)
{
    if (old != mode)
        _mm_setcsr(old);
}
#else
static inline unsigned int mg_ftz_enter(void) { return 0; }
static inline void mg_ftz_leave(unsigned int old) { (void)old; }
static inline int mg_ftz_supported(void) { return 0; }
static inline unsigned int mg_fp_mode(void) { return 0; }
static inline unsigned int mg_fp_adopt(unsigned int mode) { (void)mode; return 0; }
static inline void mg_fp_restore(unsigned int old, unsigned int mode) { (void)old; (void)mode; }
#endif

#endif /* MICROGRADNET_FPENV_H */
