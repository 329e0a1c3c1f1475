"""The bundled examples run and say what the README says they say."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs(capsys) -> None:
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "robust at eps=0.001: HOLDS" in out
    assert "robust at eps=2.0:   VIOLATED" in out
    assert "counterexample" in out
