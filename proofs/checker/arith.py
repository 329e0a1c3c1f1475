"""Rigorous float64 arithmetic and exact dyadic arithmetic.

Rigorous bounds. numpy's ``A @ B`` may sum in any order, with or without fused multiply-add.
For an inner dimension ``n``, every order has (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., eq. (3.5)) ``|fl(A @ B) - A @ B| <= gamma_n * (|A| @ |B|) + n * eta``
elementwise, with ``u = 2**-53``, ``gamma_n = n u / (1 - n u)``, ``eta = 2**-1074`` (underflow).
The computed value ``S`` of ``|A| @ |B|`` has ``|A| @ |B| <= (S + n eta) / (1 - gamma_n)``, so
``E = 2 gamma_n S + 3 n eta`` (times a safety factor: :func:`lower_from`) bounds the error when
``gamma_n <= 1/2``; ``fl(P - E)`` moved at least one step towards -inf (:func:`down`, which
also covers the subtraction's rounding) is a lower bound of the exact product. NaN or Inf
(overflow: callers silence numpy's warnings) makes a bound useless: "not proved".

Exact arithmetic. A finite float64 is ``m * 2**e`` with integer ``m``; a vector is stored as
Python integers over one common exponent (:func:`to_dyadic`): products, sums are exact.
"""

from __future__ import annotations

import functools
import math

import numpy as np

U = 2.0**-53
ETA = 2.0**-1074


@functools.cache
def gamma(n: int) -> float:
    """An upper bound of ``n u / (1 - n u)``; raises ValueError when n u >= 1/4."""
    if n * U >= 0.25:
        raise ValueError(f"inner dimension {n} too large for the error bound")
    return math.nextafter(math.nextafter(n * U / (1.0 - n * U), math.inf), math.inf)


def dot(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A @ x`` for (stacks of) matrices and vectors: each entry is one dot product over A's
    last axis, so the module's bound applies (no 2-D product: BLAS threads are slow when busy)."""
    return A @ x if x.ndim == 1 else (A @ x[..., None])[..., 0]


def lower_from(P: np.ndarray, S: np.ndarray, n: int) -> np.ndarray:
    """A rigorous lower bound of an exact ``A @ x`` (inner dimension ``n``) from the float
    values ``P`` of it and ``S`` of ``|A| @ |x|`` (``S = |P|`` when all terms have one sign)."""
    return down(P - (S * (2.0 * gamma(n) * (1.0 + 2.0**-20)) + 3.0 * n * ETA))


def down(x: np.ndarray) -> np.ndarray:
    """A float at or below ``nextafter(x, -inf)``, so below the exact value x was rounded from.

    Soundness: the neighbours of a finite x lie within ``max(2**-52 |x|, eta)`` of it, and
    ``d = fl(2**-52 |x| + eta)`` is at least that, so ``x - d <= nextafter(x, -inf)`` and
    (rounding is monotone) so is its float value. Infinite x gives NaN or -inf."""
    return x - (np.abs(x) * 2.0**-52 + ETA)


def up(x: np.ndarray) -> np.ndarray:
    """A float at or above ``nextafter(x, inf)`` (the mirror image of :func:`down`)."""
    return x + (np.abs(x) * 2.0**-52 + ETA)


def matvec_lower(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A rigorous lower bound of the exact ``A @ x``."""
    return lower_from(dot(A, x), dot(np.abs(A), np.abs(x)), A.shape[-1])


def matvec_upper(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A rigorous upper bound of the exact ``A @ x`` (exact negation of a lower bound)."""
    return -matvec_lower(-A, x)


def interval_layer(kind: str, const, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous interval image of one non-ReLU layer, ``const`` its ``b`` (add, scale) or
    ``[W+, W-, b]`` (affine: the exact bounds ``W+ l + W- u + b`` and ``W+ u + W- l + b``
    are each one product ``[W+, W-, b] @ [l, u, 1]`` whose rounding matvec bounds)."""
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


def to_dyadic(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact ``(ints, e)`` with ``array == ints * 2**e`` (ints a Python-int object array)."""
    mant, expo = np.frexp(np.asarray(array, dtype=np.float64))
    ints = (mant * 2.0**53).astype(np.int64)  # exact: 53-bit mantissas
    expo = expo.astype(np.int64) - 53
    e = int(expo[ints != 0].min()) if ints.any() else 0
    return ints.astype(object) << np.where(ints != 0, expo - e, 0).astype(object), e
