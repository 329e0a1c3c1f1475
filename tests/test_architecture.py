"""Layering rules from DESIGN.md, checked by parsing imports (ast, no execution)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("prover", "domains", "importers", "proofs")

# Longest prefix wins. L0 < L1 < L2 < L3.
LAYERS = {
    "prover.ir": 0,
    "prover.spec": 0,
    "prover.errors": 0,
    "prover.options": 0,
    "prover.result": 0,
    "prover.semantics": 1,
    "prover.tensors": 1,
    "domains": 1,
    "importers": 1,
    "prover.engine": 2,
    "prover.symbolic": 2,
    "prover.properties": 2,
    "prover": 3,
    "proofs": 3,
}


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in PACKAGES:  # `from prover import semantics`
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    assert len(source_files()) > 20


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_are_respected(path: Path) -> None:
    name = module_name(path)
    if name.startswith("proofs.checker"):
        for line, imported in imported_modules(path):
            assert imported.split(".")[0] not in ("prover", "domains", "importers"), (
                f"{path}:{line}: the checker must not import {imported}"
            )
        return
    own = layer_of(name)
    if own is None or name.startswith("proofs.lemmas"):
        return
    for line, imported in imported_modules(path):
        if imported.split(".")[0] not in PACKAGES:
            continue
        theirs = layer_of(imported)
        assert theirs is not None and theirs <= own, (
            f"{path}:{line}: {name} (L{own}) imports {imported} (L{theirs})"
        )


def test_layer_rule_can_fail() -> None:
    assert layer_of("prover.ir.graph") == 0
    assert layer_of("prover.api") == 3
    assert layer_of("prover.engine.bab") == 2
    assert layer_of("domains.interval.transfer") == 1


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def dangerous_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"{path}:{node.lineno}: {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if func.attr in ("sympify", "parse_expr"):
                found.append(f"{path}:{node.lineno}: {func.attr}()")
            if owner in ("pickle", "cPickle", "dill", "marshal") and func.attr.startswith("load"):
                found.append(f"{path}:{node.lineno}: {owner}.{func.attr}()")
            if owner == "torch" and func.attr == "load":
                safe = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                if not safe:
                    found.append(f"{path}:{node.lineno}: torch.load without weights_only=True")
            if owner == "np" and func.attr == "load":
                safe = any(
                    k.arg == "allow_pickle"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is False
                    for k in node.keywords
                )
                if not safe:
                    found.append(f"{path}:{node.lineno}: np.load without allow_pickle=False")
    return found


def test_no_eval_exec_or_unpickling_in_the_product() -> None:
    problems = [p for path in source_files() for p in dangerous_calls(path)]
    assert not problems, "\n".join(problems)


def test_dangerous_call_scan_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch, pickle\neval('1')\ntorch.load('f')\npickle.loads(b'')\n")
    assert len(dangerous_calls(bad)) == 3
