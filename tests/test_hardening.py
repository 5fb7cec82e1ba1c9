"""Issue 13's defects of the default path, the data checks and the files: read-only data, N-D
inputs, logits' metrics, float64 models, overflowing weights, gemm's alpha 0, crafted and
half-written files, and the errors of odd arguments. Each test failed on the code before."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import fastpath
from microgradnet.backend import BACKENDS, kernel_table
from microgradnet.callbacks import PredictionRecorder
from microgradnet.layers import Dense, Input
from microgradnet.models import Sequential, load_model
from microgradnet.optimizers import SGD, Adam

pytest.importorskip("microgradnet._kernels.trainer")

# Where the tested package lives (the installed copy in CI), for the fresh processes to import.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))


def _xy(n=24, features=3, outputs=1, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, features)).astype(dtype),
            rng.normal(size=(n, outputs)).astype(dtype))


def _fit(make, x, y, jit, loss="mse", metrics=None, callbacks=None, **fit):
    model = make()
    model.compile(optimizer=Adam(learning_rate=0.05), loss=loss, metrics=metrics,
                  jit_compile=jit)
    mg.manual_seed(3)
    history = model.fit(x, y, batch_size=5, epochs=3, verbose=0, callbacks=callbacks, **fit)
    return model, history


def _seeded(layers):
    def make():
        mg.manual_seed(1)
        return Sequential(layers())
    return make


def _same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        assert wa.dtype == wb.dtype
        np.testing.assert_array_equal(wb, wa)


# --------------------------------------------------------------------------- item 2

def _read_only(a, how, tmp_path, name):
    if how == "mmap":
        np.save(tmp_path / f"{name}.npy", a)
        return np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    if how == "frombuffer":
        return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("how", ["mmap", "frombuffer", "flag"])
def test_read_only_data_trains_captured_without_being_written(how, tmp_path):
    x, y = _xy()
    xr, yr = _read_only(x, how, tmp_path, "x"), _read_only(y, how, tmp_path, "y")
    assert not xr.flags.writeable and not yr.flags.writeable
    make = _seeded(lambda: [Dense(4, activation="tanh", input_dim=3), Dense(1)])
    eager, _ = _fit(make, x, y, False)
    for jit in (True, "auto"):  # True: it is captured (raised here before)
        model, _ = _fit(make, xr, yr, jit)
        _same_weights(eager, model)
    np.testing.assert_array_equal(xr, x)
    np.testing.assert_array_equal(yr, y)


def _unaligned(a):
    # Bytes at an odd offset (as np.frombuffer over a file's header gives): not aligned.
    out = np.frombuffer(b"\0" + a.tobytes(), dtype=a.dtype, count=a.size, offset=1)
    out = out.reshape(a.shape)
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_data_trains_to_the_same_bits(dtype):
    # fit refused x or y at an odd address ("must be C-contiguous and aligned") on the
    # captured path, and fit_many and a serial mg.sweep with it; strided data was copied.
    x, y = _xy(dtype=dtype)
    seeded = _seeded(lambda: [Dense(4, activation="tanh", input_dim=3), Dense(1)])
    make = seeded if dtype == np.float32 else lambda: _float64(seeded())
    for jit in (True, "auto", False):
        aligned, h0 = _fit(make, x, y, jit)
        for xu, yu in ((_unaligned(x), y), (x, _unaligned(y)), (_unaligned(x), _unaligned(y))):
            model, h1 = _fit(make, xu, yu, jit)
            _same_weights(aligned, model)
            assert h1.history["loss"] == h0.history["loss"]
            assert model.evaluate(xu, yu, verbose=0) == aligned.evaluate(x, y, verbose=0)
            np.testing.assert_array_equal(model.predict(xu), aligned.predict(x))
    models = [make() for _ in range(2)]
    for m in models:
        m.compile(optimizer=Adam(learning_rate=0.05), loss="mse")
    gens = [np.random.default_rng(k) for k in range(2)]
    fastpath.fit_many(models, _unaligned(x), _unaligned(y), generators=gens, epochs=2)


# --------------------------------------------------------------------------- item 3

def test_dense_on_three_dimensional_inputs_trains_as_eagerly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2, 1)).astype(np.float32)
    make = _seeded(lambda: [Dense(1, input_shape=(2, 3))])
    eager, h0 = _fit(make, x, y, False)
    model, h1 = _fit(make, x, y, "auto")
    _same_weights(eager, model)
    assert h1.history["loss"] == h0.history["loss"]
    assert "only (batch, features) inputs are captured" in fastpath.explain(model)
    with pytest.raises(ValueError, match=r"jit_compile=True, but .*\(batch, features\)"):
        _fit(make, x, y, True)


def test_a_model_of_zero_input_features_trains_as_eagerly():
    x = np.zeros((8, 0), np.float32)
    y = np.ones((8, 1), np.float32)
    make = _seeded(lambda: [Input((0,)), Dense(1)])
    eager, h0 = _fit(make, x, y, False)
    model, h1 = _fit(make, x, y, "auto")
    _same_weights(eager, model)
    assert h1.history["loss"] == h0.history["loss"]
    assert "no inputs" in fastpath.explain(model)


# --------------------------------------------------------------------------- item 4

_LOGITS = [
    (mg.losses.BinaryCrossentropy(from_logits=True), "binary", 1),
    (mg.losses.CategoricalCrossentropy(from_logits=True), "onehot", 3),
    (mg.losses.SparseCategoricalCrossentropy(from_logits=True), "labels", 3),
]


def _classes(kind, outputs, n=30):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    if kind == "binary":
        return x, (x[:, :1] > 0).astype(np.float32)
    if kind == "onehot":
        return x, np.eye(outputs, dtype=np.float32)[labels]
    return x, labels


@pytest.mark.parametrize("loss,kind,outputs", _LOGITS, ids=["binary", "categorical", "sparse"])
def test_logits_metrics_and_recordings_are_the_model_outputs(loss, kind, outputs):
    x, y = _classes(kind, outputs)
    make = _seeded(lambda: [Dense(5, activation="relu", input_dim=2), Dense(outputs)])
    metrics = ["accuracy"] if kind == "labels" else ["accuracy", "mae"]
    results = []
    for jit in (False, True):
        model, h = _fit(make, x, y, jit, loss=loss, metrics=metrics)
        rec = PredictionRecorder(x[:7], every=2)
        recorded, _ = _fit(make, x, y, jit, loss=loss, callbacks=[rec])  # in C when captured
        results.append((model, h, rec, recorded))
    (m0, h0, r0, _), (m1, h1, r1, recorded) = results
    assert fastpath.explain(m1) is None
    _same_weights(m0, m1)
    for key in metrics:
        np.testing.assert_allclose(h1.history[key], h0.history[key], rtol=1e-6)
    assert r1.steps == r0.steps and r1.steps[-1] == 18
    for a, b in zip(r0.predictions, r1.predictions, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    # the last snapshot is after the last step: what predict gives, the logits (some < 0)
    last = recorded.predict(x[:7])
    np.testing.assert_allclose(r1.predictions[-1], last, rtol=1e-6, atol=1e-7)
    assert (last < 0).any()


# --------------------------------------------------------------------------- item 8

def _float64(model):
    for w in model.weights:
        w.data = w.data.astype(np.float64)
    return model


def test_a_float64_model_is_captured_on_float64_data():
    x, y = _xy(dtype=np.float64)
    make = lambda: _float64(_seeded(lambda: [Dense(4, activation="tanh", input_dim=3),  # noqa: E731
                                             Dense(1)])())
    eager, h0 = _fit(make, x, y, False)
    model, h1 = _fit(make, x, y, True)  # raised "x has dtype float32" before
    assert fastpath.explain(model) is None
    assert all(w.dtype == np.float64 for w in model.get_weights())
    _same_weights(eager, model)
    np.testing.assert_allclose(h1.history["loss"], h0.history["loss"], rtol=1e-12)


def test_a_float64_model_sees_float64_data_eagerly():
    model = _float64(Sequential([Dense(1, input_dim=1, use_bias=False)]))
    model.set_weights([np.ones((1, 1))])
    x = np.array([[1 + 1e-10]])
    out = model.predict(x)
    assert out.dtype == np.float64
    assert out[0, 0] - 1 != 0 and abs(out[0, 0] - 1 - 1e-10) < 1e-15
    assert model.predict(np.zeros((0, 1))).dtype == np.float64
    model.compile(optimizer="sgd", loss="mse")
    assert model.evaluate(x, x + 1e-10) == pytest.approx(1e-20, rel=1e-3)


def test_jit_compile_true_names_the_dtypes_of_a_mixed_model():
    model = Sequential([Dense(3, input_dim=2), Dense(1)])
    model.layers[1].kernel.data = model.layers[1].kernel.data.astype(np.float64)
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="float32 and float64"):
        model.fit(*_xy(features=2), verbose=0)


# --------------------------------------------------------------------------- item 9

def test_weights_that_overflow_the_weight_dtype_are_refused(tmp_path):
    model = Sequential([Dense(2, input_dim=2), Dense(1)])
    before = model.get_weights()
    big = [w.astype(np.float64) for w in before]
    big[2][0, 0] = 1e39
    with pytest.raises(ValueError, match=r"dense.*kernel.*overflow float32 .*1e\+39"):
        model.set_weights(big)
    with pytest.raises(ValueError, match="overflow float32"):
        model.layers[1].set_weights(big[2:])
    path = tmp_path / "w.npz"
    model.save_weights(path)
    with np.load(path) as f:
        contents = {k: f[k] for k in f.files}
    contents["layer1/0"] = big[2]
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, **contents)
    with pytest.raises(ValueError, match="overflow float32"):
        model.load_weights(crafted)
    _same_weights_arrays(before, model.get_weights())


def _same_weights_arrays(a, b):
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wb, wa)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("beta", [0.0, 2.0])
@pytest.mark.parametrize("n", [3, 300])  # OpenBLAS skips the product from its large sizes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_with_alpha_zero_propagates_nan_and_inf(backend, beta, n, dtype):
    gemm = kernel_table(backend)["gemm"]
    a = np.ones((n, n), dtype)
    a[0, 0] = np.nan
    a[1, 1] = np.inf
    b = np.full((n, n), -1.0, dtype)
    with np.errstate(all="ignore"):  # the reference warns
        got = gemm(a, b, out=np.ones((n, n), dtype), alpha=0.0, beta=beta)
    assert np.isnan(got[:2]).all()  # 0 * nan and 0 * inf are nan, as IEEE says
    np.testing.assert_array_equal(got[2:], np.full((n - 2, n), beta, dtype))  # -0 + beta


# --------------------------------------------------------------------------- item 11

def _saved(tmp_path, name="m.npz"):
    model = Sequential([Dense(3, activation="tanh", input_dim=2), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / name
    model.save(path)
    return model, path


def _contents(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_member_declaring_a_huge_array_is_a_damaged_file(tmp_path):
    model, path = _saved(tmp_path)
    members = _contents(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    members["layer0/0.npy"] = header.getvalue() + bytes(16)
    crafted = tmp_path / "huge.npz"
    _write_zip(crafted, members)
    for load in (lambda: load_model(crafted), lambda: model.load_weights(crafted)):
        with pytest.raises(ValueError, match="damaged"):
            load()


def test_deeply_nested_descriptions_are_damaged_files(tmp_path):
    model, path = _saved(tmp_path)
    members = _contents(path)
    meta = io.BytesIO()
    np.save(meta, np.array("[" * 200_000 + "]" * 200_000))
    members["__meta__.npy"] = meta.getvalue()
    crafted = tmp_path / "nested.npz"
    _write_zip(crafted, members)
    for load in (lambda: load_model(crafted), lambda: model.load_weights(crafted)):
        with pytest.raises(ValueError, match="description is damaged"):
            load()


def test_every_damaged_byte_of_an_array_header_is_a_damaged_file(tmp_path):
    """numpy parses a header as Python literals: a flipped byte there raised SyntaxError or
    tokenize.TokenError (found by tests/test_properties.py's long run)."""
    model, path = _saved(tmp_path)
    data = path.read_bytes()
    start = data.index(b"{'descr'")
    bad = tmp_path / "bad.npz"
    for at in range(start, start + 70):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="damaged"):
            load_model(bad)


def test_a_member_flagged_as_encrypted_is_a_damaged_file(tmp_path):
    """A flipped flag bit in the zip's directory made zipfile raise RuntimeError."""
    model, path = _saved(tmp_path)
    data = path.read_bytes()
    entries = [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]
    assert entries
    bad = tmp_path / "bad.npz"
    for at in entries:
        flipped = bytearray(data)
        flipped[at + 8] |= 0x01  # general purpose flags: bit 0, encrypted
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="damaged"):
            load_model(bad)


@pytest.mark.slow
def test_every_flipped_byte_of_a_file_is_refused_or_harmless(tmp_path):
    """Each byte of a saved model flipped in turn: ValueError, or (a byte nothing checks) the
    very model saved; never another exception or other weights."""
    model, path = _saved(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for at in range(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            loaded = load_model(bad)
        except ValueError:
            continue
        _same_weights(model, loaded)


def test_a_config_beyond_max_params_is_refused_before_allocating(tmp_path, monkeypatch):
    _, path = _saved(tmp_path)
    members = _contents(path)
    with np.load(path) as f:
        meta = json.loads(str(f["__meta__"]))
    meta["model"]["layers"][0]["config"].update(units=10**7, input_shape=[10**6])
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members["__meta__.npy"] = buf.getvalue()
    crafted = tmp_path / "big.npz"
    _write_zip(crafted, members)
    with pytest.raises(ValueError,
                       match=r"more than max_params=1,000,000,000 .*10,000,000,000,000"):
        load_model(crafted)
    # the limit is the caller's to change, by argument or environment
    assert load_model(path, max_params=17).count_params() == 13
    with pytest.raises(ValueError, match="max_params=12"):
        load_model(path, max_params=12)
    monkeypatch.setenv("MICROGRADNET_MAX_PARAMS", "5")
    with pytest.raises(ValueError, match="max_params=5"):
        load_model(path)
    assert load_model(path, max_params=100).count_params() == 13


_KILLED_SAVE = """
import os, signal, sys
import numpy as np
sys.path.insert(0, {root!r})
from microgradnet.layers import Dense
from microgradnet.models import Sequential
model = Sequential([Dense(3, input_dim=2)])
def savez(f, **arrays):
    f.write(b"half a file" * 1000)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
np.savez = savez
model.save({path!r})
"""


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX: SIGKILL and flock")
def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    model, path = _saved(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _KILLED_SAVE.format(root=ROOT, path=str(path))],
                          cwd=tmp_path, capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    assert len(_temporaries(tmp_path)) == 1
    other = tmp_path / "other.npz"
    model.save(other)  # another path's save leaves it alone
    assert len(_temporaries(tmp_path)) == 1
    model.save(path)
    assert _temporaries(tmp_path) == []
    np.testing.assert_array_equal(load_model(path).get_weights()[0], model.get_weights()[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX: flock")
def test_a_temporary_being_written_is_not_removed(tmp_path, monkeypatch):
    import fcntl

    from microgradnet import saving

    model, path = _saved(tmp_path)
    created = []
    real = saving._create_temporary

    def spy(folder, prefix):
        fd, tmp = real(folder, prefix)
        created.append(prefix)
        return fd, tmp

    monkeypatch.setattr(saving, "_create_temporary", spy)
    model.save(path)
    busy = tmp_path / f"{created[0]}0123456789abcdef.npz"
    fd = os.open(busy, os.O_WRONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a save of the same path in another process
        os.write(fd, b"partial")
        model.save(path)
        assert busy.exists()
    finally:
        os.close(fd)
    model.save(path)  # its writer is gone now
    assert not busy.exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_saving_through_a_symlink_writes_its_target(tmp_path):
    model, _ = _saved(tmp_path)
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "model.npz"
    link = tmp_path / "link.npz"
    os.symlink(target, link)  # dangling at first
    for save in (model.save, model.save_weights, model.save):
        save(link)
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert target.is_file()
    np.testing.assert_array_equal(load_model(link).get_weights()[0], model.get_weights()[0])
    assert _temporaries(tmp_path) == [] and _temporaries(tmp_path / "store") == []


# --------------------------------------------------------------------------- item 12

def _compiled(loss="mse", units=1):
    model = Sequential([Dense(units, input_dim=2)])
    model.compile(optimizer=SGD(), loss=loss)
    return model


X2 = np.ones((4, 2), np.float32)


@pytest.mark.parametrize("call,error,match", [
    (lambda: _compiled().fit(X2, 3.0, verbose=0), ValueError,
     r"fit: y must have a batch dimension .*scalar 3\.0"),
    (lambda: _compiled().evaluate(X2, 1.0), ValueError,
     r"evaluate: y must have a batch dimension .*scalar 1\.0"),
    (lambda: _compiled().fit(3.0, X2, verbose=0), ValueError, "x must have a batch dimension"),
    (lambda: _compiled("sparse_categorical_crossentropy", 3).fit(
        X2, np.array([0, 1, np.inf, 2]), verbose=0), ValueError,
     r"y holds class labels, which must be in \[0, 3\), got inf"),
    (lambda: _compiled("sparse_categorical_crossentropy", 3).fit(
        X2, np.array([0, 1e20, 1, 2]), verbose=0), ValueError, r"in \[0, 3\), got 1e\+20"),
    (lambda: _compiled("sparse_categorical_crossentropy", 3).evaluate(
        X2, np.array([0, 2**63, 1, 2], dtype=np.uint64)), ValueError,
     r"in \[0, 3\), got 9223372036854775808"),
    (lambda: _compiled().fit(np.full((4, 2), 1e39), np.ones((4, 1)), verbose=0), ValueError,
     r"x has values that overflow float32 \(first in row 0: 1e\+39\)"),
    (lambda: _compiled().predict(np.array([[1.0, 2.0], [3.0, -1e39]])), ValueError,
     r"x has values that overflow float32 \(first in row 1: -1e\+39\)"),
    (lambda: _compiled().fit(X2, np.full((4, 1), 1e300), verbose=0), ValueError,
     "y has values that overflow float32"),
    (lambda: _compiled().fit(X2, np.ones((4, 1)), initial_epoch=1.5, verbose=0), ValueError,
     "fit: initial_epoch must be a non-negative int, got 1.5"),
    (lambda: _compiled().fit(X2, np.ones((4, 1)), initial_epoch=-1, verbose=0), ValueError,
     "initial_epoch"),
    (lambda: Dense(1, input_dim=-1), ValueError, "input_dim must be >= 0, got -1"),
    (lambda: Dense(1, input_dim=2.5), TypeError, "input_dim must hold ints, got 2.5"),
    (lambda: Dense(1, input_shape=(3, -2)), ValueError, "input_shape must be >= 0, got -2"),
    (lambda: Input((2, None)), TypeError, "shape must hold ints, got None"),
    (lambda: Input(-3), ValueError, "shape must be >= 0"),
], ids=["fit-y-scalar", "evaluate-y-scalar", "fit-x-scalar", "label-inf", "label-1e20",
        "label-2**63", "x-overflow", "predict-overflow", "y-overflow", "initial-epoch-float",
        "initial-epoch-negative", "input-dim-negative", "input-dim-float", "input-shape-negative",
        "input-none", "input-negative"])
def test_odd_arguments_get_errors_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_refused_fit_changes_nothing():
    model = _compiled("sparse_categorical_crossentropy", 3)
    before = model.get_weights()
    with pytest.raises(ValueError):
        model.fit(X2, np.array([0, 2**63, 1, 2], dtype=np.uint64), verbose=0)
    _same_weights_arrays(before, model.get_weights())
    assert model.optimizer.iterations == 0


def test_fit_names_a_callbacks_argument_that_is_not_a_list():
    # A single callback, or a number, failed with "Value after * must be an iterable".
    x, y = _xy()
    make = _seeded(lambda: [Dense(1, input_dim=3)])
    model = make()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match=r"callbacks must be a list .*callbacks=\[it\]"):
        model.fit(x, y, verbose=0, callbacks=mg.callbacks.History())
    with pytest.raises(TypeError, match="callbacks must be a list of Callback instances, got "
                                        "int"):
        model.fit(x, y, verbose=0, callbacks=5)
    def build(config):
        fresh = make()
        fresh.compile(optimizer="sgd", loss="mse")
        return fresh

    r = mg.sweep(build, [{}], x, y, callbacks=5, progress=False)
    assert "callbacks must be a list" in r[0].error["message"]
