"""Rigorous float64 arithmetic and exact dyadic arithmetic.

Rigorous bounds. numpy's ``A @ B`` may sum in any order, with or without fused
multiply-add. For an inner dimension ``n`` the classical a-priori bound (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. (3.5)) holds for every
order::

    |fl(A @ B) - A @ B| <= gamma_n * (|A| @ |B|) + n * eta       (elementwise)

with ``u = 2**-53``, ``gamma_n = n u / (1 - n u)`` and ``eta = 2**-1074`` covering
underflow. ``|A| @ |B|`` is itself computed in floats; its computed value ``S`` satisfies
``|A| @ |B| <= (S + n eta) / (1 - gamma_n)``, so ``E = 2 gamma_n S + 3 n eta`` (computed
with a safety factor, see :func:`lower_from`) bounds the error whenever
``gamma_n <= 1/2``. A lower bound of an exact product is then ``fl(P - E)`` moved one step
towards -inf (:func:`down`), which also covers the rounding of the subtraction.
Any NaN or Inf makes the bound useless; callers treat it as "not proved".

Exact arithmetic. Every finite float64 is ``m * 2**e`` with integer ``m``; a vector is
stored as Python integers over one common exponent (:func:`to_dyadic`), so products and
sums are exact.
"""

from __future__ import annotations

import math

import numpy as np

U = 2.0**-53
ETA = 2.0**-1074


def gamma(n: int) -> float:
    """An upper bound of ``n u / (1 - n u)``; raises ValueError when n u >= 1/4."""
    if n * U >= 0.25:
        raise ValueError(f"inner dimension {n} too large for the error bound")
    return math.nextafter(math.nextafter(n * U / (1.0 - n * U), math.inf), math.inf)


def dot(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A @ x`` for a matrix or a stack of matrices and a vector or a stack of vectors.

    Every entry is one dot product over the last axis of ``A``, whatever the stacking, so
    the error bound of the module docstring applies entrywise.
    """
    if x.ndim == 1:
        return A @ x
    # stacked matrix-vector products (a large 2-D product would start BLAS threads, very
    # slow on a busy machine)
    return (A @ x[..., None])[..., 0]


def lower_from(P: np.ndarray, S: np.ndarray, n: int) -> np.ndarray:
    """A rigorous lower bound of an exact ``A @ x`` (inner dimension ``n``) from the float
    values ``P`` of it and ``S`` of ``|A| @ |x|`` (``S = |P|`` when all terms have one sign)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return down(P - (S * (2.0 * gamma(n) * (1.0 + 2.0**-20)) + 3.0 * n * ETA))


def down(x: np.ndarray) -> np.ndarray:
    """One float step towards -inf (covers one rounding of the operation producing x)."""
    return np.nextafter(x, -np.inf)


def up(x: np.ndarray) -> np.ndarray:
    """One float step towards +inf."""
    return np.nextafter(x, np.inf)


def matvec_lower(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A rigorous lower bound of the exact ``A @ x``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return lower_from(dot(A, x), dot(np.abs(A), np.abs(x)), A.shape[-1])


def matvec_upper(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A rigorous upper bound of the exact ``A @ x`` (exact negation of a lower bound)."""
    return -matvec_lower(-A, x)


def interval_layer(kind: str, const, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous interval image of one non-ReLU layer, ``const`` its ``b`` (add, scale) or
    ``[W+, W-, b]`` (affine: the exact bounds ``W+ l + W- u + b`` and ``W+ u + W- l + b``
    are each one product ``[W+, W-, b] @ [l, u, 1]`` whose rounding matvec bounds)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "affine":
            one = np.ones(lower.shape[:-1] + (1,))
            lo = matvec_lower(const, np.concatenate([lower, upper, one], axis=-1))
            return lo, matvec_upper(const, np.concatenate([upper, lower, one], axis=-1))
        if kind == "add":
            return down(lower + const), up(upper + const)
        a, c = lower * const, upper * const  # scale: exact products, rounded
        return down(np.minimum(a, c)), up(np.maximum(a, c))


def finite(*arrays: np.ndarray) -> bool:
    """Whether every entry is a finite number."""
    return all(bool(np.isfinite(a).all()) for a in arrays)


# ---------------------------------------------------------------------------- exact


def to_dyadic(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact ``(ints, e)`` with ``array == ints * 2**e`` (ints a Python-int object array)."""
    a = np.asarray(array, dtype=np.float64)
    mant, expo = np.frexp(a)
    ints = (mant * 2.0**53).astype(np.int64)
    expo = expo.astype(np.int64) - 53
    nonzero = ints != 0
    e = int(expo[nonzero].min()) if nonzero.any() else 0
    out = np.empty(a.shape, dtype=object)
    flat_out, flat_i, flat_e = out.reshape(-1), ints.reshape(-1), expo.reshape(-1)
    for k in range(flat_i.size):
        m = int(flat_i[k])
        flat_out[k] = m << int(flat_e[k] - e) if m else 0
    return out, e


def dyadic_add(a: tuple[np.ndarray, int], b: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Exact sum of two dyadic arrays."""
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return ia * (1 << (ea - e)) + ib * (1 << (eb - e)), e


def exact_forward(layers: list, x: np.ndarray) -> tuple[np.ndarray, int]:
    """The network's exact real-arithmetic output at the float input ``x`` (dyadic)."""
    v = to_dyadic(np.asarray(x, dtype=np.float64).reshape(-1))
    for layer in layers:
        if layer.kind == "relu":
            v = (np.array([i if i > 0 else 0 for i in v[0]], dtype=object), v[1])
            continue
        if layer._exact is None:
            W = to_dyadic(layer.W) if layer.kind == "affine" else None
            layer._exact = (W, to_dyadic(layer.b))
        W, b = layer._exact
        if layer.kind == "affine":
            v = dyadic_add((W[0].dot(v[0]), W[1] + v[1]), b)
        elif layer.kind == "add":
            v = dyadic_add(v, b)
        else:
            v = (v[0] * b[0], v[1] + b[1])
    return v
