"""One exception hierarchy for everything the verifier rejects.

Every error a user can provoke with bad input derives from :class:`ProverError`; the CLI
turns any of them into a one-line message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


class ProverError(Exception):
    """Base class of every error the verifier raises on purpose."""


class ModelError(ProverError):
    """The model file or object cannot be read (malformed, truncated, wrong type)."""


class UnsafeModelError(ModelError):
    """The model asks for something unsafe, e.g. external data outside its folder."""


class InvalidWeightsError(ModelError):
    """A weight or constant of the model holds NaN or Inf."""


class UnsupportedOperation(ProverError):
    """An op that the importer or an interpretation table does not handle.

    Args:
        op: the op's name (ONNX op type or IR op class name).
        where: the node name, or another description of where it was found.
        supported: the names that are supported in that context.
        context: what did not support it ("ONNX importer", "zonotope domain", ...).
    """

    def __init__(
        self, op: str, where: str, supported: tuple[str, ...] = (), context: str = ""
    ) -> None:
        self.op = op
        self.where = where
        self.supported = tuple(sorted(supported))
        self.context = context
        message = f"unsupported operation {op!r} at node {where!r}"
        if context:
            message += f" in the {context}"
        if self.supported:
            message += "; supported: " + ", ".join(self.supported)
        super().__init__(message)


class ShapeError(ProverError):
    """Shapes do not fit together; names the node, op, expected and actual shapes."""

    def __init__(self, node: str, op: str, expected: object, actual: object, detail: str = ""):
        self.node = node
        self.op = op
        self.expected = expected
        self.actual = actual
        message = f"shape mismatch at node {node!r} ({op}): expected {expected}, got {actual}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class GraphError(ProverError):
    """A graph is malformed: dangling values, cycles, duplicate names."""


class RegionError(ProverError):
    """An input region is invalid: inverted or empty box, negative eps, NaN, wrong shape."""


class PropertyError(ProverError):
    """A property does not fit the model (e.g. it names an output that does not exist)."""


class SpecError(ProverError):
    """A property file or claim text is malformed; carries the line number when known."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None):
        self.line = line
        self.source = source
        prefix = ""
        if source:
            prefix += f"{source}:"
        if line is not None:
            prefix += f"{line}: " if source else f"line {line}: "
        elif source:
            prefix += " "
        super().__init__(prefix + message)


class CertificateError(ProverError):
    """A certificate cannot be written, read or is malformed."""
