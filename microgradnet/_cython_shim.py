"""Stand-ins for the few `cython` names autograd.py uses, when it runs uncompiled without Cython."""

bint = bool


def cclass(cls):
    """Return the class unchanged (compiled, it becomes an extension type)."""
    return cls


def declare(*args, **kwargs):
    """Declare nothing (compiled, it declares a C field)."""
    return None


def cfunc(func):
    """Return the function unchanged (compiled, it becomes a C function)."""
    return func


def inline(func):
    """Return the function unchanged (compiled, it is inlined)."""
    return func


compiled = False  # code under `if cython.compiled:` runs only in the extension


def cast(type_, value):
    """Return value unchanged (compiled, a C cast)."""
    return value
