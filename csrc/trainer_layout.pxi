# The descriptors of a plan: one LayerDesc per Dense layer, one Config for the run, and
# the names of the losses and update rules the plan takes (their index is the code).

LOSSES = ("mse", "sigmoid_bce", "softmax_xent", "sparse_softmax_xent")
OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "rmsprop", "adagrad")

cdef enum:
    L_MSE, L_BCE, L_XENT, L_SPARSE

cdef enum:
    O_SGD, O_MOMENTUM, O_ADAM, O_RMSPROP, O_ADAGRAD

# The accuracies a run counts (their index is the code), at most MAX_COUNTED per run.
ACCURACIES = ("binary", "categorical", "sparse_categorical")

cdef enum:
    ACC_BINARY, ACC_CATEGORICAL, ACC_SPARSE

cdef enum:
    MAX_COUNTED = 8

# What each update rule's kernel takes (loops.pxd), as optim.pyx's wrappers take it: the
# numbers it reads from `hyper` (the optimizer gives them all: Optimizer.update_arguments;
# none has a default here), how many state arrays must be given, and how many it may take
# (a later one switches its variant on when given: Adam's vhat is AMSGrad, RMSprop's
# momentum buffer and average gradient are momentum and centered).
_RULES = {
    "sgd": ((), 0, 0),
    "sgd_momentum": (("momentum", "nesterov"), 1, 1),
    "adam": (("beta_1", "beta_2", "epsilon"), 2, 3),
    "rmsprop": (("rho", "momentum", "epsilon"), 1, 3),
    "adagrad": (("epsilon",), 1, 1),
}
# Read by every rule when given; absent, they are off (the kernels' own spelling of off).
_OPTIONAL_NUMBERS = ("weight_decay", "clipvalue", "clipnorm", "global_clipnorm")


cdef struct LayerDesc:
    Py_ssize_t fan_in
    Py_ssize_t units
    int activation
    double alpha
    void* kernel        # the parameters (updated in place) and their optimizer state
    void* bias
    void* kernel_state[3]
    void* bias_state[3]
    void* pre_activation  # buffers: z = h W + b; the output f(z) (z itself when linear);
    void* output
    void* grad_out      # the gradient at the output, then at the pre-activation (in place);
    void* kernel_grad   # and the parameters' gradients
    void* bias_grad
    void* kernel_record  # weight recording: copies of kernel and bias go to record[count]
    void* bias_record
    double dropout_rate   # Dropout after the layer: its rate (0: none), the scale of what it
    double dropout_scale  # keeps, the mask it drew (0 or the scale), the output it passes
    void* dropout_mask    # on, and the generator it draws from (set for each run)
    void* dropout_output
    bitgen_t* dropout_rng
    bint kernel_reg       # an L1L2 penalty on the kernel (its factors l1, l2), on the bias
    double kernel_l1
    double kernel_l2
    bint bias_reg
    double bias_l1
    double bias_l2


cdef struct Config:
    int nlayers
    int loss
    int rule
    double lr
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double weight_decay
    double clipvalue
    double rho
    double clipnorm         # < 0: none (each gradient scaled to this norm, as Keras)
    double global_clipnorm  # < 0: none (all gradients together; updates wait for them all)
    long long iteration
    const double* lrs  # when set, the learning rate of step s is lrs[s - first] (a schedule)
    Py_ssize_t n
    Py_ssize_t batch
    void* batch_x       # the gathered batch (shuffled runs)
    void* batch_y
    cnp.int64_t* batch_labels
    void* item_losses   # per-element (bce) or per-sample (softmax) losses
    void* dloss         # their gradient, 1 / batch
    bitgen_t* rng  # when set, each epoch's order is drawn here into `order`
    mg_prefetch* prefetch  # ... or, when set, drawn ahead by its thread and taken from it
    long long prefetch_next  # the index in the run of the next order to take from prefetch
    cnp.int64_t* order
    bint regularized  # some layer has a penalty: the loss adds them (trainer_regularize.pxi)
    int out_act   # the output activation a fused loss applies: 0 none, 1 sigmoid, 2 softmax
    const void* rec_x  # recording: the model's outputs for rec_x (rec_rows rows) after
    void* rec_out      # every rec_every-th step, the first after rec_next steps (counted
    Py_ssize_t rec_rows  # down by _snapshot_due), into rec_out[rec_count], rec_count += 1,
    Py_ssize_t rec_every  # while rec_count < rec_room (the snapshots rec_out holds)
    Py_ssize_t rec_next
    Py_ssize_t rec_count
    Py_ssize_t rec_room
    Py_ssize_t wrec_every  # weight recording: the parameters after every wrec_every-th step,
    Py_ssize_t wrec_next   # the first after wrec_next steps, into the layers' kernel_record
    Py_ssize_t wrec_count  # and bias_record at wrec_count, wrec_count += 1, while
    Py_ssize_t wrec_room   # wrec_count < wrec_room
    Py_ssize_t itemsize
    long long poll_ns      # signals: polled at most every poll_ns (0: never, not the main
    long long poll_at      # thread), the clock read every poll_every steps (poll_left to
    Py_ssize_t poll_every  # go), the next poll due at poll_at (mg_clock_ns)
    Py_ssize_t poll_left
    bint ftz               # the run flushes subnormals; the caller's mode, for the handlers
    unsigned int ftz_mode
    const void* model_out  # the model's output of the step's batch (Plan.output's buffer)
    int n_counted          # accuracies counted per step (trainer_accuracy.pxi): their kinds,
    int counted[MAX_COUNTED]  # and counts[(s - first) * n_counted + j] for step s, kind j
    cnp.int64_t* counts


cdef inline bint _activated(const LayerDesc* layer, const Config* c, int li) noexcept nogil:
    """Whether the step applies the layer's activation itself (a fused loss applies the top
    layer's inside its kernel)."""
    return layer.activation != A_LINEAR and (li < c.nlayers - 1 or c.loss == L_MSE)
