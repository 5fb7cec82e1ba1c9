# The threads of the large elementwise kernels, included by each module that runs such
# kernels (activations, losses, matmul: microgradnet/_kernel_modules.py's OPENMP_MODULES):
# each keeps its own count and threshold, which microgradnet.set_num_threads sets in all of
# them. Every threaded loop goes through _run_chunks (chunking, threshold, the caller's
# floating-point mode in one place), with a chunk body of the module's and its arrays. Needs
# `from cython.parallel cimport prange` and kernels' _THREAD_THRESHOLD and _default_threads
# cimported by the module.

# Whether this module was compiled with OpenMP (setup.py tries -fopenmp); without it prange
# is a plain loop and every kernel runs on the calling thread.
# mg_omp_max_threads: OpenMP's own limit (omp_set_num_threads, as threadpoolctl's
# threadpool_limits(user_api="openmp") sets it), which the kernels respect as well.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define MG_OPENMP 1
    static int mg_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define MG_OPENMP 0
    static int mg_omp_max_threads(void) { return 1; }
    #endif
    """
    int MG_OPENMP
    int mg_omp_max_threads() noexcept nogil

# The caller's floating-point mode, adopted by each chunk (flush-to-zero while fit trains).
cdef extern from "fpenv.h" nogil:
    unsigned int mg_fp_mode()
    unsigned int mg_fp_adopt(unsigned int mode)
    void mg_fp_restore(unsigned int old, unsigned int mode)

# The most threads an elementwise kernel runs on (microgradnet.set_num_threads).
cdef int _num_threads = _default_threads() if MG_OPENMP else 1
# From this many elements a kernel runs on 2 threads (and on k threads from k/2 times it):
# below, waking a second thread and splitting the work costs more than it saves (measured
# in README.md, "Threads").
cdef Py_ssize_t _threshold = _THREAD_THRESHOLD
# Chunks start at multiples of this many elements: whole cache lines (64 bytes) and whole
# SIMD vectors, and every chunk starts at the array's own alignment, so each one runs the
# same vector body and tail code as the single-threaded loop would at those indices.
cdef enum:
    _CHUNK_ALIGN = 64


cdef inline int _threads_for(Py_ssize_t n) noexcept nogil:
    """The number of threads a loop over n elements runs on: 1 below the threshold."""
    if _num_threads <= 1 or n < _threshold:
        return 1
    cdef int nt = min(_num_threads, mg_omp_max_threads())
    return <int>min(<Py_ssize_t>nt, n // ((_threshold + 1) // 2))


# A threaded kernel's loop over [lo, lo + k) of its items, its arrays in ctx.
ctypedef void (*_chunk_fn)(void* ctx, Py_ssize_t lo, Py_ssize_t k) noexcept nogil


cdef void _run_chunks(_chunk_fn body, void* ctx, Py_ssize_t n, Py_ssize_t work,
                      Py_ssize_t align) noexcept nogil:
    """body over items [0, n): in one call when `work` elements are below the threshold,
    else in one chunk per thread, starting at multiples of `align` items, each computed in
    the caller's floating-point mode (an OpenMP worker has its own: fpenv.h)."""
    cdef int nt = _threads_for(work)
    if nt <= 1:
        body(ctx, 0, n)
        return
    cdef Py_ssize_t step = ((n + nt - 1) // nt + align - 1) // align * align
    cdef Py_ssize_t lo, k
    cdef unsigned int mode = mg_fp_mode(), old
    cdef int c
    for c in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        lo = c * step
        k = min(step, n - lo)
        if k > 0:
            old = mg_fp_adopt(mode)
            body(ctx, lo, k)
            mg_fp_restore(old, mode)


# Set in a fork()ed child: libgomp's thread pool does not survive fork (the child's first
# parallel region would wait forever for the parent's threads), so a child runs on one.
cdef bint _forked = False


def _set_num_threads(int n):
    """Run the elementwise kernels on at most n >= 1 threads (checked by the caller)."""
    global _num_threads
    _num_threads = max(1, n) if MG_OPENMP and not _forked else 1


def _after_fork_in_child():
    """Run on one thread from now on (os.register_at_fork, below)."""
    global _num_threads, _forked
    _forked = True
    _num_threads = 1


if MG_OPENMP:
    import os as _os
    if hasattr(_os, "register_at_fork"):
        _os.register_at_fork(after_in_child=_after_fork_in_child)


def _get_num_threads():
    """The most threads an elementwise kernel runs on (1 when built without OpenMP)."""
    return _num_threads


def _set_threshold(n=None):
    """Test hook: the size from which kernels run on 2 threads (None: the measured one)."""
    global _threshold
    _threshold = _THREAD_THRESHOLD if n is None else max(2, <Py_ssize_t>n)
    return _threshold


def _omp_max_threads():
    """Test hook: OpenMP's own thread limit (1 when built without OpenMP)."""
    return mg_omp_max_threads()


def _threads_used(Py_ssize_t n):
    """Test hook: how many threads an elementwise kernel over n elements runs on."""
    return _threads_for(n)


_openmp = bool(MG_OPENMP)
