"""Rigorous floating-point error helpers of the linear domain (float64, round to nearest).

The linear domain computes in float64 with torch, which has no directed rounding. Every
bound it returns is made sound over the reals by widening with an *a-priori* error bound
(Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 3.1):

* one operation: ``fl(a op b) = (a op b)(1 + d)`` with ``|d| <= u = 2**-53``;
* a sum of ``n`` products, in any order, with or without FMA (Higham Lemma 3.1 and eq. 3.4):
  ``|fl(sum a_i b_i) - sum a_i b_i| <= gamma_n * sum |a_i b_i|``, ``gamma_n = n u / (1 - n u)``.

The domain uses one constant ``gamma = gamma_N`` per graph, with ``N`` larger than every
inner dimension of any sum it performs (see :func:`graph_gamma`), and applies the bounds
with a safety factor (:func:`inflate`) that also covers the rounding of the error
computations themselves (they are sums of non-negative terms, each within a factor
``1 + gamma_N`` of its exact value).

Assumption: matrix products and convolutions are computed as sums of products
(BLAS dgemm, im2col + dgemm, direct loops), never by Strassen, Winograd or FFT algorithms;
this holds for float64 on CPU and CUDA (TF32 does not apply to float64).
"""

from __future__ import annotations

import math

import torch

#: unit roundoff of float64
UNIT_ROUNDOFF = 2.0**-53


def gamma(n: int) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``, rounded up (valid while ``n u < 1/2``)."""
    nu = n * UNIT_ROUNDOFF
    if nu >= 0.5:
        raise ValueError(f"gamma_{n} is too large for float64 error analysis")
    return math.nextafter(nu / (1.0 - nu) * (1.0 + 4.0 * UNIT_ROUNDOFF), math.inf)


def graph_gamma(sizes: list[int], n_nodes: int) -> float:
    """The domain's error constant for a graph.

    ``N = 2 * max(value sizes) + 4 * n_nodes + 64`` bounds every inner dimension: a
    forward linear map sums at most ``numel(input) + 1`` terms (weights and bias), a
    backward step at most ``numel(output) + 1`` (plus a few single roundings), a
    concretisation ``2 numel(input) + 2``, and the running constant and error accumulators
    gain at most four roundings per node.
    """
    return gamma(2 * max(sizes, default=1) + 4 * n_nodes + 64)


#: :func:`down` / :func:`up` move ``x`` by ``(|x| + TINY) * 2**-52``, at least
#: ``ETA = TINY * 2**-52`` (a normal float): that covers underflow and keeps every widened
#: value, and every intermediate product, normal (see :func:`down`)
TINY = 2.0**-900
ETA = TINY * 2.0**-52


def inflate(err: torch.Tensor, g: float) -> torch.Tensor:
    """Return a float upper bound of the exact value of a computed non-negative error sum.

    Soundness: ``err`` was computed as a sum/product of at most N non-negative float terms,
    so ``exact <= fl * (1 + gamma_N) / (1 - gamma_N) <= fl * (1 + 3 gamma_N)`` for
    ``gamma_N < 1/4``; multiplying by ``1 + 4 gamma_N`` (itself rounded) and :func:`up`
    cover the last rounding too, and ``up`` adds :data:`ETA`, which covers underflow.
    """
    return up(err * (1.0 + 4.0 * g))


def down(x: torch.Tensor) -> torch.Tensor:
    """A float at or below the next float under ``x``: below the exact result of the
    operation that made ``x``, computed as ``x - (|x| + TINY) * 2**-52``.

    Soundness: for round-to-nearest, the exact result of one operation lies within half an
    ulp of its rounded value ``x``, so at or above ``pred(x)``, the float below ``x``. The
    subtracted ``d = fl(fl(|x| + TINY) * 2**-52)`` is at least ``x - pred(x)``: the sum
    rounds to at least ``|x|`` (round to nearest is monotone) and at least ``TINY``, so the
    product by a power of two is exact (no underflow) and at least ``2**-52 |x|``, which
    bounds the gap below a normal ``x``, and at least ``ETA > 2**-1074``, the gap below a
    subnormal one. So ``x - d <= pred(x)`` exactly, and since ``pred(x)`` is a float and
    rounding monotone, ``fl(x - d) <= pred(x)``. Infinities and NaN stay as they are.

    Underflow: a product may lose up to ``2**-1075`` absolutely, which the relative
    (Higham) bounds do not cover; a bound is computed with far fewer than ``2**70``
    operations, so their total is below ``ETA``, which every final bound subtracts at
    least once (through :func:`inflate` or ``down``). ``ETA`` also keeps results away from
    subnormal numbers, whose arithmetic is many times slower on CPUs (``down(0)`` is
    ``-ETA``, not ``-2**-1074``).

    Raises:
        TypeError: for a tensor that is not float64 (the argument above is about binary64:
            for float32 the step ``2**-52`` would be far below an ulp).
    """
    _float64(x)
    return torch.where(torch.isinf(x), x, x - (x.abs() + TINY) * 2.0**-52)


def up(x: torch.Tensor) -> torch.Tensor:
    """A float at or above the next float over ``x`` (see :func:`down`, float64 only)."""
    _float64(x)
    return torch.where(torch.isinf(x), x, x + (x.abs() + TINY) * 2.0**-52)


def _float64(x: torch.Tensor) -> None:
    if x.dtype != torch.float64:
        raise TypeError(f"outward rounding is defined for float64 tensors, not {x.dtype}")


def rowdot(coeffs: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``out[b, i] = sum_j coeffs[b, i, j...] * vector[b, j...]``.

    ``coeffs`` has shape ``(B or 1, m, *shape)`` and ``vector`` ``(B or 1, *shape)``;
    the result is ``(max B, m)``. One matmul (an inner dimension of ``numel(shape)``).
    """
    flat = coeffs.reshape(coeffs.shape[0], coeffs.shape[1], -1)
    vec = vector.reshape(vector.shape[0], -1, 1)
    return torch.matmul(flat, vec).squeeze(-1)
