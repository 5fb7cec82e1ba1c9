# The ops that a hand-written training loop runs most, as extension types: their fields are
# C fields, backward is a C method of the graph node (autograd.pxd), and their result is
# linked into the graph by a C call. Uncompiled, functional.py defines them as plain Python.

from microgradnet.autograd cimport (
    Function, Tensor, _apply1, _apply2, _elementwise, _filled, _float_matrices, _float_pair,
    _is_float_array, _link1, _scalar_like,
)


cdef class Add(Function):
    cpdef backward(self, grad)


cdef class Sub(Function):
    cpdef backward(self, grad)


cdef class Mul(Function):
    cpdef backward(self, grad)


cdef class Neg(Function):
    cpdef backward(self, grad)


cdef class Sum(Function):
    cdef object shape, axes
    cpdef backward(self, grad)


cdef class Mean(Function):
    cdef object shape, axes, scale
    cpdef backward(self, grad)


cdef class MatMul(Function):
    cpdef backward(self, grad)


cdef class Linear(Function):
    cpdef backward(self, grad)


cdef class _Activation(Function):
    cpdef backward(self, grad)


cdef class _ActivationWithAlpha(_Activation):
    cdef object alpha
    cpdef backward(self, grad)


cdef class MSELoss(Function):
    cpdef backward(self, grad)


cdef class SigmoidBinaryCrossEntropy(Function):
    cpdef backward(self, grad)
