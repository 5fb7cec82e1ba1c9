# The Plan: the buffers of one captured step (one batch size, one dtype), the checks of a
# run's arguments, and the run itself (generators lent, orders drawn ahead, no GIL, signals
# polled).

# A run on the main thread runs the signal handlers (PyErr_CheckSignals) this often, and
# stops when one raises (Ctrl-C's KeyboardInterrupt): the GIL is taken for that moment only.
_POLL_NS = 20_000_000

cdef struct RunData:
    void* x             # the checked data of a run
    void* y
    cnp.int64_t* labels
    cnp.int64_t* orders
    Py_ssize_t orders_bytes
    Py_ssize_t n


def _penalty_factors(Py_ssize_t li, str name, spec):
    """A layer spec's penalty on a parameter: None, or (l1, l2) as floats >= 0."""
    if spec is None:
        return None
    try:
        l1, l2 = (float(f) for f in spec)
    except (TypeError, ValueError):
        raise ValueError(f"Plan: layer {li}: the {name} penalty must be None or (l1, l2), "
                         f"got {spec!r}") from None
    if not (l1 >= 0 and l2 >= 0):  # NaN too
        raise ValueError(f"Plan: layer {li}: the {name} penalty's factors must be >= 0, "
                         f"got ({l1}, {l2})")
    return l1, l2


cdef class Plan:
    """Buffers and descriptors of one captured training step (one batch size, one dtype).

    Plan(dtype, layers, loss, batch, output_logits=False) with layers a list of (fan_in,
    units, activation name, alpha, has_bias[, dropout rate[, kernel penalty, bias penalty]]),
    a penalty None or the (l1, l2) of a regularizers.L1L2; `run` trains with given
    parameter and optimizer-state arrays. output_logits: the model's output is the top
    layer's logits (a loss from_logits), so `output` and the recorded outputs are those, not
    the activation the fused loss applies to them.
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
    cdef object marks  # the draws made before each of them, (slots,)
    cdef Counting counting  # what the prefetch thread draws through
    cdef mg_prefetch* prefetch_state
    cdef object _lock
    cdef dict _copies  # the private generators the run draws from (trainer_lend.pxi)
    cdef Py_ssize_t poll_every
    cdef object __weakref__
    cdef bint ready  # __init__ went through: every buffer and descriptor is set
    cdef object arena  # where _buffer carves the buffers from (a BatchedPlan's, zeroed), or None
    cdef readonly Py_ssize_t arena_used  # the bytes its buffers take, each 64-byte aligned
    cdef readonly Py_ssize_t batch
    cdef readonly int nlayers
    cdef readonly Py_ssize_t steps_done  # by the last run: all its steps unless it raised

    def __cinit__(self):
        self.L = NULL
        self.ready = False
        # One run at a time: a run writes the plan's buffers and descriptors without the
        # GIL, so a second thread's run would change them under it.
        self._lock = threading.Lock()
        self._copies = {}
        _plans.add(self)

    def run(self, *args, **kwargs):
        """Train steps [first, last) (see _run_locked), one call at a time per plan."""
        self._check_ready()
        with self._lock:
            return self._run_locked(*args, **kwargs)

    def _forget_run(self):
        """In a fork()ed child: a run the parent had in flight is not running here (its
        threads are gone); the plan is free for the child's own runs."""
        if self._lock.locked():
            self.c.prefetch = NULL
            self._clear_generators()
            self.order_key = None
            self._lock.release()

    cdef void _clear_generators(self) noexcept:
        """The run's generators (shuffling, Dropout) are no longer the plan's to draw from."""
        cdef Py_ssize_t li
        self.c.rng = NULL
        for li in range(self.nlayers):
            self.L[li].dropout_rng = NULL

    def __init__(self, dtype, list layers, str loss, Py_ssize_t batch,
                 bint output_logits=False, arena=None):
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
        if arena is not None and not (cnp.PyArray_Check(arena) and arena.dtype == np.uint8
                                      and arena.ndim == 1 and arena.flags.c_contiguous
                                      and arena.flags.writeable):
            raise TypeError("Plan: arena must be a writeable C-contiguous uint8 array")
        self.arena = arena
        self.arena_used = 0
        self.typenum = cnp.NPY_FLOAT32 if dt == cnp.dtype("float32") else cnp.NPY_FLOAT64
        self.c.itemsize = dt.itemsize
        self.batch = batch
        self.nlayers = len(layers)
        self.L = <LayerDesc*>calloc(len(layers), sizeof(LayerDesc))
        if self.L == NULL:
            raise MemoryError()
        self.c.nlayers = len(layers)
        self.c.loss = LOSSES.index(loss)
        self.c.out_act = 0 if output_logits else {"mse": 0, "sigmoid_bce": 1}.get(loss, 2)
        self.c.batch = batch
        self.shapes = []
        self.buffers = []
        self.grads = []
        self.order = None
        self.order_key = None
        cdef Py_ssize_t li, prev = -1, work = 0
        for li, spec in enumerate(layers):
            prev = self._init_layer(li, spec, prev, loss)
            work += self.L[li].fan_in * self.L[li].units * batch
        # the steps between two reads of the clock: about 256k multiply-adds of the forward
        # (tens of microseconds), at most 1024 steps
        self.poll_every = max(1, min(1024, 262144 // max(work, 1)))
        out_dim = self.L[len(layers) - 1].units
        self.c.batch_x = cnp.PyArray_DATA(self._buffer((batch, self.L[0].fan_in)))
        self.c.batch_y = cnp.PyArray_DATA(self._buffer((batch, out_dim)))
        self.c.item_losses = cnp.PyArray_DATA(self._buffer((batch * out_dim,)))
        self.c.dloss = cnp.PyArray_DATA(self._buffer((batch * out_dim,)))
        labels = self._buffer((batch,), np.int64)
        self.c.batch_labels = <cnp.int64_t*>cnp.PyArray_DATA(labels)
        self.c.model_out = cnp.PyArray_DATA(self.out_buf)
        self.ready = True

    cdef int _check_ready(self) except -1:
        # Plan.__new__(Plan), or an __init__ that raised half way: no buffers to run on
        if not self.ready:
            raise RuntimeError("Plan: not initialized (Plan(dtype, layers, loss, batch))")
        return 0

    cdef Py_ssize_t _init_layer(self, Py_ssize_t li, object spec, Py_ssize_t prev,
                                str loss) except -1:
        """Check layer li's spec, allocate its buffers; return its units."""
        cdef Py_ssize_t fan_in, units, batch = self.batch
        cdef bint top = li == self.nlayers - 1
        if len(spec) not in (5, 6, 8):
            raise ValueError(f"Plan: layer {li} must be (fan_in, units, activation, alpha, "
                             f"has_bias[, dropout rate[, kernel penalty, bias penalty]]), "
                             f"got {spec!r}")
        fan_in, units, act, alpha, has_bias = spec[:5]
        drop = float(spec[5]) if len(spec) >= 6 else 0.0
        kernel_reg = _penalty_factors(li, "kernel", spec[6] if len(spec) == 8 else None)
        bias_reg = _penalty_factors(li, "bias", spec[7] if len(spec) == 8 else None)
        if bias_reg is not None and not has_bias:
            raise ValueError(f"Plan: layer {li} has a bias penalty but no bias")
        if not 0 <= drop < 1 or (drop and top):
            raise ValueError(f"Plan: layer {li}: a dropout rate must be in [0, 1), and "
                             f"the top layer has none; got {drop}")
        if fan_in < 1 or units < 1:
            raise ValueError(f"Plan: layer {li} has shape ({fan_in}, {units})")
        if prev >= 0 and fan_in != prev:
            raise ValueError(f"Plan: layer {li} takes {fan_in} inputs, layer {li - 1} "
                             f"gives {prev}")
        if act not in ACTIVATIONS:
            raise ValueError(f"Plan: unknown activation {act!r}")
        cdef LayerDesc* layer = &self.L[li]
        layer.fan_in = fan_in
        layer.units = units
        layer.activation = ACTIVATIONS.index(act)
        layer.alpha = alpha
        layer.dropout_rate = drop
        layer.dropout_scale = 1 / (1 - drop)
        layer.kernel_reg = kernel_reg is not None
        if layer.kernel_reg:
            layer.kernel_l1, layer.kernel_l2 = kernel_reg
        layer.bias_reg = bias_reg is not None
        if layer.bias_reg:
            layer.bias_l1, layer.bias_l2 = bias_reg
        self.c.regularized = self.c.regularized or layer.kernel_reg or layer.bias_reg
        if drop:
            layer.dropout_mask = cnp.PyArray_DATA(self._buffer((batch, units)))
            layer.dropout_output = cnp.PyArray_DATA(self._buffer((batch, units)))
        self.shapes.append(((fan_in, units), (units,) if has_bias else None))
        z = self._buffer((batch, units))
        layer.pre_activation = cnp.PyArray_DATA(z)
        layer.output = layer.pre_activation
        a = z
        if layer.activation != A_LINEAR or (top and loss != "mse"):
            a = self._buffer((batch, units))
            layer.output = cnp.PyArray_DATA(a)
        if top:
            # a loss from_logits (out_act 0): the model's output is the logits
            self.out_buf = z if loss != "mse" and self.c.out_act == 0 else a
        layer.grad_out = cnp.PyArray_DATA(self._buffer((batch, units)))
        kernel_grad = self._buffer((fan_in, units))
        layer.kernel_grad = cnp.PyArray_DATA(kernel_grad)
        bias_grad = self._buffer((units,)) if has_bias else None
        layer.bias_grad = cnp.PyArray_DATA(bias_grad) if has_bias else NULL
        self.grads += [kernel_grad, bias_grad]
        return units

    cdef object _buffer(self, tuple shape, dtype=None):
        """A zeroed buffer of the plan: its own array, or the next 64-byte aligned piece of
        the arena (a BatchedPlan's one allocation for all its nets)."""
        if dtype is None:
            dtype = np.float32 if self.typenum == cnp.NPY_FLOAT32 else np.float64
        cdef Py_ssize_t start = (self.arena_used + 63) // 64 * 64
        cdef Py_ssize_t nbytes = np.dtype(dtype).itemsize
        for d in shape:
            nbytes *= d
        if self.arena is None:
            a = np.zeros(shape, dtype)
        else:
            if start + nbytes > len(self.arena):
                raise ValueError(f"Plan: the arena holds {len(self.arena)} bytes, the plan "
                                 f"needs more")
            a = self.arena[start:start + nbytes].view(dtype).reshape(shape)  # zeroed (its maker)
        self.arena_used = start + nbytes
        self.buffers.append(a)
        return a

    def __dealloc__(self):
        free(self.L)
        free(self.prefetch_state)

    def gradients(self):
        """The gradient buffers [dW0, db0 or None, dW1, ...], rewritten by every step."""
        self._check_ready()
        return list(self.grads)

    def last_order(self):
        """A copy of the sample order of the last epoch a shuffling run drew (None if none)."""
        return None if self.order is None or self.order_key is None else self.order.copy()

    def output(self, Py_ssize_t rows):
        """A copy of the model's output for the first `rows` of the last batch (the top
        layer's activated output, or its logits for a plan with output_logits)."""
        self._check_ready()
        if not 0 <= rows <= self.batch:
            raise ValueError(f"rows must be in [0, {self.batch}], got {rows}")
        return self.out_buf[:rows].copy()

    def _run_locked(self, x, y, labels, orders, Py_ssize_t first, Py_ssize_t last,
                    Py_ssize_t per_epoch, list params, list states, str optimizer,
                    dict hyper, long long iteration, double[::1] losses,
                    bint flush_denormal=False, shuffle_with=None, record=None,
                    record_weights=None, lrs=None, dropout_rngs=None, accuracy=None):
        """Train steps [first, last); write each step's loss into losses; return the number
        of output snapshots written (record).

        x (n, in) and y (n, out) or labels (n,) int64; orders (epochs, n) int64 sample
        orders or None (rows in order); params [W0, b0 or None, W1, ...] updated in place;
        states per parameter a tuple of its optimizer arrays (None for a variable not in
        use); optimizer the update rule (OPTIMIZERS) and hyper every number it reads
        (_RULES: "lr" and the rule's, weight decay and clipping when set);
        flush_denormal: subnormals flushed to zero (faster once weights get that small, not
        IEEE arithmetic; fpenv.h). shuffle_with: a numpy Generator that draws each epoch's
        order (its permutation(n)) in place of `orders`, at the epoch's first step; a run
        that starts within an epoch goes on with the order the previous run drew.
        record: (rows, every, phase, out) to write the model's outputs for `rows` (m, in)
        after every `every`-th step, counting `phase` steps before `first`, into out[0],
        out[1], ... (out: (snapshots, m, out_dim), as many as the steps make).
        record_weights: (every, phase, outs) to copy the parameters after every `every`-th
        step (counted as for record) into outs, a list like params of arrays (snapshots,
        *shape) (None for a missing bias), at 0, 1, ... lrs: float64 (last - first,), the
        learning rate of each step (a schedule), in place of hyper["lr"]. dropout_rngs: per
        layer, the numpy Generator its Dropout draws from (None for a layer without one); a
        generator may also be shuffle_with. accuracy: (kinds, counts) to count, for each
        kind of ACCURACIES, the samples of each step's batch its output gets right (before
        the update) into counts[s - first, j], int64 (last - first, len(kinds)): "binary"
        on one output column ((output > 0.5) == (target > 0.5)), "categorical" (argmax,
        the first max, as np.argmax), "sparse_categorical" (argmax against the labels).

        On the main thread, a run polls the signal handlers every 20 ms or so; when one
        raises (KeyboardInterrupt), the run stops after the step it is in, leaves the
        parameters, states, losses, recordings and generators as the steps done left them,
        and raises it; steps_done says how many. A run of one step never stops early.
        """
        cdef RunData data
        self.steps_done = 0
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if len(params) != 2 * self.nlayers or len(states) != 2 * self.nlayers:
            raise ValueError(f"expected {2 * self.nlayers} parameters and states")
        self._check_data(&data, x, y, labels)
        self._check_steps(&data, orders, first, last, per_epoch, losses, shuffle_with)
        self._set_rule(optimizer, hyper, iteration)
        self._bind_parameters(params, states, optimizer)
        generators = self._check_generators(shuffle_with, dropout_rngs)
        self._check_rates(lrs, first, last)
        self.c.n = data.n
        _set_recording(self.L, &self.c, self.typenum, self.shapes, record, record_weights,
                       first, last)
        _set_accuracy(&self.c, self.L[self.nlayers - 1].units, accuracy, first, last)
        if last == first:
            return 0
        # (every run sets its accuracy argument first: none is left from a run before)
        _check_apart(self.L, &self.c, self.typenum, self.buffers, &data, lrs, losses,
                     last - first)
        try:
            self._run_with_generators(&data, generators, first, last, per_epoch, &losses[0],
                                      flush_denormal, shuffle_with, dropout_rngs)
        finally:
            snapshots = self.c.rec_count
            self.c.lrs = NULL
            self.c.counts = NULL
            self.c.n_counted = 0
            _end_recording(self.L, &self.c)
            # The order in the buffer now is that of the last epoch trained: a next run may
            # go on within that epoch with it.
            self.order_key = (None if shuffle_with is None or not self.steps_done else
                              (id(shuffle_with), data.n,
                               (first + self.steps_done - 1) // per_epoch))
        return snapshots

    cdef int _check_data(self, RunData* data, x, y, labels) except -1:
        """The inputs, and the targets or labels, of n samples."""
        cdef int t = self.typenum
        cdef Py_ssize_t in_dim = self.L[0].fan_in
        cdef Py_ssize_t out_dim = self.L[self.nlayers - 1].units
        n = len(x) if cnp.PyArray_Check(x) and cnp.PyArray_NDIM(x) >= 1 else -1
        data.x = _ptr("x", x, t, (n, in_dim), False)
        data.y = NULL
        data.labels = NULL
        data.n = n
        if self.c.loss == L_SPARSE:
            if not (cnp.PyArray_Check(labels) and labels.dtype == cnp.dtype("int64")
                    and labels.shape == (n,) and labels.flags.c_contiguous):
                raise TypeError(f"labels must be a C-contiguous int64 array of shape ({n},)")
            if n and (labels.min() < 0 or labels.max() >= out_dim):
                raise ValueError(f"labels must be in [0, {out_dim})")
            data.labels = <cnp.int64_t*>cnp.PyArray_DATA(labels)
        else:
            data.y = _ptr("y", y, t, (n, out_dim), False)
        return 0

    cdef int _check_steps(self, RunData* data, orders, Py_ssize_t first, Py_ssize_t last,
                          Py_ssize_t per_epoch, double[::1] losses, shuffle_with) except -1:
        """The step range, the losses' room, and where the epochs' orders come from."""
        cdef Py_ssize_t n = data.n
        if n == 0 and last > first:
            raise ValueError("no samples")
        if per_epoch != (n + self.batch - 1) // self.batch:
            raise ValueError(f"per_epoch must be ceil(n / batch) = "
                             f"{(n + self.batch - 1) // self.batch}, got {per_epoch}")
        if not 0 <= first <= last:
            raise ValueError(f"bad step range [{first}, {last})")
        if losses.shape[0] != last - first:
            raise ValueError(f"losses has {losses.shape[0]} places for {last - first} steps")
        epochs_needed = (last + per_epoch - 1) // per_epoch if last > first else 0
        data.orders = NULL
        data.orders_bytes = 0
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
            data.orders = <cnp.int64_t*>cnp.PyArray_DATA(orders)
            data.orders_bytes = orders.nbytes
        self.c.rng = NULL
        if shuffle_with is not None:
            if not isinstance(shuffle_with, np.random.Generator):
                raise TypeError(f"shuffle_with must be a numpy Generator, got "
                                f"{type(shuffle_with).__name__}")
            if orders is not None:
                raise ValueError("give orders or shuffle_with, not both")
            if per_epoch and first % per_epoch and self.order_key != (
                    id(shuffle_with), n, first // per_epoch):
                raise ValueError("a run that shuffles and starts within an epoch must go on "
                                 "from the run that drew that epoch's order")
            if self.order is None or len(self.order) != n:
                self.order = np.empty(n, np.int64)  # once per data size, not per step
            self.c.order = <cnp.int64_t*>cnp.PyArray_DATA(self.order)
        return 0

    cdef int _set_rule(self, str optimizer, dict hyper, long long iteration) except -1:
        """The update rule and its numbers, all from `hyper` (_RULES: no defaults here)."""
        numbers, _, _ = _RULES[optimizer]
        for key in hyper:
            if key != "lr" and key not in numbers and key not in _OPTIONAL_NUMBERS:
                raise ValueError(f"{optimizer} reads no {key!r}; it reads lr, "
                                 f"{', '.join(numbers + _OPTIONAL_NUMBERS)}")
        for key in ("lr", *numbers):
            if key not in hyper:
                raise ValueError(f"{optimizer} needs {key!r} in hyper")
        self.c.rule = OPTIMIZERS.index(optimizer)
        self.c.lr = hyper["lr"]
        # a number the rule does not read is left nan (nesterov False)
        self.c.momentum = hyper["momentum"] if "momentum" in numbers else NAN
        self.c.nesterov = hyper["nesterov"] if "nesterov" in numbers else False
        self.c.beta_1 = hyper["beta_1"] if "beta_1" in numbers else NAN
        self.c.beta_2 = hyper["beta_2"] if "beta_2" in numbers else NAN
        self.c.epsilon = hyper["epsilon"] if "epsilon" in numbers else NAN
        self.c.rho = hyper["rho"] if "rho" in numbers else NAN
        self.c.weight_decay = hyper.get("weight_decay", 0.0)  # the kernels' "none"
        self.c.clipvalue = hyper.get("clipvalue", INFINITY)
        self.c.clipnorm = hyper.get("clipnorm", -1.0)
        self.c.global_clipnorm = hyper.get("global_clipnorm", -1.0)
        if self.c.clipnorm >= 0 and self.c.global_clipnorm >= 0:
            raise ValueError("give clipnorm or global_clipnorm, not both")
        if iteration < 0:  # Adam's step t = iteration + 1 must be >= 1, as adam_update's
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        self.c.iteration = iteration
        return 0

    cdef int _bind_parameters(self, list params, list states, str optimizer) except -1:
        """Point each layer at its parameters and their state arrays (checked)."""
        cdef int t = self.typenum
        cdef Py_ssize_t li
        _, required, accepted = _RULES[optimizer]
        if self.c.rule == O_RMSPROP and self.c.momentum != 0:
            required = 2  # as optim.rmsprop_update: momentum needs its buffer
        for li in range(self.nlayers):
            shape_w, shape_b = self.shapes[li]
            self.L[li].kernel = _ptr((-1, 2 * li), params[2 * li], t, shape_w)
            if (shape_b is None) != (params[2 * li + 1] is None):
                raise ValueError(f"parameter {2 * li + 1}: the bias does not match the plan")
            self.L[li].bias = NULL
            if shape_b is not None:
                self.L[li].bias = _ptr((-1, 2 * li + 1), params[2 * li + 1], t, shape_b)
            self._bind_state(self.L[li].kernel_state, states[2 * li], shape_w, 2 * li,
                             optimizer, required, accepted)
            if shape_b is not None:
                self._bind_state(self.L[li].bias_state, states[2 * li + 1], shape_b,
                                 2 * li + 1, optimizer, required, accepted)
        return 0

    cdef int _bind_state(self, void** slots, tuple state, tuple shape, Py_ssize_t k,
                         str optimizer, Py_ssize_t required, Py_ssize_t accepted) except -1:
        """The state arrays of parameter k: the first `required` must be given; a later one
        is used when it is given (not None)."""
        cdef Py_ssize_t i
        if not required <= len(state) <= accepted:
            wanted = (f"{required}" if required == accepted else
                      f"{required} to {accepted}")
            raise ValueError(f"parameter {k}: {optimizer} needs {wanted} state arrays, got "
                             f"{len(state)}")
        for i in range(3):
            used = i < required or (i < len(state) and state[i] is not None)
            slots[i] = _ptr((i, k), state[i], self.typenum, shape) if used else NULL
        return 0

    cdef list _check_generators(self, shuffle_with, dropout_rngs):
        """Every generator the run draws from: shuffle_with and each Dropout's, once."""
        cdef Py_ssize_t li
        generators = [] if shuffle_with is None else [shuffle_with]
        if dropout_rngs is None:
            dropout_rngs = [None] * self.nlayers
        if not isinstance(dropout_rngs, list) or len(dropout_rngs) != self.nlayers:
            raise ValueError(f"dropout_rngs must be a list of {self.nlayers} generators or None")
        for li in range(self.nlayers):
            gen = dropout_rngs[li]
            if (gen is None) != (self.L[li].dropout_rate == 0):
                raise ValueError(f"dropout_rngs[{li}]: a generator for a layer with Dropout, "
                                 f"None for one without")
            if gen is not None:
                if not isinstance(gen, np.random.Generator):
                    raise TypeError(f"dropout_rngs[{li}] must be a numpy Generator")
                if not any(gen is g for g in generators):
                    generators.append(gen)
        return generators

    cdef int _check_rates(self, lrs, Py_ssize_t first, Py_ssize_t last) except -1:
        """The learning rate of each step (a schedule's), or None."""
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
        return 0

    cdef int _run_with_generators(self, RunData* data, list generators, Py_ssize_t first,
                                  Py_ssize_t last, Py_ssize_t per_epoch, double* losses,
                                  bint flush_denormal, shuffle_with, dropout_rngs) except -1:
        """The run, each generator it draws from lent to it (trainer_lend.pxi: no lock held
        while it trains), the epochs' orders drawn ahead when worth it."""
        cdef long long drawn = 0
        cdef bint prefetch = False
        cdef _Loan shuffle_loan = None
        if dropout_rngs is None:
            dropout_rngs = [None] * self.nlayers
        if shuffle_with is not None:
            # The epochs whose first step is in [first, last) draw an order each.
            drawn = ((last - 1) // per_epoch - (first + per_epoch - 1) // per_epoch + 1
                     if per_epoch else 0)
            prefetch = (drawn >= _PREFETCH_MIN_ORDERS and _prefetch_threads >= 2
                        and not any(g is shuffle_with for g in dropout_rngs))
            if not drawn and not any(g is shuffle_with for g in dropout_rngs):
                generators = generators[1:]  # it goes on with the order drawn before
        loans = []
        try:
            shuffle_loan = self._lend(loans, generators, shuffle_with, dropout_rngs)
            if prefetch:
                # last before the run, which cannot fail: the producer stops only after
                # the run has taken every order it drew, or when told to
                self._prefetch_start(drawn)
            self._run_nogil(data, first, last, per_epoch, losses, flush_denormal)
        finally:
            if self.c.prefetch != NULL:
                with nogil:
                    mg_prefetch_stop(self.c.prefetch)
                    mg_prefetch_join(self.c.prefetch)
                if self.steps_done < last - first:
                    # It drew orders the run did not take: the generator goes back to where
                    # the orders taken left it.
                    self._rewind(shuffle_loan, data.n)
                self.c.prefetch = NULL
            self._clear_generators()
            for loan in reversed(loans):
                loan.give_back()
        return 0

    cdef _Loan _lend(self, list loans, list generators, shuffle_with, list dropout_rngs):
        """Lend the run its generators (appended to loans, for the caller to give back) and
        point the shuffle and the Dropouts at their copies; return the shuffle's loan (None
        when it goes on with the order drawn before)."""
        cdef Py_ssize_t li
        cdef _Loan shuffle_loan = None
        for i, gen in enumerate(generators):
            loan = _Loan(gen, self._copy(i, gen))
            loans.append(loan)
            if gen is shuffle_with:
                shuffle_loan = loan
        if shuffle_with is not None:
            self.c.rng = _bitgen(shuffle_loan.copy if shuffle_loan is not None
                                 else shuffle_with)
        for li in range(self.nlayers):
            gen = dropout_rngs[li]
            self.L[li].dropout_rng = NULL
            for loan in loans:
                if loan.owner is gen:
                    self.L[li].dropout_rng = _bitgen(loan.copy)
        return shuffle_loan

    cdef object _copy(self, Py_ssize_t i, owner):
        """The private generator (of owner's kind) that the run's i-th loan draws from."""
        kind = type(owner.bit_generator)
        got = self._copies.get(i)
        if got is None or type(got.bit_generator) is not kind:
            got = np.random.Generator(kind())  # once per plan and kind, not per run
            self._copies[i] = got
        return got

    cdef int _rewind(self, _Loan loan, Py_ssize_t n) except -1:
        """The shuffle's copy at the state after the orders the run took (prefetch done)."""
        cdef long long taken = self.c.prefetch_next
        cdef long long produced = mg_prefetch_produced(self.c.prefetch)
        draws = (self.marks[taken % len(self.marks)] if taken < produced
                 else self.counting.draws)
        loan.restart()
        if n - 1 > 0xffffffff:  # some draws 64-bit: draw the orders again
            _skip_permutations(_bitgen(loan.copy), n, taken)
        else:
            _skip(loan.copy, draws)
        return 0

    cdef int _prefetch_start(self, long long drawn) except -1:
        """Start the thread that draws the run's `drawn` orders ahead (prefetch.h)."""
        cdef Py_ssize_t n = self.c.n
        cdef long long slots = max(4, min(64, (1 << 17) // max(n, 1)))  # about 1 MB at most
        if self.ring is None or self.ring.shape[1] != n:
            self.ring = np.empty((slots, n), np.int64)  # once per data size, not per run
        if self.prefetch_state == NULL:
            self.prefetch_state = <mg_prefetch*>malloc(sizeof(mg_prefetch))
            if self.prefetch_state == NULL:
                raise MemoryError()
        if self.marks is None or len(self.marks) != len(self.ring):
            self.marks = np.zeros(len(self.ring), np.int64)
        self.counting.gen = self.c.rng
        self.counting.draws = 0
        if mg_prefetch_start(self.prefetch_state, <mg_perm_fn>_permutation_counted,
                             &self.counting, <cnp.int64_t*>cnp.PyArray_DATA(self.ring), n,
                             self.ring.shape[0], drawn,
                             <cnp.int64_t*>cnp.PyArray_DATA(self.marks),
                             &self.counting.draws):
            self.c.prefetch = self.prefetch_state
            self.c.prefetch_next = 0
        return 0

    cdef int _run_nogil(self, RunData* data, Py_ssize_t first, Py_ssize_t last,
                        Py_ssize_t per_epoch, double* losses, bint flush_denormal) except -1:
        """The steps, without the GIL; raises what a signal handler raised (see run)."""
        cdef unsigned int mode = 0
        cdef Py_ssize_t done
        # Only the main thread runs signal handlers; a run of one step leaves them to Python.
        main = threading.current_thread() is threading.main_thread()
        self.c.poll_ns = _POLL_NS if main and last - first > 1 else 0
        self.c.poll_every = self.poll_every
        self.c.poll_left = self.poll_every
        self.c.poll_at = mg_clock_ns() + self.c.poll_ns
        self.c.ftz = flush_denormal
        with nogil:
            if flush_denormal:
                mode = mg_ftz_enter()
                self.c.ftz_mode = mode
            if self.typenum == cnp.NPY_FLOAT32:
                done = _run(self.L, &self.c, <const float*>data.x, <const float*>data.y,
                            data.labels, data.orders, first, last, per_epoch, losses)
            else:
                done = _run(self.L, &self.c, <const double*>data.x, <const double*>data.y,
                            data.labels, data.orders, first, last, per_epoch, losses)
            if flush_denormal:
                mg_ftz_leave(mode)
        self.steps_done = done
        if done < last - first:
            return -1  # the handler's exception is set (_poll)
        return 0
