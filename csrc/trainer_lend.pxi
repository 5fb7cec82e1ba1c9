# The generators a run draws from (the epochs' orders, the Dropouts' masks), lent to it: the
# run draws from a private copy of each one's state and no generator lock is held while it
# trains. Held for the run, a lock would be inherited held by a fork()ed child (its first
# draw would wait forever), would make any other thread's draw wait for the whole run, and
# two runs taking two generators in opposite orders could deadlock.
#
# Lending and giving back take _loans_lock, then the generator's lock, each briefly: one
# lock order (a Plan's own lock, then _loans_lock, then a generator's). While lent, the
# generator is moved far ahead in its stream (2**127 draws), so that a thread that draws from
# it meanwhile does not draw the run's numbers. Given back untouched, it is set to where the
# run left its copy: the same draws, in the same order, as from the generator itself. Drawn
# from meanwhile, it is left where that thread left it (the run's draws and the thread's do
# not overlap; their order between threads was never fixed).

_loans_lock = threading.Lock()
_plans = weakref.WeakSet()  # every Plan: a fork()ed child forgets the runs in flight


cdef class _Loan:
    """One generator lent to a run: `copy` draws from the state `start` it had."""

    cdef readonly object owner
    cdef readonly object copy
    cdef object start
    cdef object moved

    def __init__(self, owner, copy):
        bg = owner.bit_generator
        _take(bg)
        try:
            self.start = bg.state
            _move_away(bg)
            self.moved = bg.state
        finally:
            _drop(bg)
        self.owner = owner
        self.copy = copy
        copy.bit_generator.state = self.start

    def restart(self):
        """Put the copy back at the state the run started from."""
        self.copy.bit_generator.state = self.start

    def give_back(self):
        """The owner takes the copy's state, unless a thread drew from it meanwhile."""
        end = self.copy.bit_generator.state
        bg = self.owner.bit_generator
        _take(bg)
        try:
            if _same_state(bg.state, self.moved):
                bg.state = end
        finally:
            _drop(bg)


cdef bint _same_state(a, b):
    """Whether two bit generator states are equal (MT19937's holds an array: compared by
    value, as == on the dicts would be ambiguous)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


cdef _take(bg):
    """Take _loans_lock, then the generator's lock; wait for the generator's (a long draw of
    another thread) without holding ours, which forks and the other lends need."""
    while True:
        _loans_lock.acquire()
        if bg.lock.acquire(False):
            return
        _loans_lock.release()
        with bg.lock:
            pass


cdef _drop(bg):
    bg.lock.release()
    _loans_lock.release()


cdef _move_away(bg):
    """Move a bit generator far from where it was (its lock held)."""
    if hasattr(bg, "advance"):  # PCG64 (the default), PCG64DXSM, Philox
        bg.advance(1 << 127)
    elif hasattr(bg, "jumped"):  # MT19937
        bg.state = bg.jumped().state
    else:  # no jump: a fresh stream
        bg.state = type(bg)().state


def _before_fork():
    # No lend nor give-back is half done in a child.
    _loans_lock.acquire()


def _after_fork_in_parent():
    _loans_lock.release()


def _after_fork_in_child():
    _loans_lock.release()
    for plan in list(_plans):
        plan._forget_run()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
