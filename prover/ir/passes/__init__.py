"""Canonicalising rewrites of the IR, one per module, run in order by :func:`canonicalize`.

Each pass is ``run(graph) -> graph`` and returns its argument unchanged when nothing
applies. Each module's docstring states the equivalence it keeps.
"""

from __future__ import annotations

from collections.abc import Callable

from prover.ir.graph import Graph
from prover.ir.passes import (
    dead_code,
    drop_identities,
    fold_affine,
    fold_constants,
    fuse_gemm_add,
    merge_neg,
    merge_reshapes,
)

Pass = Callable[[Graph], Graph]

#: The pass modules, in the order :func:`canonicalize` runs them. Each has ``run`` and
#: ``EXACT`` (whether it keeps the function bit for bit, or only over the reals with new
#: constants rounded to float64).
PASSES = (
    fold_constants,
    drop_identities,
    merge_reshapes,
    merge_neg,
    fuse_gemm_add,
    fold_affine,
    dead_code,
)


def canonicalize(graph: Graph, *, exact_only: bool = False, max_rounds: int = 10) -> Graph:
    """Run the passes in order, repeatedly, until none changes the graph.

    Args:
        graph: the graph to rewrite.
        exact_only: skip the passes that round new constants (constant folding, bias and
            BatchNorm folding), keeping the graph's function bit for bit.
        max_rounds: an upper bound on the repetitions.
    """
    passes = [p.run for p in PASSES if p.EXACT or not exact_only]
    for _ in range(max_rounds):
        before = graph
        for rewrite in passes:
            graph = rewrite(graph)
        if graph is before:
            break
    return graph


__all__ = ["PASSES", "canonicalize"]
