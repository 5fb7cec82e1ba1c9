# The SIMD level of vmath.h's loops, included by every kernel module: each compiles its own
# copy of the header (nothing is shared at run time), so each keeps its own level, and tests
# force it module by module.

from vmath cimport vm_set_simd_level, vm_simd_level

# Detect the level now, while one thread runs: the threaded loops then only read it.
vm_simd_level()


def _simd_level(level=None):
    """Test hook: the SIMD variant this module's vmath loops run: 2 AVX-512, 1 AVX2+FMA, 0 the
    baseline. `level` 0, 1 or 2 forces one (capped at what the CPU has), -1 detects again."""
    if level is not None:
        vm_set_simd_level(level)
    return vm_simd_level()
