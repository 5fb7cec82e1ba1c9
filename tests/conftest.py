"""Fixtures shared by the kernel tests."""

import pytest
from _simd import simd_levels

from microgradnet._kernel_modules import KERNEL_MODULES


@pytest.fixture(params=simd_levels(), ids=lambda v: ["baseline", "avx2", "avx512"][v])
def simd_level(request):
    """Every kernel module's loops at one SIMD level for the test, the CPU's best after it."""
    import importlib

    modules = [importlib.import_module(f"microgradnet._kernels.{m}") for m in KERNEL_MODULES]
    for m in modules:
        assert m._simd_level(request.param) == request.param
    yield request.param
    for m in modules:
        m._simd_level(-1)
