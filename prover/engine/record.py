"""A compact, append-only record of a branch-and-bound search, turned into a proof tree.

Branch and bound touches tens of thousands of nodes; building frozen tree objects as it
goes would cost time and memory for searches that end UNKNOWN anyway. The search only
appends to flat lists here (one integer id per node), and :meth:`SearchRecord.build`
assembles the :mod:`prover.engine.proof` tree once, iteratively (children are always
created after their parent, so visiting ids in reverse order builds every child before
its parent: no recursion, any depth).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from prover.engine.proof import Clip, Closed, InputSplit, ProofTree, ReluSplit


@dataclass(frozen=True)
class _Split:
    kind: str  # "input" or "relu"
    where: Any  # input dim (int) or ReLU input value name (str)
    index: int  # ReLU neuron index (relu) or -1
    value: float  # split point (input) or 0.0
    first: int  # id of the below / inactive child
    second: int  # id of the above / active child


class SearchRecord:
    """Append-only record of splits and closed leaves, keyed by integer node ids."""

    def __init__(self) -> None:
        self._splits: list[_Split | None] = [None]  # id 0 is the root
        self._closed: dict[int, Closed] = {}
        self._clips: dict[int, list[Clip]] = {}

    @property
    def size(self) -> int:
        """Number of nodes created so far."""
        return len(self._splits)

    @property
    def closed_count(self) -> int:
        """Number of leaves closed so far."""
        return len(self._closed)

    def split_input(self, node: int, dim: int, value: float) -> tuple[int, int]:
        """Record that ``node`` splits input ``dim`` at ``value``; returns (below, above) ids."""
        return self._split(node, "input", dim, -1, value)

    def clip(self, node: int, clip: Clip) -> None:
        """Record that open leaf ``node``'s box was narrowed by ``clip`` (before a split;
        a node may be narrowed several times, each time after being bounded again)."""
        if self._splits[node] is not None or node in self._closed:
            raise ValueError(f"search node {node} is already split or closed")
        self._clips.setdefault(node, []).append(clip)

    def split_relu(self, node: int, name: str, index: int) -> tuple[int, int]:
        """Record that ``node`` splits ReLU ``name``[``index``]; returns (inactive, active)."""
        return self._split(node, "relu", name, index, 0.0)

    def _split(self, node: int, kind: str, where: Any, index: int, value: float):
        if self._splits[node] is not None or node in self._closed:
            raise ValueError(f"search node {node} is already split or closed")
        first = len(self._splits)
        self._splits += [None, None]
        self._splits[node] = _Split(kind, where, index, value, first, first + 1)
        return first, first + 1

    def close(self, node: int, leaf: Closed) -> None:
        """Record that leaf ``node`` is closed by ``leaf``."""
        if self._splits[node] is not None or node in self._closed:
            raise ValueError(f"search node {node} is already split or closed")
        self._closed[node] = leaf

    def build(self) -> ProofTree:
        """The proof tree of the root; raises ValueError if some leaf is still open."""
        built: dict[int, ProofTree] = {}
        for node in range(len(self._splits) - 1, -1, -1):
            split = self._splits[node]
            if split is None:
                if node not in self._closed:
                    raise ValueError(f"search node {node} is neither split nor closed")
                leaf = self._closed[node]
                if node in self._clips:  # closed after being narrowed and bounded again
                    leaf = replace(leaf, clips=tuple(self._clips[node]))
                built[node] = leaf
                continue
            if split.kind == "relu" and node in self._clips:
                raise ValueError(f"search node {node} was clipped, then split on a ReLU")
            first, second = built.pop(split.first), built.pop(split.second)
            if split.kind == "input":
                clips = tuple(self._clips.get(node, ()))
                built[node] = InputSplit(int(split.where), float(split.value), first, second, clips)
            else:
                built[node] = ReluSplit(str(split.where), int(split.index), first, second)
        return built[0]
