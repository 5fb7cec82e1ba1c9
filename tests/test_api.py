"""The public API contract of DESIGN.md: names, defaults and behaviour users rely on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg


def test_version_and_backend():
    assert isinstance(mg.__version__, str) and mg.__version__
    assert mg.backend_name() == "cython"
    with mg.use_backend("numpy"):
        assert mg.backend_name() == "numpy"
        assert mg.relu(mg.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert mg.backend_name() == "cython"


def test_use_backend_restores_after_an_error():
    with pytest.raises(ZeroDivisionError), mg.use_backend("numpy"):
        _ = 1 / 0
    assert mg.backend_name() == "cython"


def test_tensor_attributes():
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    assert x.shape == (1, 2) and x.ndim == 2 and x.size == 2
    assert x.dtype == np.float32
    assert x.requires_grad and x.grad is None and x.is_leaf
    assert isinstance(x.numpy(), np.ndarray)
    assert np.asarray(x).dtype == np.float32
    assert mg.tensor([[1.0, 2.0]], dtype="float64").dtype == np.float64
    assert mg.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert mg.Tensor(np.zeros(3)).dtype == np.float32
    assert mg.tensor(3.5).item() == 3.5
    assert "requires_grad=True" in repr(x)


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = mg.tensor(a)
    a[0] = 5
    assert t.tolist() == [1.0, 2.0]


def test_grad_is_a_tensor_usable_as_an_array():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, mg.Tensor)
    np.testing.assert_allclose(np.asarray(x.grad), [2.0, 4.0])


def test_ops_as_operators_methods_and_functions():
    a = mg.tensor([[1.0, 4.0], [9.0, 16.0]])
    np.testing.assert_allclose(mg.sqrt(a).numpy(), a.sqrt().numpy())
    np.testing.assert_allclose((a @ a).numpy(), mg.matmul(a, a).numpy())
    np.testing.assert_allclose((-a).numpy(), mg.neg(a).numpy())
    assert a.T.shape == (2, 2) and a.transpose(1, 0).shape == (2, 2)
    assert a.reshape(4).shape == (4,) and a.reshape((1, 4)).shape == (1, 4)
    assert a.sum().item() == 30.0 and a.max(axis=0).tolist() == [9.0, 16.0]
    assert mg.where(a > 5, a, 0.0).tolist() == [[0.0, 0.0], [9.0, 16.0]]
    assert (a >= 4).dtype == np.bool_ and not (a >= 4).requires_grad


def test_creation_functions_and_manual_seed():
    assert mg.zeros(2, 3).shape == (2, 3) and mg.ones((4,)).numpy().sum() == 4
    assert mg.zeros(2, dtype="float64").dtype == np.float64
    mg.manual_seed(0)
    a = mg.randn(3, 3).numpy()
    mg.manual_seed(0)
    np.testing.assert_array_equal(a, mg.randn(3, 3).numpy())
    r = mg.rand(1000).numpy()
    assert r.dtype == np.float32 and 0 <= r.min() and r.max() < 1
    assert mg.randn(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="non-negative"):
        mg.zeros(-1)
    with pytest.raises(ValueError, match="seed"):
        mg.manual_seed(-3)


def test_kernel_sets_export_the_same_names():
    from microgradnet import _reference
    from microgradnet.backend import kernel_table

    assert sorted(kernel_table("cython")) == sorted(_reference.KERNEL_NAMES)
    assert sorted(kernel_table("numpy")) == sorted(_reference.KERNEL_NAMES)


def test_the_autograd_core_is_compiled():
    # setup.py compiles autograd.py; an installed package must not fall back to pure Python.
    from microgradnet import autograd

    assert Path(autograd.__file__).suffix in (".so", ".pyd")


def test_the_ops_are_compiled_with_python_semantics():
    # setup.py compiles functional.py too (the eager path's forward and backward), keeping
    # Python's negative indices and untyped annotations.
    from microgradnet import functional

    assert Path(functional.__file__).suffix in (".so", ".pyd")
    x = mg.tensor(np.ones((2, 3, 4)), requires_grad=True)
    assert mg.matmul(x, mg.tensor(np.ones((4, 5)))).shape == (2, 3, 5)  # shape[-1] and [-2]
    assert mg.softmax(x, axis=np.int64(-1)).shape == (2, 3, 4)  # a numpy integer as an int


def _source_copy(tmp_path: Path) -> Path:
    """A copy of the package's Python sources without any compiled extension."""
    src = Path(mg.__file__).parent
    dst = tmp_path / "microgradnet"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c",
                                                            "__pycache__"))
    return tmp_path


def _run(code: str, path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MICROGRADNET_BACKEND"}
    environ.update(env, PYTHONPATH=str(path))
    return subprocess.run([sys.executable, "-c", code], cwd=path, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_unbuilt_source_tree_says_how_to_build(tmp_path):
    root = _source_copy(tmp_path)
    result = _run("import microgradnet", root)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "not built" in result.stderr and "pip install" in result.stderr


def test_unbuilt_source_tree_runs_on_the_numpy_reference(tmp_path):
    root = _source_copy(tmp_path)
    code = (
        "import microgradnet as mg\n"
        "x = mg.tensor([1.0, -1.0], requires_grad=True)\n"
        "mg.relu(x).sum().backward()\n"
        "print(mg.backend_name(), x.grad.tolist())\n"
        "try:\n"
        "    mg.set_backend('cython')\n"
        "except ImportError as e:\n"
        "    print('ImportError', 'not built' in str(e))\n"
    )
    result = _run(code, root, MICROGRADNET_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["numpy [1.0, 0.0]", "ImportError True"]
