# The graph's two types in C, for the compiled autograd.py and for the modules that cimport
# them (functional.py's ops): a field read or a method call on them is then a C access, not a
# Python attribute lookup. Uncompiled, autograd.py defines the same names as plain Python.

cdef class Function:
    cdef public object parents
    cdef public object needs_input_grad
    # The inputs' versions when the op ran, or None when every one was at version 0.
    cdef public object _versions
    # The output's version when it became the op's result: None for 0 (see _record_inplace).
    cdef public object _out_version
    # Whether a backward has freed what the op saved (the walk reads it per node).
    cdef public bint released
    # The arrays (and values) the op's backward reads, as a tuple, set by its forward: the
    # engine drops them after a backward without retain_graph, and a leaf's gradient that is
    # one of them is copied before the leaf keeps it. Ops written in Python may keep theirs
    # in attributes of the instance instead.
    cdef public object saved

    cpdef backward(self, grad)


cdef class Tensor:
    cdef public object data
    cdef public object grad
    cdef public bint requires_grad
    cdef public object _ctx
    # The version counter (PyTorch's): None until the data first changes in place or a view
    # of it is made, then [version, whether views share it], a list shared with the views.
    cdef public object _vc
    # The nodes this tensor stood for before recorded in-place ops replaced them:
    # [(version at the replacement, node), ...], or None (see _node_at).
    cdef public object _hist
    # The backward walk's own: the gradient gathered for this node so far, and the walk that
    # last reached it (see _run_backward); in C fields, not a dict keyed by id().
    cdef object _pend
    cdef object _mark
    cdef object __weakref__


cdef Tensor _link1(Function ctx, object data, Tensor a)
cdef Tensor _link2(Function ctx, object data, Tensor a, Tensor b)
cdef Tensor _apply1(Function ctx, Tensor a)
cdef Tensor _apply2(Function ctx, Tensor a, Tensor b)
cdef bint _is_array(object a)
cdef bint _same_shape(object a, object b)
cdef bint _same_dtype(object a, object b)
cdef bint _is_float_array(object a)
cdef bint _float_pair(object a, object b)
cdef bint _elementwise(object a, object b)
cdef bint _float_matrices(object a, object b, bint product)
cdef object _scalar_like(object value, object like)
cdef object _filled(tuple shape, object value)
