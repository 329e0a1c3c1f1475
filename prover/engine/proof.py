"""The proof tree that branch and bound records and certificates are written from.

A proof of "no unsafe polytope is reachable from the box" is a tree:

* :class:`InputSplit` splits the box on input dimension ``dim`` at ``value`` into
  ``below`` (x[dim] <= value) and ``above`` (x[dim] >= value); together they cover it.
  With ``clips`` (:class:`Clip`), the box is first narrowed by moving faces whose
  cut-away slabs the node's linear bounds exclude; the halves then cover the narrowed
  box. A :class:`Closed` leaf with ``clips`` is closed on its narrowed box.
* :class:`ReluSplit` splits on the phase of one ReLU neuron (``node`` is the name of the
  ReLU node's *input* value, ``index`` the flat neuron index): ``inactive`` assumes the
  pre-activation <= 0, ``active`` assumes >= 0; together they cover every input.
* :class:`Closed` is a leaf closed by one rule, with the evidence the rule needs:

  - ``"interval"``: interval propagation over the leaf (box + split constraints) shows
    every unsafe polytope has a row whose lower bound exceeds its ``d``. Evidence: none.
  - ``"linear"``: linear (CROWN-style) bounds with the ReLU lower slopes in
    ``evidence["slopes"]`` (``{relu input name: 1-D tensor or list of slopes in [0, 1]}``);
    evidence ``evidence["rows"]`` lists, per unsafe polytope, the row index proved
    infeasible.
  - ``"infeasible"``: the split constraints on the path contradict each other (the
    leaf's region is empty), shown by interval or linear bounds.

The leaf's region is implied by the path: the root box, narrowed by input splits, with
ReLU phase constraints accumulated from ReLU splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Clip:
    """Faces of a node's box moved before it is split or closed (:mod:`prover.engine.clip`).

    ``steps`` are ``(dim, side, value)`` in order (side +1: the upper face of ``dim`` moves
    down to ``value``; -1: the lower face moves up); each slab cut away is excluded, for
    every unsafe polytope, by one row's linear lower bound with the ReLU lower ``slopes``
    (``{relu input name: tensor}``) on the node's box.
    """

    steps: tuple[tuple[int, int, float], ...]
    slopes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Closed:
    """A leaf closed by ``rule`` with ``evidence``; ``method`` says which engine did it.
    With ``clips`` the rule holds on the box those narrowings left (see :class:`Clip`)."""

    rule: str
    evidence: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    clips: tuple[Clip, ...] = ()


@dataclass(frozen=True)
class InputSplit:
    """Split input dimension ``dim`` (flat index) at ``value``, after the ``clips`` (in
    order, each justified by the node's bound on the box the previous ones left) narrowed
    the node's box: the two halves cover the narrowed box."""

    dim: int
    value: float
    below: ProofTree
    above: ProofTree
    clips: tuple[Clip, ...] = ()


@dataclass(frozen=True)
class ReluSplit:
    """Split ReLU neuron ``index`` (flat) of the ReLU whose input value is ``node``."""

    node: str
    index: int
    inactive: ProofTree
    active: ProofTree


ProofTree = Closed | InputSplit | ReluSplit


def count_leaves(tree: ProofTree) -> int:
    """Number of leaves of ``tree`` (iterative: trees can be deep)."""
    total, stack = 0, [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Closed):
            total += 1
        elif isinstance(node, InputSplit):
            stack += [node.below, node.above]
        else:
            stack += [node.inactive, node.active]
    return total
