# The epochs' orders of a shuffling run, and the thread that draws them ahead.
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


# The prefetch thread counts the draws it makes (prefetch.h marks the count before each
# order): the count puts the generator back where the orders a stopped run took left it,
# without drawing them again.
cdef struct Counting:
    bitgen_t* gen
    cnp.int64_t draws


cdef inline uint64_t _interval_counted(bitgen_t* g, uint64_t mx,
                                       cnp.int64_t* draws) noexcept nogil:
    """_interval, counting its draws."""
    cdef uint64_t mask = mx, value
    if mx == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    draws[0] += 1
    if mx <= <uint64_t>0xffffffffU:
        value = g.next_uint32(g.state) & mask
        while value > mx:
            draws[0] += 1
            value = g.next_uint32(g.state) & mask
    else:
        value = g.next_uint64(g.state) & mask
        while value > mx:
            draws[0] += 1
            value = g.next_uint64(g.state) & mask
    return value


cdef void _permutation_counted(Counting* c, cnp.int64_t* out, Py_ssize_t n) noexcept nogil:
    """_permutation, its draws added to c.draws."""
    cdef Py_ssize_t i, j
    cdef cnp.int64_t tmp, draws = 0
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>_interval_counted(c.gen, <uint64_t>i, &draws)
        tmp = out[i]
        out[i] = out[j]
        out[j] = tmp
    c.draws += draws


cdef void _skip_draws(bitgen_t* g, cnp.int64_t draws) noexcept nogil:
    """Make `draws` next_uint32 draws and drop them."""
    cdef cnp.int64_t i
    for i in range(draws):
        g.next_uint32(g.state)


cdef void _skip_permutations(bitgen_t* g, Py_ssize_t n, long long count) noexcept nogil:
    """Draw what `count` permutations of n draw, without making them."""
    cdef long long e
    cdef Py_ssize_t i
    for e in range(count):
        for i in range(n - 1, 0, -1):
            _interval(g, <uint64_t>i)


cdef _skip(generator, cnp.int64_t draws):
    """The generator after `draws` next_uint32 draws (a permutation of n <= 2**32 makes no
    other): PCG64 (the default) jumps there (advance; its next_uint32 hands out the two
    halves of one 64-bit draw, the high one kept for the next call); other kinds draw."""
    cdef bitgen_t* g
    bg = generator.bit_generator
    if type(bg) is np.random.PCG64:
        start = bg.state
        held = int(start["has_uint32"])
        raw = (draws + 1 - held) // 2  # the calls that found no half kept
        kept = start["uinteger"]
        if raw:
            bg.advance(raw - 1)
            kept = int(bg.random_raw()) >> 32
        state = bg.state
        state["has_uint32"] = (held + draws) % 2
        state["uinteger"] = kept
        bg.state = state
        return
    g = _bitgen(generator)
    with nogil:
        _skip_draws(g, draws)


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
