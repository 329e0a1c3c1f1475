"""Rigorous floating-point error bounds for float64 torch computations.

Torch has no directed rounding, so the domains compute in round-to-nearest and then widen
by a bound on the rounding error that is rigorous under the following facts and
assumptions, all about IEEE-754 binary64 with round-to-nearest-even:

* ``+ - * /`` and ``sqrt`` are correctly rounded, so the computed ``fl(x op y)`` is the
  float nearest the exact result. Hence ``nextafter(fl(r), -inf) <= r <= nextafter(fl(r),
  +inf)`` for the exact result ``r`` (the exact value lies between the rounded value and
  its neighbour on the other side). :func:`down` and :func:`up` apply this.
* A sum of ``n`` products computed in *any* order, with or without fused multiply-add
  (BLAS ``dgemm``, ``conv2d`` lowered to ``im2col`` + ``gemm`` or to direct loops) obeys
  ``|fl(sum a_i b_i) - sum a_i b_i| <= gamma_n * sum |a_i||b_i|`` with
  ``gamma_n = n u / (1 - n u)``, ``u = 2^-53`` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., 2002, section 3.1 and eq. 3.5), up to underflow, which
  we cover by an absolute term of :data:`TINY` per operation (:data:`TINY` ``= 2^-1000``
  exceeds the absolute error of one operation even with flush-to-zero, ``2^-1022``).
  This excludes fast convolution algorithms (Winograd, FFT): torch does not use them for
  float64 on CPU, and the domains disable cuDNN around float64 convolutions on GPU.
* ASSUMPTION about the math library (libm / SLEEF / CUDA): ``exp``, ``log``, ``tanh``,
  ``sigmoid``, ``cosh`` of torch are accurate to within :data:`LIBM_ULPS` units in the
  last place of the exact result (glibc documents at most a few ulp for these functions
  in double precision; CUDA documents at most 2 ulp for ``exp``/``log``/``tanh``). This is
  an assumption, not a theorem. Since one ulp of ``x`` is at most ``2 u |x|``, 8 ulp are at
  most :data:`LIBM_REL` ``= 16 u`` relative; :func:`widen_libm` widens by twice that
  (``32 u |value|``, a margin for values near a power of two) plus :data:`TINY`, and is
  only as sound as that assumption.

Every helper returns bounds that may be infinite or NaN when the inputs are; callers
treat any non-finite bound as "nothing proved". Outward rounding never turns an infinite
bound into a *wrong* finite one (``up(-inf)`` is the most negative float, which is still
an upper bound of ``-inf``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from prover.tensors import constant

#: Unit roundoff of binary64 (round to nearest).
U = 2.0**-53
#: Absolute error allowance per operation for underflow (covers flush-to-zero as well).
TINY = 2.0**-1000
#: Assumed worst accuracy of torch's transcendental functions, in ulp (an assumption).
LIBM_ULPS = 8
#: Relative widening for transcendental functions: 8 ulp <= 8 * 2u relative to |value|.
LIBM_REL = 2 * LIBM_ULPS * U


@functools.lru_cache(maxsize=4096)
def gamma(n: int) -> float:
    """Return an upper bound of Higham's ``gamma_n = n u / (1 - n u)`` as a Python float.

    Raises:
        ValueError: when ``n u >= 1/2`` (no useful bound; never happens for real networks).
    """
    nu = max(n, 1) * U  # exact: an integer times a power of two
    if nu >= 0.5:
        raise ValueError(f"gamma({n}) is not defined in binary64")
    value = nu / (1.0 - nu)
    return math.nextafter(math.nextafter(value, math.inf), math.inf)


_INFINITIES: dict[tuple[torch.dtype, torch.device, float], torch.Tensor] = {}


def _like(t: torch.Tensor, value: float) -> torch.Tensor:
    key = (t.dtype, t.device, value)
    hit = _INFINITIES.get(key)
    if hit is None:
        hit = _INFINITIES[key] = torch.full((), value, dtype=t.dtype, device=t.device)
    return hit


def up(t: torch.Tensor) -> torch.Tensor:
    """The next float above ``t``: an upper bound of the exact result ``fl`` rounded."""
    return torch.nextafter(t, _like(t, math.inf))


def down(t: torch.Tensor) -> torch.Tensor:
    """The next float below ``t``: a lower bound of the exact result ``fl`` rounded."""
    return torch.nextafter(t, _like(t, -math.inf))


def dot_error(abs_dot: torch.Tensor, n: int) -> torch.Tensor:
    """Bound the rounding error of dot products of length ``n``.

    Args:
        abs_dot: the *computed* (rounded, any order) value of ``sum_i |a_i| |b_i|`` for
            each dot product, non-negative.
        n: the number of terms (count a bias as one more term).

    Returns:
        ``e >= |fl(sum a_i b_i) - sum a_i b_i|`` elementwise. The exact ``sum |a_i||b_i|``
        is at most ``abs_dot / (1 - gamma_n)``, so ``e = gamma_n / (1 - gamma_n) * abs_dot
        + n TINY``; we use ``gamma_{2n+4} >= gamma_n / (1 - gamma_n)`` and round both
        operations up with :func:`up`.

    Soundness: Higham (2002), eq. 3.5, for any summation order, plus underflow.
    """
    return up(up(abs_dot * gamma(2 * n + 4)) + n * TINY)


def sum_error(abs_sum: torch.Tensor, n: int) -> torch.Tensor:
    """Bound the rounding error of sums of ``n`` terms, given the computed sum of |terms|."""
    return dot_error(abs_sum, n)


def upper_sum(nonneg: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """An upper bound of the exact sum of non-negative entries over ``dim``.

    Soundness: the computed sum ``s`` satisfies ``|s - S| <= gamma_{n-1} S``, so
    ``S <= s / (1 - gamma_n) <= s (1 + gamma_{2n+4})``; the product is rounded up.
    """
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    n = math.prod(nonneg.shape[d] for d in dims) if dims else 1
    s = nonneg.sum(dim=dims)
    return up(s + dot_error(s, n))


def elementwise_error(magnitude: torch.Tensor, n_ops: int) -> torch.Tensor:
    """Error bound of ``n_ops`` chained correctly rounded operations.

    Args:
        magnitude: a computed bound of the sum of the absolute values of every operand and
            intermediate result involved (e.g. ``|a x| + |b|`` for ``a*x + b``).
        n_ops: number of rounded operations.

    Soundness: each operation errs by at most ``u`` times its result's magnitude, which is
    at most ``magnitude`` (up to the rounding of ``magnitude`` itself, covered by using
    ``gamma_{2 n + 4}``), plus :data:`TINY` each for underflow.
    """
    return dot_error(magnitude, n_ops)


def widen(
    lower: torch.Tensor, upper: torch.Tensor, err: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``[lower - err, upper + err]``, each rounded outward."""
    return down(lower - err), up(upper + err)


def widen_libm_down(value: torch.Tensor) -> torch.Tensor:
    """A lower bound of the exact ``f(x)`` from torch's computed ``f(x)``.

    ASSUMPTION: torch's ``f`` is within :data:`LIBM_ULPS` ulp of the exact value (see the
    module docstring); this widens by ``32 u |value| + TINY`` and rounds down.
    """
    return down(value - up(value.abs() * (2 * LIBM_REL) + TINY))


def widen_libm_up(value: torch.Tensor) -> torch.Tensor:
    """An upper bound of the exact ``f(x)`` from torch's computed ``f(x)`` (see above)."""
    return up(value + up(value.abs() * (2 * LIBM_REL) + TINY))


def widen_libm(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Widen computed values of a transcendental function (lower, upper) outward."""
    return widen_libm_down(lower), widen_libm_up(upper)


def center_radius(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(c, r)`` with ``[lower, upper]`` contained in ``[c - r, c + r]`` exactly.

    ``c`` is the computed midpoint (any value would do) and ``r = max(up(upper - c),
    up(c - lower))`` is an upper bound of the exact distances.
    """
    c = lower / 2 + upper / 2  # no overflow for finite bounds
    r = torch.maximum(up(upper - c), up(c - lower))
    return c, r


def mul_bounds(
    al: torch.Tensor, au: torch.Tensor, bl: torch.Tensor, bu: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval product ``[al, au] * [bl, bu]`` rounded outward (NaN for ``0 * inf``).

    Soundness: the product is bilinear, so its extremes over the box are at corners;
    each corner product is correctly rounded, so the next float outward bounds it.
    """
    p1, p2, p3, p4 = al * bl, al * bu, au * bl, au * bu
    lo = torch.minimum(torch.minimum(p1, p2), torch.minimum(p3, p4))
    hi = torch.maximum(torch.maximum(p1, p2), torch.maximum(p3, p4))
    return down(lo), up(hi)


# ------------------------------------------------------------------------ |W| cache


def abs_constant(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``|array|`` as a torch tensor like ``like``, cached per array (for error bounds)."""
    return constant(array, like, transform="abs")


def linear_lower_bound(C: torch.Tensor, center: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Sound lower bounds of ``C y`` over the boxes ``|y - center| <= radius``.

    Args:
        C: ``(m, n)`` or ``(B, m, n)``.
        center: ``(B, n)``.
        radius: ``(B, n)``, non-negative.

    Returns:
        ``(B, m)`` with ``out <= min_y C y`` over the reals: ``C c - |C| r`` minus the
        rounding error of both products (:func:`dot_error` on ``|C| (|c| + r)``).
    """
    Ca = C.abs()
    if C.dim() == 2:
        value = center @ C.T
        spread = radius @ Ca.T
        mag = up(center.abs() + radius) @ Ca.T
    else:
        value = torch.einsum("bmn,bn->bm", C, center)
        spread = torch.einsum("bmn,bn->bm", Ca, radius)
        mag = torch.einsum("bmn,bn->bm", Ca, up(center.abs() + radius))
    err = dot_error(mag, C.shape[-1] + 2)
    return down(value - up(spread + err))
