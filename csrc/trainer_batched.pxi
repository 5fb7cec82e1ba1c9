# Batched capture: K nets of one structure trained in lockstep (rounds of a few steps each)
# by one call without the GIL.
# Each net is a Plan whose buffers are carved from one allocation (the arena) and steps
# through the very _step a solo Plan's run takes, so each net ends with the bits of its own
# solo run, whatever nets it is batched with and in whatever order.

cdef struct Net:
    LayerDesc* L
    Config* c
    double* losses


cdef Py_ssize_t _run_batch(Net* nets, Py_ssize_t count, Config* poll, const floating* x,
                           const floating* y, const cnp.int64_t* labels, Py_ssize_t first,
                           Py_ssize_t last, Py_ssize_t per_epoch,
                           Py_ssize_t block) noexcept nogil:
    """Steps [first, last) of every net, in rounds: each net does the round's `block` steps
    in turn (its buffers stay in cache for them: K nets' buffers together do not), and all
    nets end a round at the same step. The signal handlers are polled between rounds
    through `poll` as _run polls between steps. Returns the steps each net did."""
    cdef Py_ssize_t s, t, k, end
    s = first
    while s < last:
        end = min(last, s + block)
        for k in range(count):
            for t in range(s, end):
                _step(nets[k].L, nets[k].c, x, y, labels, NULL, t, first, per_epoch,
                      nets[k].losses)
        s = end
        if poll.poll_ns > 0 and s < last and _poll(poll):
            return s - first
    return last - first


cdef class BatchedPlan:
    """K plans of one structure (Plan's arguments), their buffers in one allocation, trained
    together by `run` in rounds of `block` steps per net: BatchedPlan(dtype, layers, loss,
    batch, count, output_logits=False)."""

    cdef readonly list plans
    cdef readonly object arena
    cdef Net* nets
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t steps_done  # by the last run, per net
    cdef object _lock
    cdef readonly Py_ssize_t block  # the steps each net does in a round

    def __cinit__(self):
        self.nets = NULL
        self.plans = []
        self._lock = threading.Lock()

    def __init__(self, dtype, list layers, str loss, Py_ssize_t batch, Py_ssize_t count,
                 bint output_logits=False):
        cdef Py_ssize_t k, work = 0
        cdef Plan p
        if self.nets != NULL:
            raise RuntimeError("BatchedPlan: already initialized")
        if count < 1:
            raise ValueError(f"BatchedPlan: count must be >= 1, got {count}")
        # A first plan on its own buffers says how many bytes one net takes.
        size = Plan(dtype, layers, loss, batch, output_logits).arena_used
        size = (size + 63) // 64 * 64
        self.arena = np.zeros(count * size + 64, np.uint8)  # zeroed, as Plan's own buffers
        skip = (-self.arena.ctypes.data) % 64  # every net's buffers 64-byte aligned
        # No garbage collection while K plans' objects are made: its passes over everything
        # alive made building a thousand plans quadratic.
        collecting = gc.isenabled()
        gc.disable()
        try:
            plans = [Plan(dtype, layers, loss, batch, output_logits,
                          arena=self.arena[skip + k * size:skip + (k + 1) * size])
                     for k in range(count)]
        finally:
            if collecting:
                gc.enable()
        self.nets = <Net*>calloc(count, sizeof(Net))
        if self.nets == NULL:
            raise MemoryError()
        for k in range(count):
            p = plans[k]
            self.nets[k].L = p.L
            self.nets[k].c = &p.c
        p = plans[0]
        for k in range(p.nlayers):
            work += p.L[k].fan_in * p.L[k].units * batch
        # A round of all nets: about 2**27 multiply-adds of their forwards (a step's fixed
        # cost counted as 4096 more), tens of milliseconds: the signals' polling interval.
        self.block = max(1, min(1024, (1 << 27) // ((work + 4096) * count)))
        self.plans = plans
        self.count = count

    def __dealloc__(self):
        free(self.nets)

    def run(self, x, y, labels, Py_ssize_t first, Py_ssize_t last, Py_ssize_t per_epoch,
            list nets, bint flush_denormal=False):
        """Train steps [first, last) of every net on the same data, in lockstep.

        nets: one tuple per plan, (params, states, optimizer, hyper, iteration, losses,
        shuffle_with, dropout_rngs[, accuracy]) as Plan.run takes them (no orders,
        recording nor schedule). Every argument of every net is checked, and no array a net
        writes may overlap any array of the run, nor may two nets draw from one generator,
        before the GIL is released. On the main thread the run polls the signal handlers between
        rounds (each about 20 ms or less); when one raises, every net has done steps_done
        steps (kept) and it is raised.
        """
        if self.nets == NULL:
            raise RuntimeError("BatchedPlan: not initialized")
        with self._lock:
            return self._run_locked(x, y, labels, first, last, per_epoch, nets,
                                    flush_denormal)

    cdef int _run_locked(self, x, y, labels, Py_ssize_t first, Py_ssize_t last,
                         Py_ssize_t per_epoch, list nets, bint flush_denormal) except -1:
        cdef RunData data
        cdef Plan p
        cdef Py_ssize_t k, n = 0, room = 0
        cdef double[::1] losses
        cdef _Extent* e
        self.steps_done = 0
        if len(nets) != self.count:
            raise ValueError(f"nets: {self.count} nets' arguments expected, got {len(nets)}")
        p = self.plans[0]
        p._check_data(&data, x, y, labels)
        all_generators = []
        views = []
        for k in range(self.count):
            p = self.plans[k]
            try:
                net = tuple(nets[k])
                accuracy = net[8] if len(net) == 9 else None
                (params, states, optimizer, hyper, iteration, losses_k, shuffle_with,
                 dropout_rngs) = net[:8] if len(net) == 9 else net
            except (TypeError, ValueError):
                raise ValueError(f"nets[{k}] must be (params, states, optimizer, hyper, "
                                 f"iteration, losses, shuffle_with, dropout_rngs"
                                 f"[, accuracy])") from None
            try:
                if not (cnp.PyArray_Check(losses_k) and losses_k.dtype == np.float64):
                    raise TypeError("losses must be a float64 array")
                losses = losses_k
                if optimizer not in OPTIMIZERS:
                    raise ValueError(f"unknown optimizer {optimizer!r}; known: "
                                     f"{', '.join(OPTIMIZERS)}")
                if len(params) != 2 * p.nlayers or len(states) != 2 * p.nlayers:
                    raise ValueError(f"expected {2 * p.nlayers} parameters and states")
                p._check_steps(&data, None, first, last, per_epoch, losses, shuffle_with)
                p._set_rule(optimizer, hyper, iteration)
                p._bind_parameters(params, states, optimizer)
                generators = p._check_generators(shuffle_with, dropout_rngs)
                p._check_rates(None, first, last)
                p.c.n = data.n
                _set_recording(p.L, &p.c, p.typenum, p.shapes, None, None, first, last)
                _set_accuracy(&p.c, p.L[p.nlayers - 1].units, accuracy, first, last)
            except (TypeError, ValueError) as err:
                raise type(err)(f"net {k}: {err}") from None
            for gen in generators:
                for j, other in all_generators:
                    if other is gen:
                        raise ValueError(f"nets {j} and {k} draw from the same generator: "
                                         f"each net of a batch needs its own")
                all_generators.append((k, gen))
            views.append(losses)
            self.nets[k].losses = &losses[0] if last > first else NULL
            room += _extent_room(&p.c, p.buffers)
        if last == first:
            return 0
        e = <_Extent*>malloc(room * sizeof(_Extent))
        if e == NULL:
            raise MemoryError()
        try:
            p = self.plans[0]
            _data_extents(e, &n, p.L, &p.c, &data)
            for k in range(self.count):
                p = self.plans[k]
                _net_extents(e, &n, p.L, &p.c, p.buffers, None, views[k], last - first, k)
            _raise_on_clash(e, n)
        finally:
            free(e)
        try:
            self._run_lent(&data, first, last, per_epoch, nets, flush_denormal)
        finally:
            for k in range(self.count):
                p = self.plans[k]
                p.c.counts = NULL
                p.c.n_counted = 0
        return 0

    cdef int _run_lent(self, RunData* data, Py_ssize_t first, Py_ssize_t last,
                       Py_ssize_t per_epoch, list nets, bint flush_denormal) except -1:
        """The run, every net's generators lent to it (trainer_lend.pxi), none drawn ahead."""
        cdef Plan p
        cdef Py_ssize_t k
        loans = []
        try:
            for k in range(self.count):
                p = self.plans[k]
                shuffle_with, dropout_rngs = nets[k][6], nets[k][7]
                if dropout_rngs is None:
                    dropout_rngs = [None] * p.nlayers
                generators = [] if shuffle_with is None else [shuffle_with]
                generators += [g for g in dropout_rngs
                               if g is not None and not any(g is h for h in generators)]
                p._lend(loans, generators, shuffle_with, dropout_rngs)
            self._run_nogil(data, first, last, per_epoch, flush_denormal)
        finally:
            for k in range(self.count):
                p = self.plans[k]
                p._clear_generators()
                # as Plan.run: the order in the buffer is that of the last epoch trained
                shuffle_with = nets[k][6]
                p.order_key = (None if shuffle_with is None or not self.steps_done else
                               (id(shuffle_with), data.n,
                                (first + self.steps_done - 1) // per_epoch))
            for loan in reversed(loans):
                loan.give_back()
        return 0

    cdef int _run_nogil(self, RunData* data, Py_ssize_t first, Py_ssize_t last,
                        Py_ssize_t per_epoch, bint flush_denormal) except -1:
        """The steps of every net, without the GIL; raises what a signal handler raised."""
        cdef unsigned int mode = 0
        cdef Py_ssize_t done, k
        cdef Plan p = self.plans[0]
        cdef Config* poll = &p.c
        main = threading.current_thread() is threading.main_thread()
        poll.poll_ns = _POLL_NS if main and last - first > 1 else 0
        poll.poll_every = 1
        poll.poll_left = 1
        poll.poll_at = mg_clock_ns() + poll.poll_ns
        poll.ftz = flush_denormal
        with nogil:
            if flush_denormal:
                mode = mg_ftz_enter()
                poll.ftz_mode = mode
            if p.typenum == cnp.NPY_FLOAT32:
                done = _run_batch(self.nets, self.count, poll, <const float*>data.x,
                                  <const float*>data.y, data.labels, first, last, per_epoch,
                                  self.block)
            else:
                done = _run_batch(self.nets, self.count, poll, <const double*>data.x,
                                  <const double*>data.y, data.labels, first, last, per_epoch,
                                  self.block)
            if flush_denormal:
                mg_ftz_leave(mode)
        self.steps_done = done
        for k in range(self.count):
            p = self.plans[k]
            p.steps_done = done
        if done < last - first:
            return -1  # the handler's exception is set (_poll)
        return 0
