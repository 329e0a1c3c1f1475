"""The CLI's --property option: parsing, errors, and an end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper
from prop_models import onnx_bytes

from prover.cli import EXIT_BAD_INPUT, EXIT_HOLDS, EXIT_VIOLATED, main
from prover.errors import ProverError, SpecError
from prover.properties import Finite, Lipschitz, Monotonic, ValidProbabilities
from prover.properties_cli import parse_property_option


def test_each_form_parses_to_its_property() -> None:
    assert isinstance(parse_property_option("valid-probabilities"), ValidProbabilities)
    assert isinstance(parse_property_option(" Finite "), Finite)
    lip = parse_property_option("lipschitz:0.5")
    assert isinstance(lip, Lipschitz) and lip.bound == 0.5 and lip.norm == "inf"
    assert parse_property_option("lipschitz:2e-1:2").norm == "2"
    mono = parse_property_option("monotonic:3,1")
    assert isinstance(mono, Monotonic) and (mono.input, mono.output, mono.increasing) == (
        3,
        1,
        True,
    )
    assert parse_property_option("monotonic:0,0:decreasing").increasing is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "robust",
        "finite:1",
        "valid-probabilities:x",
        "lipschitz",
        "lipschitz:",
        "lipschitz:abc",
        "lipschitz:nan",
        "lipschitz:inf",
        "lipschitz:-2",
        "lipschitz:1:7",
        "lipschitz:1:inf:x",
        "monotonic",
        "monotonic:1",
        "monotonic:1,2,3",
        "monotonic:-1,0",
        "monotonic:a,b",
        "monotonic:0,1:up",
        "__import__('os')",
    ],
)
def test_bad_text_is_a_clear_spec_error(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_property_option(text)
    assert isinstance(info.value, ProverError)
    assert "--property" in str(info.value)


def _write_linear(tmp_path) -> str:
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    w = np.array([[1.0, -2.0], [0.5, 0.5]], dtype=np.float32)  # ||W||_inf = 3
    path = tmp_path / "lin.onnx"
    path.write_bytes(onnx_bytes(nodes, 2, 2, {"w": w, "b": np.zeros(2)}))
    return str(path)


def test_cli_end_to_end(tmp_path, capsys) -> None:
    model = _write_linear(tmp_path)
    box = ["--lower=-1,-1", "--upper=1,1"]
    assert main(["prove", model, *box, "--property", "lipschitz:3.5", "--json"]) == EXIT_HOLDS
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "holds" and 3.0 <= report["value"] < 3.0 + 1e-9
    assert main(["prove", model, *box, "--property", "lipschitz:1"]) == EXIT_VIOLATED
    capsys.readouterr()
    assert main(["prove", model, *box, "--property", "monotonic:0,0"]) == EXIT_HOLDS
    assert main(["prove", model, *box, "--property", "monotonic:0,1:decreasing"]) == EXIT_VIOLATED
    assert main(["prove", model, *box, "--property", "finite"]) == EXIT_HOLDS
    capsys.readouterr()
    assert main(["prove", model, *box, "--property", "lipschitz:oops"]) == EXIT_BAD_INPUT
    assert "--property" in capsys.readouterr().err
