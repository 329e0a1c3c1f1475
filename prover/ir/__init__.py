"""The intermediate representation: ops, graphs, the generic interpreter and passes."""

from prover.ir.graph import Graph, ModelOrigin, Node
from prover.ir.interpreter import Table, interpret
from prover.ir.ops import ALL_OPS, Op, Shape

__all__ = ["ALL_OPS", "Graph", "ModelOrigin", "Node", "Op", "Shape", "Table", "interpret"]
