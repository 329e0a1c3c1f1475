"""DeepZ parallelogram of ReLU (Singh et al., NeurIPS 2018, Theorem 3.1).

For real ``l < 0 < u``, with ``lambda = u / (u - l)`` and ``mu = -lambda l / 2``, every
``x`` in ``[l, u]`` satisfies ``lambda x + mu - mu <= relu(x) <= lambda x + mu + mu``.

Leaky analogue (``0 <= alpha <= 1``): with the chord slope ``lambda = (u - alpha l) /
(u - l)`` and ``mu = (1 - lambda) u / 2``, ``lambda x <= leaky(x) <= lambda x + 2 mu``.

Proved by Z3 with ``l, u, x, alpha`` free reals.
"""

from __future__ import annotations

import z3

from proofs.lemmas.base import LemmaResult, leaky, relu, run_checks, z3_valid

NAME = "relu_deepz"


def check(mu_scale: float = 1.0) -> LemmaResult:
    """Prove the statements; ``mu_scale != 1`` shrinks/grows the band (tests use this)."""
    lo, u, x, alpha = z3.Reals("l u x alpha")
    hyp = [lo < 0, 0 < u, lo <= x, x <= u]
    lam = u / (u - lo)
    mu = -lam * lo / 2 * z3.RealVal(mu_scale)
    lam_a = (u - alpha * lo) / (u - lo)
    mu_a = (1 - lam_a) * u / 2 * z3.RealVal(mu_scale)
    leaky_hyp = [*hyp, 0 <= alpha, alpha <= 1]
    checks = [
        ("relu lower", lambda: z3_valid(hyp, lam * x + mu - mu <= relu(x))),
        ("relu upper", lambda: z3_valid(hyp, relu(x) <= lam * x + mu + mu)),
        ("leaky lower", lambda: z3_valid(leaky_hyp, lam_a * x + mu_a - mu_a <= leaky(x, alpha))),
        ("leaky upper", lambda: z3_valid(leaky_hyp, leaky(x, alpha) <= lam_a * x + 2 * mu_a)),
    ]
    return run_checks(NAME, "z3", checks)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
