"""The open leaves of a branch-and-bound search, stored as batched tensors.

A :class:`Leaves` holds named tensors that share their leading (leaf) axis, so a batch
of leaves is cut, filtered and concatenated with one tensor operation per key rather
than per leaf. :func:`restrict` filters a batch together with its bounds.
"""

from __future__ import annotations

import torch

from prover.engine.leaves import LeafBounds
from prover.engine.record import SearchRecord

#: Key of the ReLU layer index of each leaf's newest split (-1: none, or the box changed
#: since). The inherited pre-activation bounds of that layer and the ones before it are
#: exactly what the bounder would compute again (the new split only changes the
#: relaxation of later layers), so they are reused as they are.
LAST = ("last", "")


class Leaves:
    """A batch of open leaves: named tensors sharing the leading (leaf) axis.

    Keys: ``lower``/``upper`` (flat input boxes), ``ids`` (search node ids), ``depth``,
    ``("split", relu)`` (ReLU phases, int8) and ``("lo", v)``/``("up", v)`` (bounds of
    value ``v`` inherited from the parent node, when reused).
    """

    def __init__(self, tensors: dict) -> None:
        self.t = tensors

    def __len__(self) -> int:
        return int(self.t["ids"].shape[0])

    def __getitem__(self, key):
        return self.t[key]

    def take(self, index: torch.Tensor) -> Leaves:
        return Leaves({k: v[index] for k, v in self.t.items()})

    def split_off(self, count: int) -> Leaves:
        """Remove and return the last ``count`` leaves."""
        keep = len(self) - count
        tail = Leaves({k: v[keep:] for k, v in self.t.items()})
        self.t = {k: v[:keep] for k, v in self.t.items()}
        return tail

    def extend(self, other: Leaves) -> None:
        if not len(self):
            self.t = dict(other.t)
            return
        # Inherited bounds are optional: keep only what both sides have.
        self.t = {k: torch.cat([v, other.t[k]]) for k, v in self.t.items() if k in other.t}

    def splits(self, names: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.t[("split", name)] for name in names}

    def slopes(self) -> dict[str, torch.Tensor] | None:
        """The ReLU lower slopes inherited from the parent nodes (``("slope", v)``), or None."""
        found = {k[1]: v for k, v in self.t.items() if isinstance(k, tuple) and k[0] == "slope"}
        return found or None

    def intermediate(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        names = [k[1] for k in self.t if isinstance(k, tuple) and k[0] == "lo"]
        if not names:
            return None
        return {name: (self.t[("lo", name)], self.t[("up", name)]) for name in names}


def take_rows(tensors: dict, keep: torch.Tensor) -> dict:
    return {k: v[keep] for k, v in tensors.items()}


def restrict(leaves: Leaves, bounds: LeafBounds, excluded: torch.Tensor, keep: torch.Tensor):
    """The leaves, bounds and exclusion masks at the rows where ``keep`` is true."""
    return leaves.take(keep), bounds.map(lambda t: t[keep]), excluded[keep]


def children(leaves: Leaves, ids: torch.Tensor, inherited: dict) -> dict:
    """Tensors of the two children of each leaf, except ``lower``/``upper``.

    Children are interleaved (first, second) per parent, keeping siblings adjacent;
    they copy the parent's ReLU phases and inherit ``inherited`` bounds.
    """
    depth = leaves["depth"] + 1
    tensors = {"ids": ids.reshape(-1), "depth": depth.repeat_interleave(2)}
    for key, value in leaves.t.items():
        if isinstance(key, tuple):
            tensors[key] = value.repeat_interleave(2, 0)
    for key, value in inherited.items():
        tensors[key] = value.repeat_interleave(2, 0)
    return tensors


def bisect(
    leaves: Leaves,
    dims: torch.Tensor,
    scores: torch.Tensor,
    inherited: dict,
    record: SearchRecord,
) -> tuple[Leaves, torch.Tensor]:
    """Bisect each leaf at the middle of input ``dims``; returns children and their scores.

    The split is recorded in ``record``; the chosen dimension's score halves with its
    width, and dimensions too narrow to split again score ``-inf``.
    """
    n = len(leaves)
    index = torch.arange(n)
    lo, up = leaves["lower"], leaves["upper"]
    middle = (lo[index, dims] + up[index, dims]) / 2
    below_up = up.clone()
    below_up[index, dims] = middle
    above_lo = lo.clone()
    above_lo[index, dims] = middle
    ids = torch.empty((n, 2), dtype=torch.int64)
    split = record.split_input
    for i, (node, dim, value) in enumerate(
        zip(leaves["ids"].tolist(), dims.tolist(), middle.tolist(), strict=True)
    ):
        ids[i, 0], ids[i, 1] = split(node, dim, value)
    tensors = children(leaves, ids, inherited)
    if LAST in tensors:
        tensors[LAST] = torch.full_like(tensors[LAST], -1)  # the input box changed
    tensors["lower"] = torch.stack([lo, above_lo], 1).reshape(2 * n, -1)
    tensors["upper"] = torch.stack([below_up, up], 1).reshape(2 * n, -1)
    scores = scores.clone()
    scores[index, dims] = scores[index, dims] / 2
    scores = scores.repeat_interleave(2, 0)
    middle = (tensors["lower"] + tensors["upper"]) / 2
    splittable = (middle > tensors["lower"]) & (middle < tensors["upper"])
    scores = torch.where(splittable, scores, torch.full_like(scores, -torch.inf))
    return Leaves(tensors), scores


def relu_children(
    leaves: Leaves,
    layer: torch.Tensor,
    neuron: torch.Tensor,
    inherited: dict,
    record: SearchRecord,
    relus: list[str],
) -> Leaves:
    """Split each leaf on ReLU ``relus[layer]`` neuron ``neuron``: (inactive, active)."""
    n = len(leaves)
    ids = torch.empty((n, 2), dtype=torch.int64)
    split = record.split_relu
    for i, (node, k, j) in enumerate(
        zip(leaves["ids"].tolist(), layer.tolist(), neuron.tolist(), strict=True)
    ):
        ids[i, 0], ids[i, 1] = split(node, relus[k], j)
    tensors = children(leaves, ids, inherited)
    tensors[LAST] = layer.repeat_interleave(2, 0)
    tensors["lower"] = leaves["lower"].repeat_interleave(2, 0)
    tensors["upper"] = leaves["upper"].repeat_interleave(2, 0)
    index = torch.arange(n)
    for k, name in enumerate(relus):
        phases = leaves[("split", name)]
        inactive, active = phases.clone(), phases.clone()
        here = layer == k
        inactive[index[here], neuron[here]] = -1
        active[index[here], neuron[here]] = 1
        tensors[("split", name)] = torch.stack([inactive, active], 1).reshape(2 * n, -1)
    return Leaves(tensors)


def probe_leaves(
    leaves: Leaves, inherited: dict, base: torch.Tensor, top: int
) -> tuple[Leaves, torch.Tensor]:
    """Both halves of a few candidate input splits of every leaf, for strong branching.

    The candidates are the ``top`` best dimensions by ``base`` scores and the widest
    dimension (a dimension may repeat). Returns the probe leaves, ordered (leaf,
    candidate, half) with the lower half first, and the candidates ``(n, c)``.
    """
    n, d = len(leaves), leaves["lower"].shape[1]
    lo, up = leaves["lower"], leaves["upper"]
    mid = (lo + up) / 2
    splittable = (mid > lo) & (mid < up)
    picks = [base.topk(min(top, d), dim=1).indices]
    picks.append(torch.where(splittable, up - lo, -torch.inf).argmax(dim=1, keepdim=True))
    cand = torch.cat(picks, dim=1)
    c = cand.shape[1]
    rows = torch.arange(n)[:, None].expand(n, c)
    slots = torch.arange(c)[None, :].expand(n, c)
    L = lo[:, None, None, :].repeat(1, c, 2, 1)
    U = up[:, None, None, :].repeat(1, c, 2, 1)
    L[rows, slots, 1, cand] = mid[rows, cand]
    U[rows, slots, 0, cand] = mid[rows, cand]
    tensors = {"lower": L.reshape(n * c * 2, d), "upper": U.reshape(n * c * 2, d)}
    tensors["ids"] = leaves["ids"].repeat_interleave(2 * c)
    tensors["depth"] = leaves["depth"].repeat_interleave(2 * c)
    for key, value in leaves.t.items():
        if isinstance(key, tuple) and key[0] == "split":
            tensors[key] = value.repeat_interleave(2 * c, 0)
    for key, value in inherited.items():
        tensors[key] = value.repeat_interleave(2 * c, 0)
    return Leaves(tensors), cand
