"""The one list of compiled modules (microgradnet/_kernel_modules.py) matches what is built:
every csrc/*.pyx is in it, and each group has the hooks its name promises."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import microgradnet as mg
from microgradnet import _kernel_modules as km

CSRC = Path(__file__).resolve().parent.parent / "csrc"


def _module(name: str):
    return importlib.import_module(f"microgradnet._kernels.{name}")


def test_every_pyx_is_listed():
    if not CSRC.is_dir():
        pytest.skip("no source tree")
    assert sorted(p.stem for p in CSRC.glob("*.pyx")) == sorted(km.KERNEL_MODULES)


def test_groups_are_subsets_of_the_modules():
    assert set(km.KERNEL_SET_MODULES) <= set(km.KERNEL_MODULES)
    assert set(km.OPENMP_MODULES) <= set(km.THREAD_COUNT_MODULES) <= set(km.KERNEL_MODULES)


@pytest.mark.parametrize("name", km.KERNEL_MODULES)
def test_every_module_reports_its_simd_level(name):
    level = _module(name)._simd_level()
    assert level in (0, 1, 2)


@pytest.mark.parametrize("name", km.OPENMP_MODULES)
def test_openmp_modules_have_the_thread_hooks(name):
    module = _module(name)
    assert isinstance(module._openmp, bool)
    assert module._threads_used(1) == 1


def test_set_num_threads_reaches_every_thread_count_module():
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert [_module(m)._get_num_threads() for m in km.THREAD_COUNT_MODULES] == [1] * len(
            km.THREAD_COUNT_MODULES
        )
    finally:
        mg.set_num_threads(before)
