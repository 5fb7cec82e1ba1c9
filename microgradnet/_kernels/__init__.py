"""Compiled Cython kernels (built from csrc/ by setup.py)."""
