"""The README's promises: support matrix in step with the code, the two commands present."""

from __future__ import annotations

from pathlib import Path

from prover.support import END, START, markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_support_matrix_matches_the_tables() -> None:
    text = README.read_text()
    section = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == markdown().strip(), (
        "README support matrix is stale: run `python -m prover.support --update README.md`"
    )


def test_readme_names_the_test_command_ci_runs() -> None:
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in text
    assert "pytest -q" in ci
