"""Batched capture (microgradnet.fastpath.batched): K nets trained in one call into C end
with the bits of their own solo fits, whatever they are batched with."""

import signal
import threading
import time
import tracemalloc

import numpy as np
import pytest

import microgradnet as mg
from microgradnet.callbacks import Callback
from microgradnet.fastpath import batch_key, fit_many
from microgradnet.fastpath.fpenv import trainer
from microgradnet.layers import Activation, Dense, Dropout
from microgradnet.losses import SparseCategoricalCrossentropy
from microgradnet.models import Sequential

opts = mg.optimizers


def _data(n, features, outputs, kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(dtype)
    if kind == "binary":
        y = (x[:, :1] * x[:, -1:] > 0).astype(dtype)
    elif kind == "onehot":
        y = np.eye(outputs, dtype=dtype)[rng.integers(0, outputs, n)]
    elif kind == "labels":
        y = rng.integers(0, outputs, n)
    else:
        y = rng.normal(size=(n, outputs)).astype(dtype)
    return x, y


# Each case: one structure (layers, loss, optimizer kind, dtype, data, batch not dividing
# n, shuffle on or off) and K nets of it with their own weights, hyper-parameters and
# generators. make(k) builds and compiles net k.
def _case_relu_sgd(k):
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dense(1, activation="sigmoid")])
    opt = opts.SGD(learning_rate=0.05 + 0.03 * k, momentum=[0.0, 0.9, 0.5, 0.0][k % 4],
                nesterov=k == 2, clipvalue=0.5 if k == 3 else None)
    return model, opt, "binary_crossentropy"


def _case_tanh_adam(k):
    model = Sequential([Dense(6, activation="tanh", input_dim=3), Dense(6, activation="gelu"),
                        Dense(3, activation="softmax")])
    opt = opts.Adam(learning_rate=0.01 * (k + 1), beta_1=0.9 - 0.1 * k, beta_2=0.999 - 0.01 * k,
                 amsgrad=k == 1, weight_decay=0.01 if k == 2 else None)
    return model, opt, "categorical_crossentropy"


def _case_dropout_rmsprop(k):
    model = Sequential([Dense(7, activation="sigmoid", input_dim=3),
                        Dropout(0.3, seed=k if k % 2 else None), Dense(5), Activation("elu"),
                        Dropout(0.2), Dense(2)])
    opt = opts.RMSprop(learning_rate=0.002 * (k + 1), rho=0.9 - 0.05 * k,
                    momentum=0.5 if k == 1 else 0.0, centered=k == 2,
                    clipnorm=0.3 if k == 0 else None)
    return model, opt, "mean_squared_error"


def _case_sparse_adagrad(k):
    model = Sequential([Dense(5, activation="leaky_relu", input_dim=3), Dense(4)])
    opt = opts.Adagrad(learning_rate=0.05 * (k + 1), global_clipnorm=1.0 if k == 1 else None)
    return model, opt, SparseCategoricalCrossentropy(from_logits=True)


def _case_regularized_adam(k):
    reg = mg.regularizers.L1L2(l1=0.002, l2=0.01)
    model = Sequential([Dense(6, activation="tanh", input_dim=3, kernel_regularizer=reg,
                              bias_regularizer="l1"),
                        Dense(1, kernel_regularizer=mg.regularizers.L2(0.05))])
    opt = opts.Adam(learning_rate=0.01 * (k + 1), clipnorm=0.5 if k == 2 else None)
    return model, opt, "mse"


CASES = {
    "relu-sgd-f32-shuffled": (_case_relu_sgd, (37, 3, 1, "binary", np.float32), 8, True),
    "tanh-adam-f64-in-order": (_case_tanh_adam, (29, 3, 3, "onehot", np.float64), 6, False),
    "dropout-rmsprop-f32": (_case_dropout_rmsprop, (23, 3, 2, "regression", np.float32), 5,
                            True),
    "sparse-adagrad-f64": (_case_sparse_adagrad, (31, 3, 4, "labels", np.float64), 7, True),
    "regularized-adam-f32": (_case_regularized_adam, (27, 3, 1, "regression", np.float32), 5,
                             True),
}
EPOCHS = 3


def _build(make, k, dtype):
    model, opt, loss = make(k)
    model.build((None, 3))
    rng = np.random.default_rng(100 + k)  # each net its own initial weights
    for p in model.parameters():  # set_weights would keep float32 (it writes in place)
        p.data = rng.uniform(-0.8, 0.8, p.data.shape).astype(dtype)
    model.compile(optimizer=opt, loss=loss)
    return model


def _state(model, history):
    opt = model.optimizer
    states = [s for t in opt.states_for(model.parameters()) for s in t if s is not None]
    return ([w.copy() for w in model.get_weights()], [s.copy() for s in states],
            history.history, history.batch_history["loss"], history.epoch,
            history.epoch_ends, opt.iterations)


def _assert_same(a, b):
    wa, sa, *rest_a = a
    wb, sb, *rest_b = b
    assert len(wa) == len(wb) and len(sa) == len(sb)
    for u, v in zip(wa + sa, wb + sb, strict=True):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert rest_a == rest_b


def _solo(make, dtype, x, y, batch, shuffle, k, epochs=EPOCHS):
    model = _build(make, k, dtype)
    with mg.random.using_generator(np.random.default_rng(k)):
        h = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=shuffle, verbose=0)
    return _state(model, h)


def _batched(make, dtype, x, y, batch, shuffle, ks, epochs=EPOCHS):
    models = [_build(make, k, dtype) for k in ks]
    hs = fit_many(models, x, y, generators=[np.random.default_rng(k) for k in ks],
                  batch_size=batch, epochs=epochs, shuffle=shuffle, verbose=0)
    for h in hs:
        assert isinstance(h.batch_losses, np.ndarray)
        assert h.batch_losses.tolist() == h.batch_history["loss"]
    return [_state(m, h) for m, h in zip(models, hs, strict=True)]


@pytest.mark.parametrize("case", list(CASES))
def test_each_net_ends_with_the_bits_of_its_own_fit(case):
    make, spec, batch, shuffle = CASES[case]
    x, y = _data(*spec)
    dtype = spec[-1]
    ks = [0, 1, 2, 3]
    got = _batched(make, dtype, x, y, batch, shuffle, ks)
    assert all(w.dtype == dtype for w in got[0][0])
    for k in ks:
        _assert_same(got[k], _solo(make, dtype, x, y, batch, shuffle, k))


def test_solo_fits_that_draw_their_orders_ahead_give_the_same_bits():
    # 8 epochs or more: the solo fit draws its orders on a second thread (prefetch.h), the
    # batched run in the step; the same draws
    make, spec, batch, shuffle = CASES["relu-sgd-f32-shuffled"]
    x, y = _data(*spec)
    got = _batched(make, np.float32, x, y, batch, shuffle, [0, 1], epochs=9)
    for k in (0, 1):
        _assert_same(got[k], _solo(make, np.float32, x, y, batch, shuffle, k, epochs=9))


@pytest.mark.parametrize("case", ["relu-sgd-f32-shuffled", "dropout-rmsprop-f32"])
def test_a_net_does_not_depend_on_its_batch_nor_its_place_in_it(case):
    make, spec, batch, shuffle = CASES[case]
    x, y = _data(*spec)
    dtype = spec[-1]
    whole = _batched(make, dtype, x, y, batch, shuffle, [0, 1, 2, 3])
    reversed_ = _batched(make, dtype, x, y, batch, shuffle, [3, 2, 1, 0])[::-1]
    halves = (_batched(make, dtype, x, y, batch, shuffle, [2, 0])[::-1]
              + _batched(make, dtype, x, y, batch, shuffle, [3, 1])[::-1])
    halves = [halves[0], halves[2], halves[1], halves[3]]
    for a, b, c in zip(whole, reversed_, halves, strict=True):
        _assert_same(a, b)
        _assert_same(a, c)


def test_one_net_without_generators_trains_as_fit_on_the_shared_generator():
    make, spec, batch, shuffle = CASES["relu-sgd-f32-shuffled"]
    x, y = _data(*spec)
    mg.manual_seed(7)
    model = _build(make, 0, np.float32)
    h = model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0)
    solo = _state(model, h)
    mg.manual_seed(7)
    model = _build(make, 0, np.float32)
    (h,) = fit_many([model], x, y, batch_size=batch, epochs=EPOCHS, verbose=0)
    _assert_same(_state(model, h), solo)
    # and the shared generator moved on as fit moves it
    mg.manual_seed(7)
    model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0)
    after_fit = mg.random.generator().random()
    model = _build(make, 0, np.float32)  # building draws initial weights: before the seed
    mg.manual_seed(7)
    fit_many([model], x, y, batch_size=batch, epochs=EPOCHS)
    assert mg.random.generator().random() == after_fit


def test_placement_parameters_packed_side_by_side_in_one_array():
    make, spec, batch, shuffle = CASES["tanh-adam-f64-in-order"]
    x, y = _data(*spec)
    apart = _batched(make, np.float64, x, y, batch, shuffle, [0, 1, 2])
    models = [_build(make, k, np.float64) for k in range(3)]
    params = [p for m in models for p in m.parameters()]
    pool = np.empty(sum(p.data.size for p in params) + 1, np.float64)[1:]  # not 16-aligned
    at = 0
    for p in params:  # every net's parameters adjacent, one after the other
        view = pool[at:at + p.data.size].reshape(p.data.shape)
        view[...] = p.data
        p.data = view
        at += p.data.size
    hs = fit_many(models, x, y, generators=[np.random.default_rng(k) for k in range(3)],
                  batch_size=batch, epochs=EPOCHS, shuffle=shuffle)
    for m, h, a in zip(models, hs, apart, strict=True):
        _assert_same(_state(m, h), a)


def _w3_like(units=8, activation="relu", loss="binary_crossentropy", opt=None,
             dtype=np.float32, reg=None):
    top = "sigmoid" if loss == "binary_crossentropy" else "linear"
    model = Sequential([Dense(units, activation=activation, input_dim=2, kernel_regularizer=reg),
                        Dense(1, activation=top)])
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    model.compile(optimizer=opt or opts.SGD(0.1), loss=loss)
    return model


def test_batch_key_names_the_structure_not_the_hyper_parameters():
    x, y = _data(20, 2, 1, "binary", np.float32)
    kw = {"epochs": 2, "batch_size": 8}
    base = batch_key(_w3_like(), x, y, kw)
    assert base is not None and hash(base) is not None
    assert batch_key(_w3_like(opt=opts.SGD(0.01, momentum=0.9)), x, y, kw) == base
    assert batch_key(_w3_like(units=9), x, y, kw) != base
    assert batch_key(_w3_like(activation="tanh"), x, y, kw) != base
    assert batch_key(_w3_like(loss="mse"), x, y, kw) != base
    assert batch_key(_w3_like(opt=opts.Adam()), x, y, kw) != base
    # a regularizer's factors are part of the structure (each net's plan is built with them)
    l2 = batch_key(_w3_like(reg="l2"), x, y, kw)
    assert l2 is not None and l2 != base
    assert batch_key(_w3_like(reg="l2"), x, y, kw) == l2
    assert batch_key(_w3_like(reg=mg.regularizers.L2(0.5)), x, y, kw) != l2
    assert batch_key(_w3_like(), x, y, {**kw, "epochs": 3}) != base
    assert batch_key(_w3_like(), x, y, {**kw, "batch_size": 4}) != base
    assert batch_key(_w3_like(), x, y, {**kw, "shuffle": False}) != base
    assert batch_key(_w3_like(), x.copy(), y, kw) != base
    x64 = x.astype(np.float64)
    assert batch_key(_w3_like(dtype=np.float64), x64, y, kw) != batch_key(_w3_like(), x64, y, kw)
    # runs that need Python between batches, or are not captured: not batchable
    metrics = _w3_like()  # accuracy is counted in C (test_captured_metrics.py); mae is not
    metrics.compile(optimizer=opts.SGD(0.1), loss="binary_crossentropy", metrics=["mae"])
    eager = _w3_like()
    eager.compile(optimizer=opts.SGD(0.1), loss="binary_crossentropy", jit_compile=False)
    schedule = _w3_like(opt=opts.SGD(lambda step: 0.1 / (1 + step)))
    for model, extra in [(metrics, {}), (eager, {}), (schedule, {}),
                         (_w3_like(), {"callbacks": [Callback()]}),
                         (_w3_like(), {"validation_split": 0.2}),
                         (_w3_like(), {"initial_epoch": 1}),
                         (_w3_like(), {"steps_per_epoch": 2})]:
        assert batch_key(model, x, y, {**kw, **extra}) is None
    assert batch_key(_w3_like(), x, y, {**kw, "callbacks": []}) == base


def test_fit_many_names_what_is_wrong():
    x, y = _data(20, 2, 1, "binary", np.float32)
    gens = [np.random.default_rng(k) for k in range(2)]
    with pytest.raises(ValueError, match="model 1 differs from model 0 in layers"):
        fit_many([_w3_like(), _w3_like(units=9)], x, y, generators=gens, epochs=1)
    with pytest.raises(ValueError, match="model 1 differs from model 0 in optimizer"):
        fit_many([_w3_like(), _w3_like(opt=opts.Adam())], x, y, generators=gens, epochs=1)
    with pytest.raises(ValueError, match="give generators"):
        fit_many([_w3_like(), _w3_like()], x, y, epochs=1)
    with pytest.raises(ValueError, match="generators must be a list of 2"):
        fit_many([_w3_like(), _w3_like()], x, y, generators=gens[:1], epochs=1)
    with pytest.raises(TypeError, match=r"generators\[1\] must be a numpy Generator"):
        fit_many([_w3_like(), _w3_like()], x, y, generators=[gens[0], 3], epochs=1)
    with pytest.raises(ValueError, match="nets 0 and 1 draw from the same generator"):
        fit_many([_w3_like(), _w3_like()], x, y, generators=[gens[0], gens[0]], epochs=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fit_many([_w3_like()], x, y, epoch=1)
    with pytest.raises(ValueError, match="non-empty list"):
        fit_many([], x, y)
    m = _w3_like()
    with pytest.raises(ValueError, match="given twice"):
        fit_many([m, m], x, y, generators=gens, epochs=1)
    metrics = _w3_like()
    metrics.compile(optimizer=opts.SGD(0.1), loss="binary_crossentropy", metrics=["mae"])
    with pytest.raises(ValueError, match="model 0 cannot be batched: metric 'mae' is computed"):
        fit_many([metrics], x, y)
    with pytest.raises(ValueError, match="epochs must be a non-negative int"):
        fit_many([_w3_like()], x, y, epochs=-1)
    with pytest.raises(ValueError, match="x and y have different lengths"):
        fit_many([_w3_like()], x, y[:5])


def _plan_nets(count=2, n=10, batch=4):
    plan = trainer().BatchedPlan(np.float32, [(2, 3, "relu", 0.0, True), (3, 1, "linear", 0.0,
                                                                            True)],
                                 "mse", batch, count)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = rng.normal(size=(n, 1)).astype(np.float32)
    nets = []
    for _ in range(count):
        params = [rng.normal(size=s).astype(np.float32) for s in [(2, 3), (3,), (3, 1), (1,)]]
        nets.append([params, [()] * 4, "sgd", {"lr": 0.1}, 0, np.empty(6), None, None])
    return plan, x, y, nets


@pytest.mark.parametrize("change, error, match", [
    (lambda nets: nets[1].__setitem__(2, "lbfgs"), ValueError, "net 1: unknown optimizer"),
    (lambda nets: nets[1][0].__setitem__(0, np.zeros((3, 2), np.float32)), ValueError,
     "net 1: parameter 0 has shape"),
    (lambda nets: nets[0][0].__setitem__(1, nets[1][0][1]), ValueError, "overlaps"),
    (lambda nets: nets[0].__setitem__(5, np.empty(3)), ValueError, "net 0: losses has 3"),
    (lambda nets: nets[1].__setitem__(3, {}), ValueError, "net 1: sgd needs 'lr'"),
    (lambda nets: nets.pop(), ValueError, "2 nets' arguments expected, got 1"),
    (lambda nets: nets[0].pop(), ValueError, r"nets\[0\] must be"),
])
def test_batched_plan_checks_every_net_before_it_runs(change, error, match):
    plan, x, y, nets = _plan_nets()
    change(nets)
    before = [[p.copy() for p in net[0]] for net in nets]
    with pytest.raises(error, match=match):
        plan.run(x, y, None, 0, 6, 3, [tuple(net) for net in nets])
    for net, kept in zip(nets, before, strict=False):
        for p, q in zip(net[0], kept, strict=False):
            if p.shape == q.shape:
                assert np.array_equal(p, q)  # nothing trained


def test_batched_plan_buffers_are_one_allocation_and_steps_allocate_nothing():
    plan, x, y, nets = _plan_nets(count=3, n=400, batch=8)
    addresses = sorted(b.__array_interface__["data"][0]
                       for p in plan.plans for b in p.gradients() if b is not None)
    arena = plan.arena.__array_interface__["data"][0]
    assert all(arena <= a < arena + plan.arena.nbytes for a in addresses)
    short = [tuple(net[:5]) + (np.empty(50), None, None) for net in nets]
    plan.run(x, y, None, 0, 50, 50, short)  # warm up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        plan.run(x, y, None, 0, 50, 50, short)
        _, peak = tracemalloc.get_traced_memory()
        small = peak - base
        long = [tuple(net[:5]) + (np.empty(2000), None, None) for net in nets]
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        plan.run(x, y, None, 0, 2000, 50, long)
        _, peak = tracemalloc.get_traced_memory()
        large = peak - base - 3 * 2000 * 8  # the losses given are the caller's
    finally:
        tracemalloc.stop()
    assert small < 8192 and large < 8192, (small, large)


def test_ctrl_c_stops_every_net_after_the_same_step():
    x, y = _data(64, 2, 1, "binary", np.float32)
    models = [_w3_like(units=64) for _ in range(3)]
    weight = models[0].layers[0].kernel.data

    def interrupt():
        start = weight.copy()
        end = time.monotonic() + 60
        while np.array_equal(weight, start) and time.monotonic() < end:
            time.sleep(0.001)
        time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fit_many(models, x, y, generators=[np.random.default_rng(k) for k in range(3)],
                     batch_size=8, epochs=200_000)
    finally:
        thread.join()
    done = {m.optimizer.iterations for m in models}
    assert len(done) == 1 and 0 < done.pop() < 200_000 * 8
    for m in models:
        assert len(m.history.batch_losses) == m.optimizer.iterations
        assert m.history.epoch_ends == sorted(m.history.epoch_ends)
