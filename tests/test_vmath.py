"""The vectorized math of csrc/vmath.h: accuracy in ulps, special values, both SIMD variants.

Every float32 function and every activation kernel built on it is measured against a
float64 reference over a dense sweep of float32 inputs: every 97th bit pattern where the
functions are not saturated (2^-30 <= |x| < 128), every 9973rd bit pattern over the rest of
the finite range, and edge values (zeros, subnormals, the overflow and underflow thresholds,
+-inf, nan). The error of a result is |got - exact| in ulps of the float32 nearest to the
exact value (subnormals have ulp 2^-149); non-finite results must match exactly.

Derivatives that are a sum with a zero crossing (gelu' = Phi + x phi at x = -0.75, silu' =
s + x s (1 - s) at x = -1.28) cannot be within ulps of a result that is ~0: for them the ulp
is that of the larger term, the error any float32 evaluation of the sum makes.

Measured max errors in ulp (the largest of the AVX-512, AVX2+FMA and SSE2 baseline variants; the
bounds in BOUNDS leave a little room): exp 1.02, expm1 1.68, log1p 1.44, tanh 2.46, sigmoid
2.71, erfc 3.47; forward kernels: elu 1.03, softplus 1.99, gelu 3.10, silu 3.37, selu 2.47,
mish 4.17; derivatives: sigmoid 3.91, tanh 4.01, softplus 2.71, gelu 3.30, silu 3.74 and mish
5.27 (of the larger term; its zero is at x = -1.19).
gelu and erfc are computed in float (before, in double: 0.52 ulp); AVX2+FMA alone: erfc 3.38,
gelu 2.80, gelu' 3.08.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _simd import simd_levels
from scipy import special

from microgradnet._kernels import activations, losses, matmul
from microgradnet.activation_table import ACTIVATIONS as ACTIVATION_TABLE

MODULES = (activations, losses, matmul)




# --------------------------------------------------------------------------- inputs


def _sweep():
    """Dense float32 inputs of both signs, and the edge values."""
    dense = np.arange(0x30800000, 0x43000000, 97, dtype=np.uint32)  # 2^-30 <= |x| < 128
    sparse = np.arange(0, 0x7F800000, 9973, dtype=np.uint32)
    pos = np.concatenate([dense, sparse]).view(np.float32)
    edges = np.array(
        [0.0, 1e-45, 1e-40, 1.17549435e-38, 1e-7, 0.5, 0.625, 1.0, 2.0, 9.0, 10.0, 14.849,
         14.85, 16.0, 20.0, 30.0, 40.0, 87.3, 88.7228, 88.7229, 89.0, 103.97, 103.98, 104.0,
         3.4028235e38, np.inf],
        np.float32,
    )
    x = np.concatenate([pos, edges, -pos, -edges, [np.nan]]).astype(np.float32)
    # 1 - 2^-24, -1 + 2^-24: log1p's neighbourhood of -1
    return np.concatenate([x, np.array([-1.0, -0.99999994, -1.0000001], np.float32)])


X = _sweep()
XD = X.astype(np.float64)


def _ulp_error(got, exact, scale=None):
    """Max error of float32 `got` in ulps of the float32 nearest to `exact` (float64), or of
    `scale` where given; asserts that the non-finite results are the reference's."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = exact.astype(np.float32)
    finite = np.isfinite(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    bad = ~finite & ~same
    assert not bad.any(), f"x = {X[bad][:5]}: got {got[bad][:5]}, want {want[bad][:5]}"
    assert np.isfinite(got[finite]).all(), X[finite][~np.isfinite(got[finite])][:5]
    mag = np.abs(want[finite])
    if scale is not None:
        mag = np.maximum(mag, np.abs(scale[finite]).astype(np.float32))
    with np.errstate(over="ignore"):  # the ulp of FLT_MAX is inf: any finite error is 0 ulp
        ulp = np.spacing(np.maximum(mag, np.float32(2.0**-126))).astype(np.float64)
    err = np.abs(got[finite].astype(np.float64) - exact[finite]) / ulp
    return float(err.max())


# --------------------------------------------------------------------------- references
# float64, from numpy/scipy; the derivatives in forms that are accurate on both tails.


def _sech2(x):
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


def _sigmoid_grad(x):
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2


def _gelu_parts(x):
    cdf = 0.5 * special.erfc(-x / math.sqrt(2))
    xpdf = np.where(np.isinf(x), 0.0, x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))
    return cdf, xpdf


def _silu_parts(x):
    s = special.expit(x)
    return s, np.where(np.isinf(x), 0.0, x * _sigmoid_grad(x))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _mish_parts(x):
    """tanh(softplus(x)) and x sigmoid(x) (1 - tanh(softplus(x))^2), the latter from sech^2."""
    sp = np.logaddexp(x, 0.0)
    t = np.tanh(sp)
    return t, np.where(np.isinf(x), 0.0, x * special.expit(x) * _sech2(sp))


def _exact(name):
    """(float64 reference values, the scale for a zero-crossing sum or None) on XD."""
    x = XD
    with np.errstate(all="ignore"):
        if name in ("exp", "expm1", "log1p", "tanh"):
            return getattr(np, name)(x), None
        if name in ("sigmoid", "sigmoid_forward", "softplus_backward"):
            return special.expit(x), None
        if name == "erfc":
            return special.erfc(x), None
        if name == "tanh_forward":
            return np.tanh(x), None
        if name == "elu_forward":
            return np.where(x > 0, x, np.expm1(x)), None
        if name == "softplus_forward":
            return np.logaddexp(x, 0.0), None
        if name == "gelu_forward":
            cdf, _ = _gelu_parts(x)
            return np.where(x == -np.inf, -0.0, x * cdf), None
        if name == "silu_forward":
            return np.where(x == -np.inf, -0.0, x * special.expit(x)), None
        if name == "selu_forward":
            return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), None
        if name == "mish_forward":
            t, _ = _mish_parts(x)
            return np.where(x == -np.inf, -0.0, x * t), None
        if name == "mish_backward":
            t, xq = _mish_parts(x)
            return t + xq, np.abs(t) + np.abs(xq)
        if name == "sigmoid_backward_from_x":
            return _sigmoid_grad(x), None
        if name == "tanh_backward_from_x":
            return _sech2(x), None
        if name == "gelu_backward":
            cdf, xpdf = _gelu_parts(x)
            return cdf + xpdf, np.abs(cdf) + np.abs(xpdf)
        if name == "silu_backward":
            s, xq = _silu_parts(x)
            return s + xq, np.abs(s) + np.abs(xq)
    raise AssertionError(name)


def _run(name):
    with np.errstate(all="ignore"):
        if name in activations._VMATH:
            return activations._vmath(name, X)
        if name.endswith("forward"):
            return getattr(activations, name)(X)
        return getattr(activations, name)(np.ones_like(X), X)  # dy = 1: the derivative


# The max ulp errors allowed (measured: the module docstring and the comments).
BOUNDS = {
    "exp": 1.5,
    "expm1": 2.0,
    "log1p": 2.0,
    "tanh": 3.0,
    "sigmoid": 3.0,
    "erfc": 4.0,
    "sigmoid_forward": 3.0,
    "tanh_forward": 3.0,
    "elu_forward": 2.0,
    "softplus_forward": 3.0,
    "gelu_forward": 3.5,
    "silu_forward": 3.5,
    "sigmoid_backward_from_x": 4.5,
    "tanh_backward_from_x": 4.5,
    "softplus_backward": 3.0,
    "gelu_backward": 4.0,  # ulps of the larger term (module docstring)
    "silu_backward": 4.0,  # likewise
    "selu_forward": 3.0,
    "mish_forward": 4.5,
    "mish_backward": 6.0,  # likewise
}


# The activation kernels of plain float operations (no function of vmath.h): they give numpy's
# own bits (test_plain_loops_give_numpy_bits_at_every_level, test_kernels.py's EXACT).
PLAIN = {"relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
         "elu_backward", "sigmoid_backward", "tanh_backward", "step_forward", "step_backward",
         "selu_backward"}


def test_every_activation_kernel_has_a_bound():
    kernels = {k for a in ACTIVATION_TABLE for k in (a.forward_kernel, a.backward_kernel)}
    missing = sorted(kernels - set(BOUNDS) - PLAIN)
    assert not missing, f"activation kernels without a ulp bound here: {missing}"


@pytest.mark.slow  # a dense sweep of float32 per function and SIMD level
@pytest.mark.parametrize("name", list(BOUNDS))
def test_max_ulp_error(name, simd_level):
    exact, scale = _exact(name)
    err = _ulp_error(_run(name), exact, scale)
    print(f"{name} level {simd_level}: max error {err:.2f} ulp")
    assert err <= BOUNDS[name], f"{name}: {err:.2f} ulp > {BOUNDS[name]}"


# --------------------------------------------------------------------------- special values

INF, NAN = np.inf, np.nan


@pytest.mark.parametrize(
    ("name", "x", "want"),
    [
        ("exp", [-INF, INF, NAN, -0.0, 88.8, -104.0], [0.0, INF, NAN, 1.0, INF, 0.0]),
        ("expm1", [-INF, INF, NAN, -0.0, 0.0, -30.0], [-1.0, INF, NAN, -0.0, 0.0, -1.0]),
        ("log1p", [-INF, -2.0, -1.0, INF, NAN, -0.0, 1e-40],
         [NAN, NAN, -INF, INF, NAN, -0.0, 1e-40]),
        ("tanh", [-INF, INF, NAN, -0.0, 1e-40, -1e-40], [-1.0, 1.0, NAN, -0.0, 1e-40, -1e-40]),
        ("sigmoid", [-INF, INF, NAN, 0.0], [0.0, 1.0, NAN, 0.5]),
        ("erfc", [-INF, INF, NAN, 0.0, 11.0], [2.0, 0.0, NAN, 1.0, 0.0]),
    ],
)
def test_special_values(name, x, want, simd_level):
    got = activations._vmath(name, np.array(x, np.float32))
    want = np.array(want, np.float32)
    np.testing.assert_array_equal(got, want)
    num = ~np.isnan(want)  # the sign of a nan is not specified
    assert (np.signbit(got[num]) == np.signbit(want[num])).all(), (got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_limits_at_infinity(dtype, simd_level):
    """gelu and silu at +-inf: the limits, not inf * 0 = nan; nan stays nan everywhere."""
    x = np.array([-INF, INF, NAN], dtype)
    dy = np.array([3.0, 3.0, 3.0], dtype)
    for name in ("gelu", "silu"):
        fwd = getattr(activations, f"{name}_forward")(x)
        np.testing.assert_array_equal(fwd, np.array([-0.0, INF, NAN], dtype))
        assert np.signbit(fwd[0])
        bwd = getattr(activations, f"{name}_backward")(dy, x)
        np.testing.assert_array_equal(bwd, np.array([0.0, 3.0, NAN], dtype))
    for name, lo, hi in [("sigmoid", 0, 1), ("tanh", -1, 1), ("softplus", 0, INF)]:
        got = getattr(activations, f"{name}_forward")(x)
        np.testing.assert_array_equal(got, np.array([lo, hi, NAN], dtype))
    np.testing.assert_array_equal(activations.elu_forward(x, 0.5), np.array([-0.5, INF, NAN]))
    for name in ("sigmoid_backward_from_x", "tanh_backward_from_x"):
        np.testing.assert_array_equal(getattr(activations, name)(dy, x), [0.0, 0.0, NAN])
    np.testing.assert_array_equal(activations.softplus_backward(dy, x), [0.0, 3.0, NAN])


# --------------------------------------------------------------------------- float64


def _wide64(n=200_000):
    rng = np.random.default_rng(3)
    mag = np.exp(rng.uniform(np.log(1e-300), np.log(800.0), n))
    return np.concatenate([mag, -mag, rng.standard_normal(n) * 4])


@pytest.mark.parametrize("name", ["exp", "expm1", "log1p", "tanh", "sigmoid"])
def test_float64_ulp_error(name, simd_level):
    """float64 against numpy/scipy (glibc, itself within ~1 ulp): at most 3 ulp apart."""
    x = _wide64()
    with np.errstate(all="ignore"):
        got = activations._vmath(name, x)
        if name == "sigmoid":  # not scipy's expit: 1 / (1 + exp(-x)) is 0 below x = -709
            e = np.exp(-np.abs(x))
            want = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        else:
            want = getattr(np, name)(x)
    both = np.isfinite(want) & (want != 0)
    np.testing.assert_array_equal(got[~both], want[~both])
    err = np.abs(got[both] - want[both]) / np.spacing(np.abs(want[both]))
    print(f"float64 {name} level {simd_level}: max {err.max():.2f} ulp from numpy")
    assert err.max() <= 3.0


# --------------------------------------------------------------------------- dispatch


def test_simd_level_can_be_forced_and_restored():
    best = activations._simd_level(-1)
    assert best in (0, 1, 2)
    for m in MODULES:
        assert m._simd_level(0) == 0
        assert m._simd_level(1) == min(best, 1)  # 1 only where the CPU has AVX2 and FMA
        assert m._simd_level(2) == best  # capped at what the CPU has
        assert m._simd_level(7) == best
        assert m._simd_level(-1) == best


def test_variants_agree():
    """The AVX2+FMA and AVX-512 loops differ from the baseline's only by FMA rounding: a few
    ulp."""
    if simd_levels() == [0]:
        pytest.skip("no AVX2+FMA on this CPU")
    x = X[np.isfinite(X)][::7]
    dy = np.linspace(-2, 2, x.size).astype(np.float32)
    t = np.linspace(0, 1, x.size).astype(np.float32)
    results = []
    for lvl in simd_levels():
        for m in MODULES:
            m._simd_level(lvl)
        with np.errstate(all="ignore"):
            results.append([
                activations.silu_backward(dy, x), activations.softplus_forward(x),
                activations.elu_forward(x), losses.sigmoid_binary_cross_entropy_forward(x, t),
                losses.sigmoid_binary_cross_entropy_backward(dy, x, t),
            ])
    for m in MODULES:
        m._simd_level(-1)
    # relative, or absolute in proportion to the operands where a formula cancels (silu'
    # near its zero, bce's max(z, 0) - z t + ...)
    with np.errstate(over="ignore"):
        scale = (1 + np.abs(x).astype(np.float64)) * (1 + np.abs(dy))
    for variant in results[1:]:
        for a, b in zip(results[0], variant, strict=True):
            ok = np.isclose(a, b, rtol=1e-6, atol=0) | (np.abs(a - b) <= 1e-7 * scale)
            assert ok.all(), (x[~ok][:5], a[~ok][:5], b[~ok][:5])


def test_plain_loops_give_numpy_bits_at_every_level(simd_level):
    """The activations without transcendental functions and the bias rows, compiled per SIMD
    level too, do numpy's own float operations: the same bits (signed zeros, nan) at every
    level, wide vectors or not."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=(37, 23)).astype(dtype) * 3
        x[0, :6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45 if dtype == np.float32 else 5e-324]
        dy = rng.normal(size=x.shape).astype(dtype)
        b = rng.normal(size=23).astype(dtype)
        with np.errstate(all="ignore"):
            y_relu = np.where(x <= 0, dtype(0), x)
            y_sig = (1 / (1 + np.exp(-x))).astype(dtype)
            y_tanh = np.tanh(x)
            y_elu = np.where(x > 0, x, np.expm1(x)).astype(dtype)
            cases = [
                (activations.relu_forward(x), y_relu),
                (activations.relu_backward(dy, y_relu), np.where(y_relu <= 0, dtype(0), dy)),
                (activations.sigmoid_backward(dy, y_sig), dy * y_sig * (1 - y_sig)),
                (activations.tanh_backward(dy, y_tanh), dy * (1 - y_tanh * y_tanh)),
                (activations.elu_backward(dy, y_elu, 1.0),
                 dy * np.where(y_elu > 0, dtype(1), y_elu + dtype(1))),
                (matmul.bias_add(x, b), x + b),
                (matmul.bias_grad(x), np.add.reduce(x, axis=0)),  # row by row, as numpy
            ]
        for k, (got, want) in enumerate(cases):
            assert got.dtype == want.dtype == dtype, k
            same = (got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}"))
            assert np.all(same | (np.isnan(got) & np.isnan(want))), (simd_level, dtype, k)
