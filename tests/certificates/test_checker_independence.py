"""The checker is the trusted base: it may import only the standard library, numpy, onnx."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import proofs.checker

CHECKER = Path(proofs.checker.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "onnx", "z3"}  # z3 only optionally, to re-run lemma checks
FORBIDDEN = {"prover", "domains", "importers", "torch", "onnxruntime"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports stay inside the checker
                names.append("proofs.checker")
            else:
                names.append(node.module or "")
    return names


def test_checker_files_import_nothing_of_the_prover():
    files = sorted(CHECKER.rglob("*.py"))
    assert len(files) >= 5
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            if top == "proofs":
                assert name.startswith("proofs.checker"), f"{path.name} imports {name}"
                continue
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                f"{path.name} imports {name}"
            )


def test_the_import_test_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from prover.ir import ops\nimport domains.linear\n")
    assert [n.split(".")[0] for n in _imports(bad)] == ["prover", "domains"]
