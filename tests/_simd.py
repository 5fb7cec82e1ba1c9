"""The SIMD levels the kernel tests run at."""


def simd_levels() -> list[int]:
    """The SIMD variants this CPU runs: 0 (baseline) and, where supported, 1 (AVX2+FMA) and
    2 (AVX-512)."""
    from microgradnet._kernels import activations

    return list(range(activations._simd_level(-1) + 1))
