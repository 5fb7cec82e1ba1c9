"""Every kernel again in plain numpy: the test oracle and the benchmark baseline.

Same names, signatures and semantics as the Cython kernels (see csrc/README.md).
Written for clarity, not speed: several numpy passes where the Cython kernel makes one.
"""

from __future__ import annotations

import math
from types import FunctionType

import numpy as np
from scipy.special import erfc

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- checks


def _float_array(name: str, a, dtype=None) -> np.ndarray:
    """Return `a` as a C-contiguous float array, checking its type and dtype."""
    _check_float(name, a, dtype)
    return a if a.flags.c_contiguous else np.array(a, order="C")


def _check_float(name: str, a, dtype=None) -> None:
    """Check that `a` is a float32/float64 array (of `dtype` if given), as it is."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like the other inputs")


def _same_shape(name: str, a: np.ndarray, ref_name: str, ref: np.ndarray) -> None:
    if a.shape != ref.shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {ref.shape} like {ref_name}")


def _out(out, shape, dtype) -> np.ndarray:
    """Allocate the result, or check the caller's `out` buffer."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    return out


def _unary(x, out):
    x = _float_array("x", x)
    return x, _out(out, x.shape, x.dtype)


def _binary(dy, saved, saved_name, out):
    dy = _float_array("dy", dy)
    saved = _float_array(saved_name, saved, dy.dtype)
    _same_shape(saved_name, saved, "dy", dy)
    return dy, saved, _out(out, dy.shape, dy.dtype)


def _axis(x: np.ndarray, axis: int) -> int:
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {x.ndim} dimensions")
    return int(axis) % x.ndim


# --------------------------------------------------------------------------- matmul


def gemm(a, b, out=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """out := alpha * op(a) @ op(b) + beta * out."""
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS:
        _float_array("a", a)
    b = b if isinstance(b, np.ndarray) and b.dtype == a.dtype else _float_array("b", b, a.dtype)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm needs 2-D operands, got shapes {a.shape} and {b.shape}")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    if opa.shape[1] != opb.shape[0]:
        raise ValueError(
            f"gemm shapes do not match: op(a) is {opa.shape}, op(b) is {opb.shape}"
        )
    shape = (opa.shape[0], opb.shape[1])
    if beta != 0 and out is None:
        raise ValueError("gemm with beta != 0 needs out")
    out = _out(out, shape, a.dtype)
    if out.size and (np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        raise ValueError("gemm: out must not overlap a or b")
    product = alpha * (opa @ opb) if alpha != 1 else opa @ opb
    if beta == 0:
        out[...] = product
    else:
        out *= beta
        out += product
    return out


def bias_add(x, b, out=None):
    """out := x + b, for x (n, m) and b (m,)."""
    x = _float_array("x", x)
    b = _float_array("b", b, x.dtype)
    if x.ndim != 2 or b.ndim != 1 or b.shape[0] != x.shape[1]:
        raise ValueError(f"bias_add needs x (n, m) and b (m,), got {x.shape} and {b.shape}")
    out = _out(out, x.shape, x.dtype)
    np.add(x, b, out=out)
    return out


def bias_grad(dy, out=None):
    """out := dy.sum(axis=0), for dy (n, m)."""
    dy = _float_array("dy", dy)
    if dy.ndim != 2:
        raise ValueError(f"bias_grad needs a 2-D dy, got shape {dy.shape}")
    out = _out(out, (dy.shape[1],), dy.dtype)
    np.sum(dy, axis=0, out=out)
    return out


# --------------------------------------------------------------------------- activations


def relu_forward(x, out=None):
    """y = max(x, 0), nan stays nan."""
    x, out = _unary(x, out)
    out[...] = np.where(x <= 0, 0, x)
    return out


def relu_backward(dy, y, out=None):
    """dx = dy * (y > 0)."""
    dy, y, out = _binary(dy, y, "y", out)
    out[...] = np.where(y <= 0, 0, dy)
    return out


def leaky_relu_forward(x, alpha=0.01, out=None):
    """y = x if x > 0 else alpha * x."""
    x, out = _unary(x, out)
    out[...] = np.where(x > 0, x, x * x.dtype.type(alpha))
    return out


def leaky_relu_backward(dy, x, alpha=0.01, out=None):
    """dx = dy * (1 if x > 0 else alpha)."""
    dy, x, out = _binary(dy, x, "x", out)
    out[...] = np.where(x > 0, dy, dy * dy.dtype.type(alpha))
    return out


def elu_forward(x, alpha=1.0, out=None):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    x, out = _unary(x, out)
    out[...] = np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))
    return out


def elu_backward(dy, y, alpha=1.0, out=None):
    """dx = dy * (1 if y > 0 else y + alpha)."""
    dy, y, out = _binary(dy, y, "y", out)
    out[...] = np.where(y > 0, dy, dy * (y + y.dtype.type(alpha)))
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow on either side.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_forward(x, out=None):
    """y = 1 / (1 + exp(-x))."""
    x, out = _unary(x, out)
    out[...] = _sigmoid(x)
    return out


def sigmoid_backward(dy, y, out=None):
    """dx = dy * y * (1 - y)."""
    dy, y, out = _binary(dy, y, "y", out)
    out[...] = dy * y * (1 - y)
    return out


def sigmoid_backward_from_x(dy, x, out=None):
    """dx = dy * s * (1 - s), s = sigmoid(x), computed as e / (1 + e)^2 with e = exp(-|x|)."""
    dy, x, out = _binary(dy, x, "x", out)
    # No cancellation on the tails (1 - s rounds to 0 there, e does not).
    e = np.exp(-np.abs(x))
    out[...] = dy * (e / ((1 + e) * (1 + e)))
    return out


def tanh_forward(x, out=None):
    """y = tanh(x)."""
    x, out = _unary(x, out)
    np.tanh(x, out=out)
    return out


def tanh_backward(dy, y, out=None):
    """dx = dy * (1 - y^2)."""
    dy, y, out = _binary(dy, y, "y", out)
    out[...] = dy * (1 - y * y)
    return out


def tanh_backward_from_x(dy, x, out=None):
    """dx = dy * (1 - tanh(x)^2), computed as 4e / (1 + e)^2 with e = exp(-2|x|)."""
    dy, x, out = _binary(dy, x, "x", out)
    e = np.exp(-2 * np.abs(x))
    out[...] = dy * (4 * e / ((1 + e) * (1 + e)))
    return out


def softplus_forward(x, out=None):
    """y = log(1 + exp(x)), stable for large |x|."""
    x, out = _unary(x, out)
    out[...] = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return out


def softplus_backward(dy, x, out=None):
    """dx = dy * sigmoid(x)."""
    dy, x, out = _binary(dy, x, "x", out)
    out[...] = dy * _sigmoid(x)
    return out


_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def gelu_forward(x, out=None):
    """y = x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2))."""
    x, out = _unary(x, out)
    # erfc(-t), not 1 + erf(t): no cancellation for negative x. At -inf the limit is -0.
    with np.errstate(invalid="ignore"):
        y = 0.5 * x * erfc(-x * _SQRT1_2)
    out[...] = np.where(x == -np.inf, -0.0, y)
    return out


def gelu_backward(dy, x, out=None):
    """dx = dy * (Phi(x) + x * phi(x))."""
    dy, x, out = _binary(dy, x, "x", out)
    xd = x.astype(np.float64)
    cdf = 0.5 * erfc(-xd * _SQRT1_2)
    with np.errstate(invalid="ignore"):
        pdf = np.where(np.isinf(xd), 0.0, _INV_SQRT_2PI * np.exp(-0.5 * xd * xd) * xd)
    # The derivative in x's dtype, as the kernel has it: in float32 it is -0 below x = -15,
    # so an infinite dy gives NaN there, not the -inf of a float64 derivative.
    with np.errstate(invalid="ignore"):
        out[...] = dy * (cdf + pdf).astype(x.dtype)
    return out


def silu_forward(x, out=None):
    """y = x * sigmoid(x) (-0 at -inf, the limit)."""
    x, out = _unary(x, out)
    with np.errstate(invalid="ignore"):
        y = x * _sigmoid(x)
    out[...] = np.where(x == -np.inf, -0.0, y)
    return out


def silu_backward(dy, x, out=None):
    """dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x)."""
    dy, x, out = _binary(dy, x, "x", out)
    s = _sigmoid(x)
    with np.errstate(invalid="ignore"):
        d = s * (1 + x * (1 - s))
    # The limits: 1 at +inf, 0 at -inf (inf * 0 above).
    out[...] = dy * np.where(x == np.inf, 1.0, np.where(x == -np.inf, 0.0, d)).astype(x.dtype)
    return out


def step_forward(x, out=None):
    """y = 1 if x >= 0 else 0 (the perceptron's binary step; nan stays nan)."""
    x, out = _unary(x, out)
    out[...] = np.where(np.isnan(x), x, (x >= 0).astype(x.dtype))
    return out


def step_backward(dy, x, out=None):
    """dx = 0: the step is flat wherever it is differentiable."""
    dy, x, out = _binary(dy, x, "x", out)
    out[...] = 0
    return out


# Keras' scale and scale * alpha (alpha = 1.6732632423543772848170429916717), as vmath.h
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_SCALE_ALPHA = 1.7580993408473768599402175208123


def selu_forward(x, out=None):
    """y = scale * (x if x > 0 else alpha * (exp(x) - 1))."""
    x, out = _unary(x, out)
    t = x.dtype.type
    out[...] = np.where(x > 0, t(_SELU_SCALE) * x,
                        t(_SELU_SCALE_ALPHA) * np.expm1(np.minimum(x, 0)))
    return out


def selu_backward(dy, y, out=None):
    """dx = dy * (scale if y > 0 else y + scale * alpha)."""
    dy, y, out = _binary(dy, y, "y", out)
    t = y.dtype.type
    out[...] = np.where(y > 0, dy * t(_SELU_SCALE), dy * (y + t(_SELU_SCALE_ALPHA)))
    return out


def mish_forward(x, out=None):
    """y = x * tanh(softplus(x)) (-0 at -inf, the limit)."""
    x, out = _unary(x, out)
    with np.errstate(invalid="ignore"):
        y = x * np.tanh(np.logaddexp(x, x.dtype.type(0)))
    out[...] = np.where(x == -np.inf, -0.0, y)
    return out


def mish_backward(dy, x, out=None):
    """dx = dy * (t + x * sigmoid(x) * (1 - t^2)), t = tanh(softplus(x))."""
    dy, x, out = _binary(dy, x, "x", out)
    t = np.tanh(np.logaddexp(x, x.dtype.type(0)))
    with np.errstate(invalid="ignore"):
        d = t + x * _sigmoid(x) * (1 - t * t)
    # The limits: 1 at +inf, 0 at -inf (inf * 0 above).
    out[...] = dy * np.where(x == np.inf, 1.0, np.where(x == -np.inf, 0.0, d)).astype(x.dtype)
    return out


def softmax_forward(x, axis=-1, out=None):
    """y = exp(x - max) / sum(exp(x - max)) along axis."""
    x, out = _unary(x, out)
    axis = _axis(x, axis)
    if x.size == 0:
        return out
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    out[...] = e / np.sum(e, axis=axis, keepdims=True)
    return out


def softmax_backward(dy, y, axis=-1, out=None):
    """dx = y * (dy - sum(dy * y, axis))."""
    dy, y, out = _binary(dy, y, "y", out)
    axis = _axis(dy, axis)
    out[...] = y * (dy - np.sum(dy * y, axis=axis, keepdims=True))
    return out


def log_softmax_forward(x, axis=-1, out=None):
    """y = x - max - log(sum(exp(x - max))) along axis."""
    x, out = _unary(x, out)
    axis = _axis(x, axis)
    if x.size == 0:
        return out
    shifted = x - np.max(x, axis=axis, keepdims=True)
    out[...] = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out


def log_softmax_backward(dy, y, axis=-1, out=None):
    """dx = dy - exp(y) * sum(dy, axis)."""
    dy, y, out = _binary(dy, y, "y", out)
    axis = _axis(dy, axis)
    out[...] = dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True)
    return out


# --------------------------------------------------------------------------- losses


def _logits_2d(logits, name="logits"):
    logits = _float_array(name, logits)
    if logits.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, classes), got shape {logits.shape}")
    return logits


def _labels(labels, n: int, c: int) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError(
            "labels must be an integer numpy array, got "
            + (str(labels.dtype) if isinstance(labels, np.ndarray) else type(labels).__name__)
        )
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}, expected ({n},)")
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"label {labels[i]} at index {i} is out of range [0, {c})")
    return labels.astype(np.intp, copy=False)


def softmax_cross_entropy_forward(logits, target, probs_out=None):
    """Per-sample -sum(target * log_softmax(logits)) and the softmax probabilities."""
    logits = _logits_2d(logits)
    target = _float_array("target", target, logits.dtype)
    _same_shape("target", target, "logits", logits)
    probs = _out(probs_out, logits.shape, logits.dtype)
    n, c = logits.shape
    if c == 0:
        probs[...] = 0
        return np.zeros(n, logits.dtype), probs
    logp = log_softmax_forward(logits, axis=1)
    np.exp(logp, out=probs)
    # 0 * log p is 0 even where p underflowed to 0 (log p = -inf).
    loss = -np.sum(np.where(target == 0, 0, target * logp), axis=1)
    return loss.astype(logits.dtype, copy=False), probs


def softmax_cross_entropy_backward(dloss, probs, target, out=None):
    """dlogits = dloss[:, None] * (probs * sum(target) - target)."""
    probs = _logits_2d(probs, "probs")
    target = _float_array("target", target, probs.dtype)
    _same_shape("target", target, "probs", probs)
    dloss = _float_array("dloss", dloss, probs.dtype)
    if dloss.shape != (probs.shape[0],):
        raise ValueError(f"dloss has shape {dloss.shape}, expected ({probs.shape[0]},)")
    out = _out(out, probs.shape, probs.dtype)
    out[...] = dloss[:, None] * (probs * target.sum(axis=1, keepdims=True) - target)
    return out


def sparse_softmax_cross_entropy_forward(logits, labels, probs_out=None):
    """Per-sample -log_softmax(logits)[i, labels[i]] and the softmax probabilities."""
    logits = _logits_2d(logits)
    n, c = logits.shape
    labels = _labels(labels, n, c)
    probs = _out(probs_out, logits.shape, logits.dtype)
    if n == 0:
        return np.zeros(0, logits.dtype), probs
    logp = log_softmax_forward(logits, axis=1)
    np.exp(logp, out=probs)
    loss = -logp[np.arange(n), labels]
    return loss.astype(logits.dtype, copy=False), probs


def sparse_softmax_cross_entropy_backward(dloss, probs, labels, out=None):
    """dlogits = dloss[:, None] * (probs - onehot(labels))."""
    probs = _logits_2d(probs, "probs")
    n, c = probs.shape
    labels = _labels(labels, n, c)
    dloss = _float_array("dloss", dloss, probs.dtype)
    if dloss.shape != (n,):
        raise ValueError(f"dloss has shape {dloss.shape}, expected ({n},)")
    out = _out(out, probs.shape, probs.dtype)
    out[...] = probs
    out[np.arange(n), labels] -= 1
    out *= dloss[:, None]
    return out


def sigmoid_binary_cross_entropy_forward(logits, target, out=None):
    """Elementwise max(z, 0) - z * t + log1p(exp(-|z|))."""
    z = _float_array("logits", logits)
    t = _float_array("target", target, z.dtype)
    _same_shape("target", t, "logits", z)
    out = _out(out, z.shape, z.dtype)
    out[...] = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return out


def sigmoid_binary_cross_entropy_backward(dloss, logits, target, out=None):
    """dlogits = dloss * (sigmoid(z) - t)."""
    z = _float_array("logits", logits)
    t = _float_array("target", target, z.dtype)
    _same_shape("target", t, "logits", z)
    dloss = _float_array("dloss", dloss, z.dtype)
    _same_shape("dloss", dloss, "logits", z)
    out = _out(out, z.shape, z.dtype)
    out[...] = dloss * (_sigmoid(z) - t)
    return out


def mse_forward(pred, target):
    """mean((pred - target)^2) as a Python float (0.0 when empty)."""
    pred = _float_array("pred", pred)
    target = _float_array("target", target, pred.dtype)
    _same_shape("target", target, "pred", pred)
    if pred.size == 0:
        return 0.0
    d = pred - target
    return float(np.mean(d * d))


def mse_backward(dloss, pred, target, out=None):
    """dpred = dloss * 2 * (pred - target) / size."""
    pred = _float_array("pred", pred)
    target = _float_array("target", target, pred.dtype)
    _same_shape("target", target, "pred", pred)
    out = _out(out, pred.shape, pred.dtype)
    scale = 2.0 * float(dloss)
    if pred.size:
        out[...] = (pred - target) * pred.dtype.type(scale / pred.size)
    return out


# --------------------------------------------------------------------------- elementwise
# numpy's own operations: the kernels give their bits.


def _operands(a, b, out):
    _check_float("a", a)
    _check_float("b", b, a.dtype)
    _same_shape("b", b, "a", a)
    return _out(out, a.shape, a.dtype)


def add(a, b, out=None):
    """out := a + b, elementwise (one dtype, one shape: no broadcasting)."""
    return np.add(a, b, out=_operands(a, b, out))


def subtract(a, b, out=None):
    """out := a - b, elementwise (one dtype, one shape: no broadcasting)."""
    return np.subtract(a, b, out=_operands(a, b, out))


def multiply(a, b, out=None):
    """out := a * b, elementwise (one dtype, one shape: no broadcasting)."""
    return np.multiply(a, b, out=_operands(a, b, out))


def negative(a, out=None):
    """out := -a, elementwise."""
    _check_float("a", a)
    return np.negative(a, out=_out(out, a.shape, a.dtype))


def sum_all(a):
    """The sum of every element as a 0-d array of a's dtype (np.add.reduce's bits)."""
    _check_float("a", a)
    return np.add.reduce(a, axis=None, out=np.empty((), a.dtype))


# --------------------------------------------------------------------------- optim
# In-place updates (Keras 3 formulas). Each computes in the parameter's dtype, with the
# scalar coefficients computed in Python floats and cast once, as the Cython loops do.


def _writable(name: str, a: np.ndarray) -> None:
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous: it is updated in place")
    if not a.flags.aligned:
        raise ValueError(f"{name} must be aligned: it is updated in place")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only: it is updated in place")


def _param(param) -> np.ndarray:
    if not isinstance(param, np.ndarray):
        raise TypeError(f"param must be a numpy array, got {type(param).__name__}")
    if param.dtype not in _FLOATS:
        raise TypeError(f"param must be float32 or float64, got {param.dtype}")
    _writable("param", param)
    return param


def _state(name: str, a, param: np.ndarray) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if a.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {param.dtype} like the other inputs")
    _same_shape(name, a, "param", param)
    _writable(name, a)
    if a.size and np.may_share_memory(a, param):
        raise ValueError(f"{name} overlaps param: each state array needs its own memory")
    return a


def _distinct(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.size and np.may_share_memory(a, b):
        raise ValueError(f"{name_a} overlaps {name_b}: each state array needs its own memory")


def _clipped_grad(grad, param: np.ndarray, grad_scale, clipvalue) -> np.ndarray:
    """g = clip(grad * grad_scale, -clipvalue, clipvalue), a new array (nan stays nan)."""
    grad = _float_array("grad", grad, param.dtype)
    _same_shape("grad", grad, "param", param)
    t = param.dtype.type
    g = grad * t(grad_scale)
    if clipvalue != math.inf:
        g = np.clip(g, -t(clipvalue), t(clipvalue))
    return g


def _decay(param: np.ndarray, lr, weight_decay) -> None:
    """Decoupled weight decay, as Keras applies it before the update: p -= p * wd * lr."""
    if weight_decay != 0:
        param -= param * param.dtype.type(weight_decay * lr)


def sgd_update(param, grad, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=math.inf):
    """In place: g = clip(grad * grad_scale, +-clipvalue); param -= param * weight_decay * lr;
    param -= lr * g."""
    param = _param(param)
    g = _clipped_grad(grad, param, grad_scale, clipvalue)
    _decay(param, lr, weight_decay)
    param -= param.dtype.type(lr) * g


def sgd_momentum_update(param, grad, velocity, lr, momentum, nesterov=False, weight_decay=0.0,
                        grad_scale=1.0, clipvalue=math.inf):
    """In place: velocity = momentum * velocity - lr * g; param += velocity, or with nesterov
    param += momentum * velocity - lr * g (g clipped and weight decay first, as sgd_update)."""
    param = _param(param)
    velocity = _state("velocity", velocity, param)
    g = _clipped_grad(grad, param, grad_scale, clipvalue)
    t = param.dtype.type
    _decay(param, lr, weight_decay)
    velocity[...] = t(momentum) * velocity - t(lr) * g
    if nesterov:
        param += t(momentum) * velocity - t(lr) * g
    else:
        param += velocity


def adam_update(param, grad, m, v, lr, beta_1, beta_2, epsilon, step, vhat=None,
                weight_decay=0.0, grad_scale=1.0, clipvalue=math.inf):
    """In place, step t >= 1: m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    with vhat (amsgrad) vhat = max(vhat, v) is used for v;
    param -= alpha * m / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    if step < 1:
        raise ValueError(f"step must be >= 1 (the 1-based count of updates), got {step}")
    param = _param(param)
    m = _state("m", m, param)
    v = _state("v", v, param)
    _distinct("m", m, "v", v)
    if vhat is not None:
        vhat = _state("vhat", vhat, param)
        _distinct("vhat", vhat, "m", m)
        _distinct("vhat", vhat, "v", v)
    g = _clipped_grad(grad, param, grad_scale, clipvalue)
    t = param.dtype.type
    # the bias correction, as loops.pxd's _adam_alpha computes it for the kernels
    alpha = lr * math.sqrt(1 - beta_2 ** float(step)) / (1 - beta_1 ** float(step))
    _decay(param, lr, weight_decay)
    m += (g - m) * t(1 - beta_1)
    v += (g * g - v) * t(1 - beta_2)
    if vhat is not None:
        np.maximum(vhat, v, out=vhat)
        v = vhat
    param -= (m * t(alpha)) / (np.sqrt(v) + t(epsilon))


def rmsprop_update(param, grad, velocity, lr, rho, epsilon, momentum_buf=None, momentum=0.0,
                   average_grad=None, weight_decay=0.0, grad_scale=1.0, clipvalue=math.inf):
    """In place: velocity = rho velocity + (1 - rho) g^2; centered (average_grad given):
    average_grad = rho average_grad + (1 - rho) g, denom = velocity - average_grad^2 + epsilon,
    else denom = velocity + epsilon; inc = lr g / sqrt(denom); with momentum_buf:
    momentum_buf = momentum momentum_buf + inc, param -= momentum_buf; else param -= inc."""
    param = _param(param)
    velocity = _state("velocity", velocity, param)
    if momentum_buf is not None:
        momentum_buf = _state("momentum_buf", momentum_buf, param)
        _distinct("momentum_buf", momentum_buf, "velocity", velocity)
    elif momentum != 0:
        raise ValueError(f"momentum={momentum} needs a momentum_buf array")
    if average_grad is not None:
        average_grad = _state("average_grad", average_grad, param)
        _distinct("average_grad", average_grad, "velocity", velocity)
        if momentum_buf is not None:
            _distinct("average_grad", average_grad, "momentum_buf", momentum_buf)
    g = _clipped_grad(grad, param, grad_scale, clipvalue)
    t = param.dtype.type
    _decay(param, lr, weight_decay)
    velocity[...] = t(rho) * velocity + t(1 - rho) * (g * g)
    if average_grad is not None:
        average_grad[...] = t(rho) * average_grad + t(1 - rho) * g
        denom = (velocity - average_grad * average_grad) + t(epsilon)
    else:
        denom = velocity + t(epsilon)
    increment = (t(lr) * g) / np.sqrt(denom)
    if momentum_buf is not None:
        momentum_buf[...] = t(momentum) * momentum_buf + increment
        increment = momentum_buf
    param -= increment


def adagrad_update(param, grad, accumulator, lr, epsilon, weight_decay=0.0, grad_scale=1.0,
                   clipvalue=math.inf):
    """In place: accumulator += g^2; param -= lr g / sqrt(accumulator + epsilon)."""
    param = _param(param)
    accumulator = _state("accumulator", accumulator, param)
    g = _clipped_grad(grad, param, grad_scale, clipvalue)
    t = param.dtype.type
    _decay(param, lr, weight_decay)
    accumulator += g * g
    param -= (t(lr) * g) / np.sqrt(accumulator + t(epsilon))


def sum_squares(a):
    """sum(a^2) as a Python float, accumulated in double (for clipnorm and global_clipnorm)."""
    a = _float_array("a", a).astype(np.float64, copy=False).ravel()
    return float(np.dot(a, a))


KERNEL_NAMES = tuple(
    sorted(
        name
        for name, value in dict(globals()).items()
        if isinstance(value, FunctionType) and not name.startswith("_")
        and value.__module__ == __name__
    )
)
