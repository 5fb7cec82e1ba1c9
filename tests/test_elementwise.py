"""The eager path's plain arithmetic (csrc/elementwise.pyx): add, subtract, multiply, negative
and sum_all give numpy's bits, to the last one (NaN's sign and payload, -0.0 included), in
every layout, at every SIMD level and on any number of threads (but the sign of a sum's NaN
where NaNs of both signs meet: _nan_sign_is_open). The kernel tables of
test_kernels.py run them against the reference too; here the bits and the layouts."""

from __future__ import annotations

import numpy as np
import pytest

from microgradnet import _reference as ref
from microgradnet._kernels import elementwise as K

DTYPES = (np.float32, np.float64)
BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}
SHAPES = [(), (0,), (0, 3), (1,), (7,), (4, 3), (7, 13), (32, 32), (3, 5, 7), (2, 1, 65)]


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(_bits(got), _bits(want))


def _values(rng, shape, dtype):
    """Normal values of every magnitude with the special ones sprinkled in: +-0, +-inf,
    NaN of both signs, subnormals, and values whose sums depend on the order."""
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 8, shape)
    x = np.asarray(x, dtype)
    flat = x.reshape(-1)
    if flat.size:
        tiny = np.finfo(dtype).smallest_subnormal
        specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, tiny, -tiny], dtype)
        pick = rng.random(flat.size) < 0.1
        flat[pick] = rng.choice(specials, int(pick.sum()))
    return x


def _layouts(x):
    """`x` (C order) and the same values in other layouts: F order, sliced with a step,
    reversed (negative strides), misaligned, and a zero-stride broadcast view."""
    yield "C", x
    if x.ndim == 0:
        return
    yield "F", np.asfortranarray(x)
    yield "transposed", np.ascontiguousarray(x.T).T
    big = np.zeros(x.shape[:-1] + (3 * x.shape[-1],), x.dtype)
    big[..., ::3] = x
    yield "step 3", big[..., ::3]
    yield "reversed", np.ascontiguousarray(x[::-1])[::-1]
    raw = np.zeros(x.nbytes + x.itemsize, np.uint8)
    odd = raw[1:1 + x.nbytes].view(x.dtype).reshape(x.shape)
    odd[...] = x
    assert not odd.flags.aligned or x.size == 0
    yield "misaligned", odd
    if x.size:
        yield "broadcast", np.broadcast_to(x.reshape(-1)[:1].reshape((1,) * x.ndim), x.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_is_numpy_bit_for_bit_in_every_layout(name, dtype, simd_level):
    rng = np.random.default_rng(0)
    kernel, ufunc = getattr(K, name), BINARY[name]
    for shape in SHAPES:
        a0, b0 = _values(rng, shape, dtype), _values(rng, shape, dtype)
        for how_a, a in _layouts(a0):
            for how_b, b in _layouts(b0):
                got = kernel(a, b)
                with np.errstate(all="ignore"):
                    want = np.asarray(ufunc(a, b))
                assert got.flags.c_contiguous, (shape, how_a, how_b)
                _same_bits(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_is_numpy_bit_for_bit_in_every_layout(dtype, simd_level):
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        for _, a in _layouts(_values(rng, shape, dtype)):
            got = K.negative(a)
            assert got.flags.c_contiguous
            _same_bits(got, np.asarray(np.negative(a)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_signs_and_operand_order(dtype):
    """With NaN on both sides the result is the first operand's NaN, as numpy's: the
    kernels never swap the operands of add or multiply."""
    nan, neg = np.array(np.nan, dtype), -np.array(np.nan, dtype)
    a = np.array([nan, neg, nan, 1.0, np.inf, np.inf, 0.0, -0.0, -0.0], dtype)
    b = np.array([neg, nan, 2.0, neg, -np.inf, np.inf, np.inf, 0.0, -0.0], dtype)
    for name, ufunc in BINARY.items():
        with np.errstate(all="ignore"):
            _same_bits(getattr(K, name)(a, b), ufunc(a, b))
            _same_bits(getattr(K, name)(b, a), ufunc(b, a))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_in_place_and_overlapping(dtype):
    """out may be a or b (or both are out); an out that partly overlaps an input gives
    numpy's result too (the input is read before out is written)."""
    rng = np.random.default_rng(2)
    for name, ufunc in BINARY.items():
        kernel = getattr(K, name)
        a0 = rng.standard_normal((7, 13)).astype(dtype)
        b0 = rng.standard_normal((7, 13)).astype(dtype)
        want = ufunc(a0, b0)
        a, b = a0.copy(), b0.copy()
        assert kernel(a, b, out=a) is a
        _same_bits(a, want)
        a, b = a0.copy(), b0.copy()
        assert kernel(a, b, out=b) is b
        _same_bits(b, want)
        a = a0.copy()
        assert kernel(a, a, out=a) is a
        _same_bits(a, ufunc(a0, a0))
        # partial overlaps: shifted by one element, and the transpose of a square out
        buf = rng.standard_normal(200).astype(dtype)
        x, out = buf[1:92].reshape(7, 13), buf[:91].reshape(7, 13)
        want = ufunc(x.copy(), b0)
        assert kernel(x, b0, out=out) is out
        _same_bits(out, want)
        sq = rng.standard_normal((9, 9)).astype(dtype)
        want = ufunc(sq.T.copy(), sq)
        assert kernel(sq.T, sq, out=sq) is sq
        _same_bits(sq, want)
    sq = rng.standard_normal((9, 9)).astype(dtype)
    want = -sq.T
    assert K.negative(sq.T, out=sq) is sq
    _same_bits(sq, want)
    a = a0.copy()
    assert K.negative(a, out=a) is a
    _same_bits(a, -a0)


# --------------------------------------------------------------------------- sum_all


def _order_sensitive(rng, n, dtype):
    """Values whose float sum depends on the order of the additions."""
    return (rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)).astype(dtype)


def _nan_sign_is_open(a):
    """Whether NaNs of two kinds can meet in a sum of `a`: NaNs of both signs (or payloads),
    or inf + -inf (x86's default NaN, negative) beside a NaN or a sum of both infinities. Which
    one an addition returns then depends on its operands' order, which C leaves to the
    compiler (x + y may be emitted as y + x) for numpy and for us alike: the sanitizer build
    of the same code returned the other sign."""
    a = np.asarray(a).reshape(-1)
    nans = {bytes(v) for v in a[np.isnan(a)].view(np.uint8).reshape(-1, a.itemsize)}
    both_inf = bool(np.any(a == np.inf) and np.any(a == -np.inf))
    return len(nans) > 1 or both_inf


def _sum_bits(a):
    got = K.sum_all(a)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == a.dtype
    want = np.add.reduce(a, axis=None)
    if np.isnan(want) and _nan_sign_is_open(a):
        assert np.isnan(got), (a.shape, a.strides, got, want)
        return
    assert got.tobytes() == np.asarray(want).tobytes(), (a.shape, a.strides, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_all_is_numpy_bit_for_bit_for_every_size(dtype):
    """Sizes 0 to 4100 (across the pairwise blocks of 8 and 128 and their halves),
    contiguous, F-ordered and strided."""
    rng = np.random.default_rng(3)
    x = _order_sensitive(rng, 2 * 4101, dtype)
    for n in range(4101):
        a = x[:n]
        _sum_bits(a)
        _sum_bits(x[: 2 * n: 2])  # strided: numpy's own reduction
        if n % 3 == 0 and n:
            _sum_bits(np.asfortranarray(a.reshape(3, n // 3)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [10**5, 10**6 + 3])
def test_sum_all_large(n, dtype):
    rng = np.random.default_rng(4)
    x = _order_sensitive(rng, n, dtype)
    _sum_bits(x)
    _sum_bits(x[::-1])
    _sum_bits(x[1:].reshape(-1, 2)[:, 0] if n % 2 else x.reshape(-1, 2).T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_all_layouts_and_special_values(dtype):
    rng = np.random.default_rng(5)
    for shape in SHAPES:
        for _, a in _layouts(_values(rng, shape, dtype)):
            with np.errstate(all="ignore"):
                _sum_bits(a)
    for n in (0, 1, 7, 8, 9, 128, 129, 1000):  # a sum of -0.0 alone stays -0.0
        _sum_bits(np.full(n, -0.0, dtype))
        _sum_bits(np.full((n, 2), -0.0, dtype, order="F"))
    with np.errstate(all="ignore"):
        _sum_bits(np.array([np.inf, -np.inf] * 100, dtype))
        _sum_bits(np.array([1.0, np.nan] * 100, dtype))


@pytest.fixture
def threads():
    """Restore elementwise's thread count and threshold after the test."""
    n = K._get_num_threads()
    yield
    K._set_num_threads(n)
    K._set_threshold(None)


@pytest.mark.skipif(not K._openmp, reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES)
def test_threaded_bits_equal_one_thread(threads, dtype):
    """Above the threshold the elementwise loops split into chunks and sum_all's pairwise
    tree into subtrees on threads: the same bits as one thread, for any count."""
    rng = np.random.default_rng(6)
    K._set_threshold(256)
    for n in (255, 256, 1000, 4099, 70_001):
        a, b = _values(rng, n, dtype), _values(rng, n, dtype)
        s = _order_sensitive(rng, n, dtype)
        for nt in (1, 2, 3, 5, 64):
            K._set_num_threads(nt)
            if nt > 1 and n >= 256 and K._omp_max_threads() > 1:
                assert K._threads_used(n) > 1
            for name, ufunc in BINARY.items():
                with np.errstate(all="ignore"):
                    _same_bits(getattr(K, name)(a, b), ufunc(a, b))
            _same_bits(K.negative(a), -a)
            _sum_bits(s)
            _sum_bits(s.reshape(1, -1).T)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_bad_inputs_are_named(backend):
    f = K if backend == "cython" else ref
    a = np.zeros((4, 3), np.float32)
    for name in BINARY:
        kernel = getattr(f, name)
        with pytest.raises(ValueError, match=r"b has shape \(3, 4\), expected \(4, 3\) like a"):
            kernel(a, a.T.copy())
        with pytest.raises(ValueError, match=r"shape \(3,\), expected \(4, 3\)"):
            kernel(a, np.zeros(3, np.float32))  # no broadcasting
        with pytest.raises(TypeError, match="b has dtype float64, expected float32"):
            kernel(a, a.astype(np.float64))
        with pytest.raises(TypeError, match="a must be float32 or float64, got int64"):
            kernel(a.astype(np.int64), a)
        with pytest.raises(TypeError, match="b must be float32 or float64, got float16"):
            kernel(a, a.astype(np.float16))
        with pytest.raises(TypeError, match="b must be a numpy array, got list"):
            kernel(a, a.tolist())
        with pytest.raises(TypeError, match="a must be a numpy array, got float"):
            kernel(1.0, a)
        with pytest.raises(TypeError, match="b must be float32 or float64"):
            kernel(a, a.astype(">f4"))  # byte-swapped
        with pytest.raises(ValueError, match=r"out has shape \(4, 4\), expected \(4, 3\)"):
            kernel(a, a, out=np.zeros((4, 4), np.float32))
        with pytest.raises(TypeError, match="out has dtype float64, expected float32"):
            kernel(a, a, out=np.zeros((4, 3)))
        with pytest.raises(TypeError, match="out must be a numpy array"):
            kernel(a, a, out=[0.0] * 12)
    with pytest.raises(TypeError, match="a must be float32 or float64, got complex128"):
        f.negative(np.zeros(3, complex))
    with pytest.raises(TypeError, match="a must be a numpy array, got list"):
        f.sum_all([1.0, 2.0])
    with pytest.raises(TypeError, match="a must be float32 or float64, got int32"):
        f.sum_all(np.zeros(3, np.int32))
    with pytest.raises(TypeError):
        f.sum_all(np.zeros(3), out=np.zeros(()))  # no out: a 0-d result is cheap
