"""One generic interpreter for every interpretation of the IR.

An interpretation is a :class:`Table`: a mapping from op class to a rule
``rule(op, *input_values) -> output_value``. Concrete semantics, each abstract domain's
transfer functions and the certificate lowering are all tables; this module walks the
graph once, in topological order, and applies the rule of each node's op class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from prover.errors import UnsupportedOperation
from prover.ir.graph import Graph
from prover.ir.ops import Op

Rule = Callable[..., Any]


@dataclass(frozen=True)
class Table:
    """An interpretation: its name (for messages and support matrices) and its rules.

    Lookup is by exact op class, so a subclass never silently inherits a rule that was
    written for its parent.
    """

    name: str
    rules: Mapping[type[Op], Rule]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))

    def supports(self, op_class: type[Op]) -> bool:
        """Whether this table has a rule for ``op_class``."""
        return op_class in self.rules

    def rule(self, op: Op, where: str) -> Rule:
        """The rule for ``op``; raises UnsupportedOperation naming the node otherwise."""
        try:
            return self.rules[type(op)]
        except KeyError:
            raise UnsupportedOperation(
                op.name, where, tuple(cls.__name__ for cls in self.rules), self.name
            ) from None

    def check(self, graph: Graph) -> None:
        """Raise UnsupportedOperation for the first node this table cannot interpret."""
        for node in graph.nodes:
            self.rule(node.op, node.source or node.name)


def interpret(
    graph: Graph,
    table: Table,
    inputs: Mapping[str, Any],
    *,
    keep: bool = False,
    on_value: Callable[[str, Any], Any] | None = None,
) -> Any:
    """Evaluate ``graph`` under ``table``.

    Args:
        graph: the graph to walk.
        table: the interpretation.
        inputs: one value per graph input name.
        keep: return a dict of every value instead of only the output.
        on_value: optional hook called as ``on_value(name, value)`` after each node; if it
            returns something other than None, that replaces the node's value (used to
            tighten intermediate bounds, e.g. with split constraints).

    Returns:
        The output value, or the dict of all values when ``keep`` is true.
    """
    table.check(graph)
    values: dict[str, Any] = dict(inputs)
    consumers_left = {name: 0 for name in values}
    if not keep:
        for node in graph.nodes:
            consumers_left.setdefault(node.name, 0)
            for value in node.inputs:
                consumers_left[value] = consumers_left.get(value, 0) + 1
    for node in graph.nodes:
        rule = table.rule(node.op, node.source or node.name)
        result = rule(node.op, *(values[name] for name in node.inputs))
        if on_value is not None:
            replaced = on_value(node.name, result)
            if replaced is not None:
                result = replaced
        values[node.name] = result
        if not keep:
            for name in node.inputs:
                consumers_left[name] -= 1
                if consumers_left[name] == 0 and name != graph.output:
                    del values[name]
    return values if keep else values[graph.output]
