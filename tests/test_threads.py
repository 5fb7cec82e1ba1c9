"""The large elementwise kernels on several threads (OpenMP, csrc/threads.pxi: activations,
the elementwise losses, bias_add): the same bits as on one thread at every chunk boundary,
the threshold on both sides, set_num_threads' checks. No timings here: the speed is measured
in README.md's "Threads"."""

from __future__ import annotations

import numpy as np
import pytest

import microgradnet as mg
from microgradnet._kernels import activations, losses, matmul
from microgradnet.activation_table import ACTIVATIONS as ACTIVATION_TABLE

THRESHOLD = activations._set_threshold(None)  # the built-in one

# (forward, backward, what the backward saves, alpha or None): every kernel of _map1/_map2,
# each row of the activation table (an alpha other than its default) and the derivatives
# recomputed from x
_OTHER_ALPHA = {"leaky_relu": 0.1, "elu": 1.5}
KERNELS = {
    a.name: (a.forward_kernel, a.backward_kernel, a.saves,
             None if a.alpha is None else _OTHER_ALPHA.get(a.name, a.alpha * 1.5))
    for a in ACTIVATION_TABLE
}
KERNELS["sigmoid_from_x"] = ("sigmoid_forward", "sigmoid_backward_from_x", "x", None)
KERNELS["tanh_from_x"] = ("tanh_forward", "tanh_backward_from_x", "x", None)


@pytest.fixture
def threads():
    """Restore the thread count and the threshold after the test."""
    n = activations._get_num_threads()
    yield
    activations._set_num_threads(n)
    activations._set_threshold(None)


def _openmp_limit(n):
    """OpenMP's thread limit set to n inside the block (threadpoolctl), if it can be set."""
    import contextlib

    try:
        import threadpoolctl
    except ImportError:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(n, user_api="openmp")


def _inputs(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[:: 97] = 0.0
    x[1:: 101] = np.nan
    x[2:: 103] = np.inf
    x[3:: 107] = -np.inf
    x[4:: 109] = -0.0
    dy = rng.standard_normal(n).astype(dtype)
    return x, dy


def _run(name, x, dy):
    fwd, bwd, saved, alpha = KERNELS[name]
    kw = {} if alpha is None else {"alpha": alpha}
    y = getattr(activations, fwd)(x, **kw)
    dx = getattr(activations, bwd)(dy, y if saved == "y" else x, **kw)
    return y, dx


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    ia = a.view(np.uint32 if a.dtype == np.float32 else np.uint64)
    ib = b.view(ia.dtype)
    bad = np.flatnonzero(ia != ib)
    assert bad.size == 0, f"{bad.size} elements differ, first at {bad[:5]}"


needs_openmp = pytest.mark.skipif(not activations._openmp, reason="built without OpenMP")


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_threaded_bits_equal_one_thread_above_threshold(threads, name, dtype):
    # Sizes at and just above the built-in threshold, odd ones included: each chunk's tail
    # (the vector loop's remainder) falls elsewhere than the single loop's.
    for n in (THRESHOLD, THRESHOLD + 1, THRESHOLD + 63, THRESHOLD + 65, 3 * THRESHOLD + 17):
        x, dy = _inputs(n, dtype, seed=n)
        activations._set_num_threads(1)
        assert activations._threads_used(n) == 1
        want = _run(name, x, dy)
        activations._set_num_threads(2)
        assert activations._threads_used(n) == 2
        got = _run(name, x, dy)
        for g, w in zip(got, want, strict=True):
            _same_bits(g, w)


@needs_openmp
@pytest.mark.parametrize("level", list(range(activations._simd_level(-1) + 1)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_chunks_every_simd_level_and_offset(threads, level, dtype):
    # A small threshold splits small arrays into many chunks (3 and 7 threads too), on
    # every SIMD variant, from an aligned start and from one element in (unaligned).
    activations._set_threshold(128)
    try:
        activations._simd_level(level)
        for n in (128, 129, 191, 255, 1000, 4097):
            base, dyb = _inputs(n + 1, dtype, seed=n)
            for x, dy in ((base[:n], dyb[:n]), (base[1:], dyb[1:])):
                activations._set_num_threads(1)
                want = {k: _run(k, x, dy) for k in KERNELS}
                for nt in (2, 3, 7):
                    activations._set_num_threads(nt)
                    with _openmp_limit(nt):
                        assert activations._threads_used(n) > 1
                        for k in KERNELS:
                            for g, w in zip(_run(k, x, dy), want[k], strict=True):
                                _same_bits(g, w)
    finally:
        activations._simd_level(-1)


@needs_openmp
def test_in_place_threaded(threads):
    activations._set_num_threads(2)
    x, dy = _inputs(THRESHOLD + 5, np.float32)
    want = activations.gelu_forward(x)
    activations.gelu_forward(x, out=x)
    _same_bits(x, want)


def test_threshold_both_sides(threads):
    activations._set_num_threads(2)
    expected = 2 if activations._openmp else 1
    assert activations._threads_used(THRESHOLD - 1) == 1
    assert activations._threads_used(THRESHOLD) == expected
    assert activations._threads_used(100) == 1  # a small net's arrays: never threaded
    activations._set_num_threads(4)
    # each thread gets at least half the threshold (OpenMP's limit raised to 4, in case this
    # machine has fewer CPUs: the kernels take the smaller of both; without threadpoolctl
    # the limit stays OpenMP's default, the CPU count)
    with _openmp_limit(4):
        most = min(4, activations._omp_max_threads())
        assert activations._threads_used(THRESHOLD) == expected
        assert activations._threads_used(2 * THRESHOLD - 1) == (min(3, most) if
                                                                activations._openmp else 1)
        assert activations._threads_used(2 * THRESHOLD) == (most if activations._openmp else 1)
    activations._set_num_threads(1)
    assert activations._threads_used(100 * THRESHOLD) == 1
    # small arrays give the same results whatever the setting (the same single loop)
    x, dy = _inputs(1000, np.float64)
    want = _run("silu", x, dy)
    activations._set_num_threads(2)
    for g, w in zip(_run("silu", x, dy), want, strict=True):
        _same_bits(g, w)


def test_set_num_threads_roundtrip(threads):
    mg.set_num_threads(1)
    assert mg.get_num_threads() == 1
    mg.set_num_threads(3)
    assert mg.get_num_threads() == (3 if activations._openmp else 1)
    mg.set_num_threads(np.int64(2))
    assert mg.get_num_threads() == (2 if activations._openmp else 1)


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), (10**6, ValueError),
    (2.0, TypeError), ("2", TypeError), (None, TypeError), (True, TypeError),
])
def test_set_num_threads_rejects_bad_values(threads, bad, error):
    before = mg.get_num_threads()
    with pytest.raises(error, match="number of threads"):
        mg.set_num_threads(bad)
    assert mg.get_num_threads() == before


def test_default_thread_count_respects_omp_num_threads():
    # In a fresh interpreter: the default is read when the kernels load.
    import os
    import subprocess
    import sys

    code = "import microgradnet as mg; print(mg.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(mg.__file__)))
    assert out.stdout.strip() == "1"
    env.pop("OMP_NUM_THREADS")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(mg.__file__)))
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert int(out.stdout.strip()) == (min(n, 8) if activations._openmp else 1)


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_losses_and_bias_add_bits(dtype):
    # The elementwise losses and bias_add split like the activations, each module with its
    # own threshold: the same bits as on one thread, at and above it, odd sizes included.
    for module in (losses, matmul):
        assert module._set_threshold(None) == THRESHOLD
    before = mg.get_num_threads()
    try:
        for n in (THRESHOLD, THRESHOLD + 1, THRESHOLD + 65, 3 * THRESHOLD + 17):
            z, d = _inputs(n, dtype, seed=n)
            t = (np.random.default_rng(n).random(n) > 0.5).astype(dtype)
            x2 = z[: n - n % 129].reshape(-1, 129)  # rows of an odd width
            b = d[:129].copy()
            runs = {}
            for nt in (1, 2, 3):
                mg.set_num_threads(nt)
                with _openmp_limit(nt):
                    runs[nt] = [
                        losses.sigmoid_binary_cross_entropy_forward(z, t),
                        losses.sigmoid_binary_cross_entropy_backward(d, z, t),
                        losses.mse_backward(0.37, z, t),
                        matmul.bias_add(x2, b),
                    ]
            for nt in (2, 3):
                for g, w in zip(runs[nt], runs[1], strict=True):
                    _same_bits(g, w)
    finally:
        mg.set_num_threads(before)


def test_set_num_threads_reaches_every_threaded_module(threads):
    mg.set_num_threads(1)
    assert {m._get_num_threads() for m in (activations, losses, matmul)} == {1}
    mg.set_num_threads(2)
    assert {m._get_num_threads() for m in (activations, losses, matmul)} == {
        2 if activations._openmp else 1}


@needs_openmp
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork")
def test_forked_child_runs_on_one_thread():
    # libgomp's pool does not survive fork: a child whose parent ran a threaded kernel would
    # hang in its first parallel region. The child runs on one thread instead (in a fresh
    # interpreter, so that a hang fails by timeout instead of stopping the test run).
    import os
    import subprocess
    import sys

    code = (
        "import os, numpy as np, microgradnet as mg\n"
        "from microgradnet._kernels import activations as A\n"
        "mg.set_num_threads(2)\n"
        "x = np.linspace(-3, 3, 1 << 18, dtype=np.float32)\n"
        "want = A.gelu_forward(x)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    mg.set_num_threads(2)\n"
        "    ok = mg.get_num_threads() == 1 and (A.gelu_forward(x) == want).all()\n"
        "    os._exit(0 if ok else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert os.waitstatus_to_exitcode(status) == 0\n"
        "assert mg.get_num_threads() == 2 and (A.gelu_forward(x) == want).all()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=os.path.dirname(os.path.dirname(mg.__file__)))


@needs_openmp
def test_openmp_limit_is_respected(threads):
    # threadpoolctl (as scikit-learn users limit OpenMP) caps the kernels too.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    activations._set_num_threads(2)
    assert activations._threads_used(4 * THRESHOLD) == 2
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert activations._threads_used(4 * THRESHOLD) == 1
    assert activations._threads_used(4 * THRESHOLD) == 2


@pytest.mark.skipif(not activations._openmp, reason="built without OpenMP: one thread")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_chunk_computes_in_the_callers_floating_point_mode(threads, dtype):
    """While fit trains, the calling thread flushes subnormals to zero; an OpenMP worker has
    its own mode, so each chunk adopts the caller's: the bits do not depend on the threads."""
    from microgradnet import fastpath

    n = 4 * THRESHOLD + 37
    tiny = np.finfo(dtype).smallest_normal
    y = np.full(n, tiny / 8, dtype)  # subnormal: y * (1 - y) is too
    dy = np.ones(n, dtype)
    x = np.full(n, tiny / 4, dtype)
    pred, target = x.copy(), np.zeros(n, dtype)
    trainer = fastpath._trainer()
    results = {}
    for nt in (1, 2):
        activations._set_num_threads(nt)
        mode = trainer._ftz_enter()
        try:
            results[nt] = (activations.sigmoid_backward(dy, y), activations.relu_forward(x),
                           losses.mse_backward(1.0, pred, target))
        finally:
            trainer._ftz_leave(mode)
    assert activations._threads_used(n) == 2
    for one, two in zip(results[1], results[2], strict=True):
        np.testing.assert_array_equal(one, two)
    if trainer.CAN_FLUSH_DENORMAL:
        assert not results[2][0].any()  # flushed in every chunk
    activations._set_num_threads(2)  # and outside fit's mode, IEEE in every chunk
    assert results[2][0].dtype == dtype and activations.sigmoid_backward(dy, y).all()
