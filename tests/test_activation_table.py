"""Every list of activations agrees with the one table (microgradnet/activation_table.py):
the C table of the kernels and the captured step, functional, layers, the numpy reference,
the captured path and the benchmarks."""

from __future__ import annotations

import inspect
from pathlib import Path
from unittest import mock

import pytest
from _load import load_script

import microgradnet as mg
from microgradnet import _reference, functional, layers
from microgradnet.activation_table import ACTIVATIONS, BY_NAME, NAMES
from microgradnet.fastpath import capture as fastpath
from microgradnet.functional import REGISTRY

activations = pytest.importorskip("microgradnet._kernels.activations")
trainer = pytest.importorskip("microgradnet._kernels.trainer")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    return load_script(BENCHMARKS / f"{name}.py", f"bench_{name}")


def test_the_rows_are_well_formed():
    assert len(set(NAMES)) == len(NAMES) == len(ACTIVATIONS)
    for a in ACTIVATIONS:
        assert a.saves in ("x", "y"), a
        assert a.doc.strip() and a.function_class, a
        assert a.alpha is None or a.alpha > 0, a
        assert not a.alpha_positive or a.alpha is not None, a


def test_the_c_table_has_the_same_rows_in_the_same_order():
    # trainer.ACTIVATIONS: the names by code; code 0 is "linear" (no kernels)
    assert trainer.ACTIVATIONS == ("linear", *NAMES)
    rows = [(name, saved, alpha) for name, saved, alpha, _, _ in activations._activation_rows]
    assert rows[0][0] == "linear"
    assert rows[1:] == [(a.name, a.saves, a.alpha) for a in ACTIVATIONS]


@pytest.mark.parametrize("kernels", [activations, _reference], ids=["cython", "numpy"])
def test_each_row_has_its_two_kernels(kernels):
    for a in ACTIVATIONS:
        forward = inspect.signature(getattr(kernels, a.forward_kernel)).parameters
        backward = inspect.signature(getattr(kernels, a.backward_kernel)).parameters
        extra = [] if a.alpha is None else [("alpha", a.alpha)]
        assert [(p.name, p.default) for p in forward.values()][1:] == [*extra, ("out", None)]
        assert [p.name for p in backward.values()] == ["dy", a.saves, *dict(extra), "out"]
        if a.alpha is not None:
            assert backward["alpha"].default == a.alpha


def test_functional_and_the_package_make_one_function_per_row():
    assert list(functional.ACTIVATIONS) == [*NAMES, "softmax", "log_softmax"]
    for a in ACTIVATIONS:
        fn = functional.ACTIVATIONS[a.name]
        assert getattr(mg, a.name) is fn and getattr(functional, a.name) is fn
        assert a.name in mg.__all__
        assert fn.__name__ == a.name and fn.__doc__ == a.doc
        assert REGISTRY[a.name].__name__ == a.function_class
        params = inspect.signature(fn).parameters
        assert list(params) == (["x"] if a.alpha is None else ["x", "alpha"])
        if a.alpha is not None:
            assert params["alpha"].default == a.alpha


def test_layers_and_the_captured_path_take_the_table():
    assert set(layers.ACTIVATIONS) == {"linear", *functional.ACTIVATIONS}
    for a in ACTIVATIONS:
        assert layers.get_activation(a.name) == (a.name, functional.ACTIVATIONS[a.name])
        assert fastpath._alpha(a.name) == (a.alpha or 0.0)
    assert fastpath._alpha("linear") == fastpath._alpha("softmax") == 0.0


def test_the_benchmark_lists_follow_the_table():
    run = _load("run")
    workloads = _load("workloads")
    readme_tables = _load("readme_tables")
    assert run.ACTIVATIONS == list(NAMES) == readme_tables.ACTIVATION_ORDER
    assert run.SAVES_OUTPUT == {a.name for a in ACTIVATIONS if a.saves == "y"}
    assert workloads.HIDDEN == [a.name for a in ACTIVATIONS if a.trainable]
    assert set(workloads.W1_ACTIVATIONS) <= set(workloads.HIDDEN)
    assert set(NAMES) <= set(workloads.NUMPY_ACTIVATIONS)
    assert set(run.COMPOSED) == set(NAMES)
    # The peers have every activation but step (a stand-in module: neither need be installed).
    peers = set(NAMES) - {"step"}
    assert set(run._torch_activations(mock.MagicMock())) == peers
    assert set(run._jax_activations(mock.MagicMock())) == peers
    assert all(BY_NAME[name].trainable for name in workloads.HIDDEN)
