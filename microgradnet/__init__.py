"""microgradnet: a small autograd framework with Cython kernels."""

__version__ = "0.1.0"
