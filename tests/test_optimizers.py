"""microgradnet.optimizers against Keras 3's update rules, written out here in numpy.

The oracle below (`KerasOracle`) follows keras/src/optimizers/{base_optimizer, sgd, adam,
adamw, rmsprop, adagrad}.py line by line, in float64: clip the gradients, decay the
weights by p * weight_decay * lr, run the rule, count the iteration.
"""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import optimizers as O

SHAPES = [(2, 3), (3,), (3, 1)]


# --------------------------------------------------------------------------- the oracle


class KerasOracle:
    """Keras 3's optimizers on plain float64 arrays."""

    def __init__(self, kind: str, **config):
        defaults = {
            "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
            "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                     "amsgrad": False},
            "adamw": {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9,
                      "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
            "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                        "centered": False},
            "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                        "epsilon": 1e-7},
        }[kind]
        self.kind = kind
        self.c = {"weight_decay": None, "clipnorm": None, "clipvalue": None,
                  "global_clipnorm": None, **defaults, **config}
        self.iterations = 0
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def clip(self, grads):
        c = self.c
        if c["clipnorm"]:
            out = []
            for g in grads:
                l2 = np.sqrt(np.sum(g * g))
                out.append(g * c["clipnorm"] / np.maximum(l2, c["clipnorm"]))
            return out
        if c["global_clipnorm"]:
            norm = np.sqrt(sum(np.sum(g * g) for g in grads))
            clip = c["global_clipnorm"]
            scale = clip * min(1.0 / norm, 1.0 / clip) + (norm - norm)
            return [g * scale for g in grads]
        if c["clipvalue"]:
            return [np.clip(g, -c["clipvalue"], c["clipvalue"]) for g in grads]
        return grads

    def apply(self, params, grads):
        """Update `params` (arrays) in place with `grads` (arrays or None)."""
        live = [i for i, g in enumerate(grads) if g is not None]
        clipped = self.clip([grads[i] for i in live])
        lr = self.c["learning_rate"]
        if self.c["weight_decay"] is not None:
            for i in live:
                params[i][...] = params[i] - params[i] * self.c["weight_decay"] * lr
        for i, g in zip(live, clipped, strict=True):
            self.update(i, params[i], g, lr)
        self.iterations += 1

    def slot(self, i, name, like, value=0.0):
        return self.state.setdefault(i, {}).setdefault(name, np.full_like(like, value))

    def update(self, i, p, g, lr):
        c, k = self.c, self.kind
        if k == "sgd":
            if c["momentum"] != 0:
                m = self.slot(i, "momentum", p)
                m[...] = m * c["momentum"] - g * lr
                if c["nesterov"]:
                    p += m * c["momentum"] - g * lr
                else:
                    p += m
            else:
                p -= g * lr
        elif k in ("adam", "adamw"):
            t = self.iterations + 1
            b1p, b2p = c["beta_1"] ** t, c["beta_2"] ** t
            m, v = self.slot(i, "m", p), self.slot(i, "v", p)
            alpha = lr * np.sqrt(1 - b2p) / (1 - b1p)
            m += (g - m) * (1 - c["beta_1"])
            v += (np.square(g) - v) * (1 - c["beta_2"])
            if c["amsgrad"]:
                vhat = self.slot(i, "vhat", p)
                vhat[...] = np.maximum(vhat, v)
                v = vhat
            p -= (m * alpha) / (np.sqrt(v) + c["epsilon"])
        elif k == "rmsprop":
            rho = c["rho"]
            vel = self.slot(i, "velocity", p)
            vel[...] = rho * vel + (1 - rho) * np.square(g)
            if c["centered"]:
                avg = self.slot(i, "average", p)
                avg[...] = rho * avg + (1 - rho) * g
                denominator = vel - np.square(avg) + c["epsilon"]
            else:
                denominator = vel + c["epsilon"]
            increment = lr * g / np.sqrt(denominator)
            if c["momentum"] > 0:
                mom = self.slot(i, "momentum", p)
                mom[...] = c["momentum"] * mom + increment
                p -= mom
            else:
                p -= increment
        elif k == "adagrad":
            acc = self.slot(i, "acc", p, c["initial_accumulator_value"])
            acc += np.square(g)
            p -= lr * g / np.sqrt(acc + c["epsilon"])


CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.5, "nesterov": True}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9, "global_clipnorm": 0.5}),
    ("sgd", {"clipvalue": 0.3, "nesterov": True, "momentum": 0.8}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"clipnorm": 0.5}),
    ("adam", {"beta_1": 0.0, "beta_2": 0.5, "epsilon": 0.0}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "amsgrad": True, "global_clipnorm": 1.0}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.01}),
    ("rmsprop", {"clipvalue": 0.3}),
    ("adagrad", {}),
    ("adagrad", {"initial_accumulator_value": 0.5, "weight_decay": 0.01, "clipnorm": 1.0}),
]


def _case_id(case):
    kind, cfg = case
    return kind + "".join(f"-{k}={v}" for k, v in cfg.items())


def _params(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [mg.Tensor(rng.standard_normal(s), requires_grad=True, dtype=dtype) for s in shapes]


def _set_grads(params, rng, missing=()):
    grads = []
    for i, p in enumerate(params):
        if i in missing:
            p.grad = None
            grads.append(None)
        else:
            g = rng.standard_normal(p.shape)
            p.grad = mg.Tensor(g, dtype=p.dtype)
            grads.append(g)
    return grads


def _run_both(kind, cfg, dtype, steps, missing_at=None):
    """Run ours and the oracle on the same gradients; return both sets of parameters."""
    lr = 0.05
    params = _params(dtype)
    ours = O.get(kind).__class__(params, learning_rate=lr, **cfg)
    oracle = KerasOracle(kind, learning_rate=lr, **cfg)
    want = [p.data.astype(np.float64) for p in params]
    rng = np.random.default_rng(1)
    for step in range(steps):
        missing = missing_at(step) if missing_at else ()
        grads = _set_grads(params, rng, missing)
        ours.step()
        oracle.apply(want, [None if g is None else g.astype(dtype).astype(np.float64)
                            for g in grads])
    return ours, params, want, oracle


# --------------------------------------------------------------------------- against Keras


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_keras_formulas(case, dtype, backend):
    kind, cfg = case
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-5, 1e-6)
    with mg.use_backend(backend):
        for steps in (1, 6):
            ours, params, want, oracle = _run_both(kind, cfg, dtype, steps)
            assert ours.iterations == oracle.iterations == steps
            for p, w in zip(params, want, strict=True):
                assert p.dtype == dtype
                np.testing.assert_allclose(p.data, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_params_without_grad_are_skipped(case):
    kind, cfg = case
    # Parameter 1 has no gradient at steps 0 and 2; the others always have one.
    ours, params, want, _ = _run_both(kind, cfg, np.float64, 4,
                                      missing_at=lambda s: (1,) if s in (0, 2) else ())
    for p, w in zip(params, want, strict=True):
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_a_param_that_never_gets_a_grad_is_untouched_and_has_no_state():
    params = _params(np.float64)
    before = params[2].data.copy()
    opt = O.Adam(params, learning_rate=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        _set_grads(params, rng, missing=(2,))
        opt.step()
    np.testing.assert_array_equal(params[2].data, before)
    assert opt._states[2] is None
    assert opt.iterations == 3


def test_no_gradient_at_all_raises():
    params = _params(np.float32)
    opt = O.SGD(params)
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.step()
    assert opt.iterations == 0


def test_keras_defaults():
    want = {
        O.SGD: {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
        O.Adam: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                 "amsgrad": False},
        O.RMSprop: {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                    "centered": False},
        O.Adagrad: {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                    "epsilon": 1e-7},
        O.AdamW: {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9,
                  "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    }
    common = {"weight_decay": None, "clipnorm": None, "clipvalue": None,
              "global_clipnorm": None}
    for cls, defaults in want.items():
        sig = inspect.signature(cls)
        names = list(sig.parameters)
        # Keras' positional order, then the common arguments.
        assert names[: len(defaults)] == list(defaults), cls
        for name, value in {**common, **defaults}.items():
            assert sig.parameters[name].default == value, (cls, name)
        config = cls().get_config()
        for name, value in {**common, **defaults}.items():
            assert config[name] == value, (cls, name)


def test_weight_decay_order_and_learning_rate():
    # p = 2, g = 1, lr = 0.5, wd = 0.1: decay first (2 - 2*0.1*0.5 = 1.9), then 1.9 - 0.5.
    p = mg.tensor([2.0], requires_grad=True, dtype=np.float64)
    opt = O.SGD([p], learning_rate=0.5, weight_decay=0.1)
    p.grad = mg.tensor([1.0], dtype=np.float64)
    opt.step()
    assert p.data[0] == pytest.approx(1.4, rel=1e-15)


def test_clipnorm_is_per_parameter_and_global_clipnorm_is_joint():
    a = mg.tensor([0.0, 0.0], requires_grad=True, dtype=np.float64)
    b = mg.tensor([0.0], requires_grad=True, dtype=np.float64)
    for opt, want_a, want_b in [
        (O.SGD([a, b], learning_rate=1.0, clipnorm=1.0), [-0.6, -0.8], [-0.5]),
        # Global norm sqrt(3^2 + 4^2 + 0.5^2) = 5.0249; scale 1 / 5.0249
        (O.SGD([a, b], learning_rate=1.0, global_clipnorm=1.0),
         np.array([-3.0, -4.0]) / math.sqrt(25.25), [-0.5 / math.sqrt(25.25)]),
        (O.SGD([a, b], learning_rate=1.0, clipvalue=1.0), [-1.0, -1.0], [-0.5]),
    ]:
        a.data[:] = 0
        b.data[:] = 0
        a.grad = mg.tensor([3.0, 4.0], dtype=np.float64)
        b.grad = mg.tensor([0.5], dtype=np.float64)
        opt.step()
        np.testing.assert_allclose(a.data, want_a, rtol=1e-14)
        np.testing.assert_allclose(b.data, want_b, rtol=1e-14)
        # The gradients themselves are not changed by clipping.
        np.testing.assert_array_equal(a.grad.data, [3.0, 4.0])


def test_nan_gradient_is_not_hidden_by_clipping():
    for kw in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"clipvalue": 1.0}):
        p = mg.tensor([1.0, 1.0], requires_grad=True)
        p.grad = mg.tensor([np.nan, 1.0])
        O.SGD([p], **kw).step()
        assert np.isnan(p.data[0]), kw


# --------------------------------------------------------------------------- API


def test_both_ways_to_construct():
    params = _params(np.float32)
    assert O.SGD(0.1).learning_rate == pytest.approx(0.1)
    sgd = O.SGD(0.1, 0.9, True)
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.1, 0.9, True)
    assert not sgd.built
    for opt in (O.SGD(params, 0.1, 0.9), O.SGD(params, learning_rate=0.1, momentum=0.9),
                O.SGD(learning_rate=0.1, momentum=0.9, params=params),
                O.SGD(iter(params), 0.1, 0.9)):
        assert opt.built and opt.parameters() == params
        assert (opt.learning_rate, opt.momentum) == (0.1, 0.9)
    adam = O.Adam(params[0])  # a single Tensor is a list of one
    assert adam.parameters() == [params[0]] and adam.learning_rate == 0.001
    with pytest.raises(TypeError, match="given twice"):
        O.SGD(params, params=params)


def test_keras_style_build():
    params = _params(np.float32)
    opt = O.Adam(learning_rate=0.01)
    with pytest.raises(RuntimeError, match=r"build\(params\)"):
        opt.step()
    opt.build(params)
    _set_grads(params, np.random.default_rng(0))
    opt.step()
    state = opt._states
    opt.build(list(params))  # the same parameters again: nothing changes
    assert opt._states is state and opt.iterations == 1
    with pytest.raises(ValueError, match="already built on 3 other parameters"):
        opt.build(params[:2])


def test_state_is_lazy_and_follows_the_param_dtype():
    p32 = mg.Tensor(np.zeros((2, 2), np.float32), requires_grad=True)
    p64 = mg.Tensor(np.zeros(3), requires_grad=True, dtype=np.float64)
    opt = O.RMSprop([p32, p64], momentum=0.5, centered=True)
    assert opt._states == [None, None]
    p32.grad = mg.Tensor(np.ones((2, 2), np.float32))
    p64.grad = mg.Tensor(np.ones(3), dtype=np.float64)
    opt.step()
    for state, p in zip(opt._states, (p32, p64), strict=True):
        assert len([s for s in state if s is not None]) == 3
        assert all(s.dtype == p.dtype and s.shape == p.shape for s in state if s is not None)
    assert O.Adagrad([p64], initial_accumulator_value=0.25)._new_state(p64.data)[0][0] == 0.25


def test_iterations_and_learning_rate_changes():
    p = mg.tensor([0.0], requires_grad=True, dtype=np.float64)
    opt = O.SGD([p], learning_rate=0.1)
    for lr in (0.1, 0.5, 0.0, 2.0):
        opt.learning_rate = lr
        before = p.data[0]
        p.grad = mg.tensor([1.0], dtype=np.float64)
        opt.step()
        assert p.data[0] == pytest.approx(before - lr)
    assert opt.iterations == 4
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        opt.learning_rate = -0.1
    with pytest.raises(TypeError, match="learning_rate must be a number or a callable"):
        opt.learning_rate = "0.1"
    assert opt.learning_rate == 2.0


def test_learning_rate_schedules():
    p = mg.tensor([0.0], requires_grad=True, dtype=np.float64)
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1 * (step + 1)

    opt = O.SGD([p], learning_rate=schedule)
    for _ in range(3):
        p.grad = mg.tensor([1.0], dtype=np.float64)
        opt.step()
    assert seen == [0, 1, 2]  # Keras: the schedule sees the iteration count before the step
    assert p.data[0] == pytest.approx(-(0.1 + 0.2 + 0.3))
    assert opt.learning_rate == pytest.approx(0.4)
    opt.learning_rate = lambda: 0.5  # Keras' callable without arguments
    assert opt.learning_rate == 0.5
    with pytest.raises(TypeError, match="callable schedule"):
        opt.get_config()
    opt.learning_rate = lambda step: -1.0
    p.grad = mg.tensor([1.0], dtype=np.float64)
    with pytest.raises(ValueError, match="schedule gave -1.0 at iteration 3"):
        opt.step()
    opt.learning_rate = 0.25  # back to a number: serializable again
    assert opt.get_config()["learning_rate"] == 0.25


def test_zero_grad():
    params = _params(np.float32)
    opt = O.Adam(params)
    _set_grads(params, np.random.default_rng(0))
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    O.Adam().zero_grad()  # before build: nothing to do


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_config_round_trip(case):
    kind, cfg = case
    opt = O.get(kind).__class__(learning_rate=0.05, **cfg)
    config = json.loads(json.dumps(opt.get_config()))
    again = type(opt).from_config(config)
    assert again.get_config() == opt.get_config()
    blob = json.loads(json.dumps(O.serialize(opt)))
    assert blob["class_name"] == type(opt).__name__
    assert O.get(blob).get_config() == opt.get_config()
    assert O.deserialize(blob).get_config() == opt.get_config()


def test_from_keras_config():
    keras_config = {
        "name": "adam", "learning_rate": 0.01, "weight_decay": None, "clipnorm": None,
        "global_clipnorm": None, "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
        "ema_overwrite_frequency": None, "loss_scale_factor": None,
        "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-07, "amsgrad": False,
    }
    assert O.Adam.from_config(keras_config).learning_rate == 0.01
    with pytest.raises(ValueError, match="use_ema=True is not supported"):
        O.Adam.from_config({**keras_config, "use_ema": True})


def test_get():
    for name, cls in [("sgd", O.SGD), ("SGD", O.SGD), ("Adam", O.Adam), ("adam", O.Adam),
                      ("RMSprop", O.RMSprop), ("rmsprop", O.RMSprop), ("adagrad", O.Adagrad),
                      ("AdamW", O.AdamW), ("adamw", O.AdamW)]:
        assert type(O.get(name)) is cls
    opt = O.SGD(0.3)
    assert O.get(opt) is opt
    for bad in ("adamax", "", 3, None):
        with pytest.raises(ValueError, match="known names: adagrad, adam, adamw, rmsprop, sgd"):
            O.get(bad)
    with pytest.raises(ValueError, match="unknown optimizer class 'Nadam'"):
        O.get({"class_name": "Nadam", "config": {}})
    assert mg.optimizers.SGD is O.SGD


BAD_ARGUMENTS = [
    (O.SGD, {"learning_rate": -0.1}, ValueError, "learning_rate"),
    (O.SGD, {"learning_rate": math.nan}, ValueError, "learning_rate"),
    (O.SGD, {"learning_rate": math.inf}, ValueError, "learning_rate"),
    (O.SGD, {"momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\]"),
    (O.SGD, {"momentum": 1.5}, ValueError, "momentum"),
    (O.SGD, {"momentum": "0.9"}, TypeError, "momentum must be a number"),
    (O.SGD, {"nesterov": "yes"}, TypeError, "nesterov must be True or False"),
    (O.Adam, {"beta_1": 1.0}, ValueError, r"beta_1 must be in \[0, 1\)"),
    (O.Adam, {"beta_2": -0.5}, ValueError, "beta_2"),
    (O.Adam, {"epsilon": -1e-7}, ValueError, "epsilon"),
    (O.Adam, {"amsgrad": 1}, TypeError, "amsgrad"),
    (O.AdamW, {"weight_decay": None}, ValueError, "weight_decay"),
    (O.AdamW, {"weight_decay": -0.1}, ValueError, "weight_decay must be None or"),
    (O.RMSprop, {"rho": 1.0}, ValueError, "rho"),
    (O.RMSprop, {"momentum": -1.0}, ValueError, "momentum"),
    (O.RMSprop, {"centered": None}, TypeError, "centered"),
    (O.Adagrad, {"initial_accumulator_value": -0.1}, ValueError, "initial_accumulator_value"),
    (O.Adagrad, {"clipnorm": 0.0}, ValueError, "clipnorm must be None or a finite number > 0"),
    (O.Adagrad, {"clipvalue": -1.0}, ValueError, "clipvalue"),
    (O.Adam, {"global_clipnorm": math.inf}, ValueError, "global_clipnorm"),
    (O.Adam, {"clipnorm": 1.0, "clipvalue": 1.0}, ValueError, "Only one of clipnorm"),
    (O.SGD, {"clipnorm": 1.0, "global_clipnorm": 1.0}, ValueError, "Only one of"),
    (O.SGD, {"name": 3}, TypeError, "name must be a string"),
    (O.SGD, {"learning_rate": 0.1, "lr": 0.1}, TypeError, "lr"),  # lr alone: Keras 2
]


@pytest.mark.parametrize(("cls", "kwargs", "error", "message"), BAD_ARGUMENTS,
                         ids=[f"{c.__name__}-{k}" for c, k, _, _ in BAD_ARGUMENTS])
def test_bad_hyper_parameters_raise(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


def test_bad_params_raise():
    good = mg.Tensor(np.zeros(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="parameter 1 must be a Tensor, got ndarray"):
        O.SGD([good, np.zeros(3)])
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(3,\)\) does not require grad"):
        O.SGD([mg.Tensor(np.zeros(3))])
    with pytest.raises(TypeError, match="parameter 0 has dtype int64"):
        O.Adam([mg.Tensor(np.zeros(3, np.int64))])
    with pytest.raises(ValueError, match="parameter 1 appears more than once"):
        O.Adam([good, good])
    frozen = np.zeros(3, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        O.Adam([mg.Tensor(frozen, requires_grad=True)])
    with pytest.raises(TypeError, match="params must be an iterable of Tensors"):
        O.SGD().build(3)


def test_bad_grad_is_named_by_parameter():
    params = _params(np.float32)
    opt = O.Adam(params)
    _set_grads(params, np.random.default_rng(0))
    params[2].grad = mg.Tensor(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"parameter 2 \(shape \(3, 1\)\): grad has shape"):
        opt.step()


def test_non_contiguous_param_is_made_contiguous_once_and_updated_in_place():
    w = mg.tensor(np.arange(6.0).reshape(2, 3).T, requires_grad=True)  # F order
    values = w.data.copy()
    opt = O.SGD([w], learning_rate=1.0)
    assert w.data.flags.c_contiguous
    np.testing.assert_array_equal(w.data, values)
    data = w.data
    w.grad = mg.Tensor(np.ones((3, 2), np.float32))
    opt.step()
    assert w.data is data
    np.testing.assert_array_equal(w.data, values - 1)


# --------------------------------------------------------------------------- by hand


def _least_squares(opt_factory, steps, dtype=np.float32):
    """Minimize mean((W x - y)^2) by hand; return the final loss."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((3, 32)), dtype=dtype)
    w_true = rng.standard_normal((2, 3))
    y = mg.Tensor(w_true @ x.data, dtype=dtype)
    w = mg.Tensor(np.zeros((2, 3)), requires_grad=True, dtype=dtype)
    opt = opt_factory([w])
    loss = None
    for _ in range(steps):
        opt.zero_grad()
        loss = ((w @ x - y) ** 2).mean()
        loss.backward()
        opt.step()
    return float(((w @ x - y) ** 2).mean().item()), w.data.copy(), loss


@pytest.mark.parametrize(("factory", "steps"), [
    (lambda ps: O.SGD(ps, learning_rate=0.1), 300),
    (lambda ps: O.SGD(ps, 0.05, 0.9, True), 200),
    (lambda ps: O.Adam(ps, learning_rate=0.05), 600),
    (lambda ps: O.AdamW(ps, learning_rate=0.05, weight_decay=1e-4), 600),
    (lambda ps: O.RMSprop(ps, learning_rate=0.01, centered=True), 600),
    (lambda ps: O.Adagrad(ps, learning_rate=0.5), 600),
], ids=["sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad"])
def test_by_hand_least_squares_converges(factory, steps):
    final, _, _ = _least_squares(factory, steps)
    assert final < 1e-3


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_backends_agree(case):
    kind, cfg = case
    results = {}
    for backend in ("cython", "numpy"):
        with mg.use_backend(backend):
            _, params, _, _ = _run_both(kind, cfg, np.float32, 5)
            results[backend] = [p.data.copy() for p in params]
    for a, b in zip(results["cython"], results["numpy"], strict=True):
        if "clipnorm" in cfg or "global_clipnorm" in cfg:
            # The norms are summed in another order: a few ulp apart.
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(a, b)


def test_backends_agree_by_hand():
    out = {}
    for backend in ("cython", "numpy"):
        with mg.use_backend(backend):
            out[backend] = _least_squares(lambda ps: O.Adam(ps, learning_rate=0.05), 50)[1]
    np.testing.assert_allclose(out["cython"], out["numpy"], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- torch


TORCH_CASES = [
    # (ours, torch.optim name and keywords): equal where the formulas coincide, which for
    # Adam, RMSprop and Adagrad means epsilon = 0 (Keras and PyTorch place it differently).
    (("sgd", {"momentum": 0.9}), ("SGD", {"momentum": 0.9})),
    (("sgd", {"momentum": 0.7, "nesterov": True}), ("SGD", {"momentum": 0.7, "nesterov": True})),
    (("adam", {"epsilon": 0.0}), ("Adam", {"eps": 0.0})),
    (("adam", {"epsilon": 0.0, "amsgrad": True}), ("Adam", {"eps": 0.0, "amsgrad": True})),
    (("adamw", {"epsilon": 0.0, "weight_decay": 0.1}),
     ("AdamW", {"eps": 0.0, "weight_decay": 0.1})),
    (("rmsprop", {"epsilon": 0.0, "momentum": 0.5, "centered": True}),
     ("RMSprop", {"eps": 0.0, "alpha": 0.9, "momentum": 0.5, "centered": True})),
    (("adagrad", {"epsilon": 0.0}), ("Adagrad", {"eps": 0.0, "initial_accumulator_value": 0.1})),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: _case_id(c[0]))
def test_same_trajectory_as_torch(case):
    torch = pytest.importorskip("torch")
    (kind, cfg), (torch_name, torch_cfg) = case
    lr = 0.05
    params = _params(np.float64)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours = O.get(kind).__class__(params, learning_rate=lr, **cfg)
    torch_opt = getattr(torch.optim, torch_name)(theirs, lr=lr, **torch_cfg)
    rng = np.random.default_rng(5)
    for _ in range(8):
        grads = _set_grads(params, rng)
        for t, g in zip(theirs, grads, strict=True):
            t.grad = torch.tensor(g)
        ours.step()
        torch_opt.step()
    for p, t in zip(params, theirs, strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
