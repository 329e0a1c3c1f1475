"""The op x interpretation support matrix, computed from the tables themselves.

``python -m prover.support`` prints the Markdown table that README.md embeds between the
markers ``<!-- support-matrix:start -->`` and ``<!-- support-matrix:end -->``; a test keeps
the README in step with the code.
"""

from __future__ import annotations

from domains import get_domain
from prover.errors import ProverError
from prover.ir.interpreter import Table
from prover.ir.ops import ALL_OPS
from prover.semantics import CONCRETE

DOMAIN_COLUMNS = ("interval", "zonotope", "deeppoly", "crown", "alpha-crown")


def tables() -> dict[str, Table]:
    """Every interpretation table, by column name (missing domains are left out)."""
    found: dict[str, Table] = {"semantics": CONCRETE}
    for name in DOMAIN_COLUMNS:
        try:
            found[name] = get_domain(name).table
        except ProverError:
            continue
    return found


def matrix() -> dict[str, dict[str, bool]]:
    """op name -> column -> supported."""
    columns = tables()
    return {op.__name__: {c: t.supports(op) for c, t in columns.items()} for op in ALL_OPS}


def markdown() -> str:
    """The support matrix as a Markdown table (IR ops) plus the importer's ONNX op list."""
    columns = list(tables())
    lines = ["| IR op | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for op, row in matrix().items():
        lines.append(f"| {op} | " + " | ".join("yes" if row[c] else "-" for c in columns) + " |")
    try:
        from importers.onnx import supported_onnx_ops

        onnx_ops = ", ".join(sorted(supported_onnx_ops()))
        lines += ["", f"ONNX ops imported: {onnx_ops}."]
    except ImportError:
        pass
    return "\n".join(lines)


START, END = "<!-- support-matrix:start -->", "<!-- support-matrix:end -->"


def update_readme(path: str) -> bool:
    """Rewrite the matrix section of the README at ``path``; True if it changed."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{markdown()}\n{END}{tail}"
    if new != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(new)
    return new != text


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        update_readme(sys.argv[2])
    else:
        print(markdown())
