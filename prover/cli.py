"""The ``prover`` command line: prove, bounds, inspect, vnncomp, claim, check.

Every ProverError becomes a one-line message on stderr and exit status 2 (bad input);
``prove`` exits 0 on HOLDS, 1 on VIOLATED, 3 on UNKNOWN; unexpected failures exit 4
with a one-line message (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError, RegionError

EXIT_HOLDS, EXIT_VIOLATED, EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_INTERNAL = 0, 1, 2, 3, 4


def _vector(text: str, what: str) -> np.ndarray:
    """A vector from a .npy file (never unpickled), a comma list, or one number."""
    path = Path(text)
    if text.endswith(".npy"):
        if not path.is_file():
            raise RegionError(f"{what}: no such file {text!r}")
        try:
            return np.load(path, allow_pickle=False).astype(np.float64)
        except (ValueError, OSError) as exc:
            raise RegionError(f"{what}: cannot read {text!r}: {exc}") from None
    try:
        return np.array([float(v) for v in text.split(",") if v.strip()], dtype=np.float64)
    except ValueError:
        raise RegionError(
            f"{what}: expected numbers separated by commas or a .npy file, got {text!r}"
        ) from None


def _region(args: argparse.Namespace, graph) -> Any:
    from prover.spec import Box, LinfBall

    size = graph.input_size

    def fit(vector: np.ndarray, what: str) -> np.ndarray:
        if vector.size == 1:
            return np.full(size, float(vector[0]))
        if vector.size != size:
            raise RegionError(f"{what} has {vector.size} values; the model has {size} inputs")
        return vector

    if getattr(args, "center", None) is not None:
        if args.eps is None:
            raise RegionError("--center needs --eps")
        return LinfBall(
            fit(_vector(args.center, "--center"), "--center"),
            args.eps,
            args.clip_min,
            args.clip_max,
        )
    if getattr(args, "lower", None) is not None or getattr(args, "upper", None) is not None:
        if args.lower is None or args.upper is None:
            raise RegionError("--lower and --upper go together")
        return Box(
            fit(_vector(args.lower, "--lower"), "--lower"),
            fit(_vector(args.upper, "--upper"), "--upper"),
        )
    return None


def _add_region_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input region (or --vnnlib)")
    group.add_argument("--vnnlib", help="VNN-LIB file giving the region (and the property)")
    group.add_argument("--lower", help="box lower bound: numbers 'a,b,c', one number, or .npy")
    group.add_argument("--upper", help="box upper bound (same forms)")
    group.add_argument("--center", help="center of an L-infinity ball (same forms)")
    group.add_argument("--eps", type=float, help="radius of the L-infinity ball")
    group.add_argument("--clip-min", type=float, default=None, help="clip the ball below")
    group.add_argument("--clip-max", type=float, default=None, help="clip the ball above")


def _property(args: argparse.Namespace, graph):
    from prover.spec import Linear, OutputBounds, Robust

    if args.property:
        from prover.properties_cli import parse_property_option

        return parse_property_option(args.property)
    if args.robust is not None:
        return Robust(args.robust)
    if args.output_lower is not None or args.output_upper is not None:
        lo = _vector(args.output_lower, "--output-lower") if args.output_lower else None
        hi = _vector(args.output_upper, "--output-upper") if args.output_upper else None
        return OutputBounds(lo, hi)
    if args.linear is not None:
        data = json.loads(Path(args.linear).read_text())
        return Linear(np.array(data["C"], dtype=float), np.array(data["d"], dtype=float))
    if args.vnnlib:
        from importers.vnnlib import VNNLib

        return VNNLib(args.vnnlib)
    raise ProverError(
        "no property: give --vnnlib, --robust LABEL, --output-lower/--output-upper, "
        "--linear FILE or --property"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()] if value.ndim else float(value)
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def cmd_prove(args: argparse.Namespace) -> int:
    from prover.api import load, prove
    from prover.options import Options

    graph = load(args.model)
    prop = _property(args, graph)
    region = _region(args, graph)
    if region is None and args.vnnlib and args.property:
        region = _vnnlib_box(args.vnnlib, graph)
    options = Options(timeout=args.timeout, seed=args.seed)
    if args.domains:
        options = options.with_(domains=tuple(args.domains.split(",")))
    if args.no_bab:
        options = options.with_(bab=False)
    result = prove(
        graph, prop, region, options=options, certificate=args.certificate, check=not args.no_check
    )
    if args.json:
        print(
            json.dumps(
                {
                    "verdict": result.verdict.value,
                    "method": result.method,
                    "elapsed": result.elapsed,
                    "soundness": result.soundness,
                    "reason": result.reason,
                    "counterexample": _jsonable(result.counterexample),
                    "output": _jsonable(result.output),
                    "bounds": _jsonable(list(result.bounds)) if result.bounds else None,
                    "value": result.value,
                    "certificate": result.certificate,
                    "checked": result.checked,
                    "proof_leaves": result.stats.get("proof_leaves"),
                },
                indent=2,
            )
        )
    else:
        print(result.summary())
        print(f"  soundness: {result.soundness}")
        if result.counterexample is not None:
            point = np.array2string(result.counterexample.reshape(-1), precision=6)
            print(f"  counterexample: {point}")
            if result.output is not None:
                print(
                    f"  output there:   {np.array2string(result.output.reshape(-1), precision=6)}"
                )
        if result.bounds is not None:
            lo, hi = result.bounds
            for i, (a, b) in enumerate(zip(lo.reshape(-1)[:20], hi.reshape(-1)[:20], strict=False)):
                print(f"  y[{i}] in [{a:.6g}, {b:.6g}]")
        if result.stats.get("proof_leaves"):
            print(f"  proof: {result.stats['proof_leaves']} closed leaves")
        if result.value is not None:
            print(f"  certified value: {result.value:.6g}")
        if result.certificate:
            state = "checked" if result.checked else "NOT checked"
            print(f"  certificate: {result.certificate} ({state})")
    return {"holds": EXIT_HOLDS, "violated": EXIT_VIOLATED}.get(result.verdict.value, EXIT_UNKNOWN)


def _vnnlib_box(path: str, graph):
    """The single input box of a VNN-LIB file (RegionError if it has several)."""
    from importers.vnnlib import VNNLib

    subproblems = VNNLib(path).subproblems(graph.input_shape, graph.output_size)
    boxes = {(s.box.lower.tobytes(), s.box.upper.tobytes()) for s in subproblems}
    if len(boxes) != 1:
        raise RegionError(f"{path} has {len(boxes)} input boxes; expected exactly one")
    return subproblems[0].box


def cmd_bounds(args: argparse.Namespace) -> int:
    from prover.api import bounds, load

    graph = load(args.model)
    region = _region(args, graph)
    if region is None and args.vnnlib:
        region = _vnnlib_box(args.vnnlib, graph)
    if region is None:
        raise RegionError("give a region: --lower/--upper, --center/--eps or --vnnlib")
    lo, hi = bounds(graph, region, domain=args.domain)
    if args.json:
        print(json.dumps({"domain": args.domain, "lower": _jsonable(lo), "upper": _jsonable(hi)}))
    else:
        print(f"output bounds ({args.domain} domain) of {graph.name}:")
        for i, (a, b) in enumerate(zip(lo.reshape(-1), hi.reshape(-1), strict=False)):
            print(f"  y[{i}] in [{a:.9g}, {b:.9g}]")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from prover.inspect import inspect_model

    report = inspect_model(args.model)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"model {report['name']}: input {report['input_shape']} -> output "
        f"{report['output_shape']}, {report['parameters']} parameters, "
        f"{len(report['nodes'])} IR nodes"
    )
    if report.get("error"):
        print(f"  import error: {report['error']}")
    domains = report["domains"]
    header = f"  {'node':<28} {'op':<14} {'shape':<16} " + " ".join(f"{d:<9}" for d in domains)
    print(header)
    for node in report["nodes"]:
        marks = " ".join(f"{('yes' if node['support'][d] else 'NO'):<9}" for d in domains)
        print(f"  {node['name'][:28]:<28} {node['op']:<14} {str(node['shape']):<16} {marks}")
    if report.get("onnx_nodes"):
        unsupported = [n for n in report["onnx_nodes"] if not n["supported"]]
        print(
            f"  ONNX nodes: {len(report['onnx_nodes'])}, unsupported by the importer: "
            f"{len(unsupported)}"
        )
        for n in unsupported:
            print(f"    {n['name']} ({n['op_type']})")
    return 0


def cmd_claim(args: argparse.Namespace) -> int:
    from prover.symbolic import claim

    result = claim(args.text, timeout=args.timeout)
    if args.json:
        print(
            json.dumps(
                {
                    "verdict": result.verdict.value,
                    "method": result.method,
                    "soundness": result.soundness,
                    "reason": result.reason,
                    "counterexample": _jsonable(result.counterexample),
                    "elapsed": result.elapsed,
                }
            )
        )
    else:
        print(result.summary())
        print(f"  soundness: {result.soundness}")
        if result.counterexample is not None:
            print(f"  witness: {np.array2string(np.asarray(result.counterexample), precision=9)}")
    return {"holds": EXIT_HOLDS, "violated": EXIT_VIOLATED}.get(result.verdict.value, EXIT_UNKNOWN)


def cmd_check(args: argparse.Namespace) -> int:
    from proofs.checker import main as checker_main

    argv = [args.certificate]
    if args.model:
        argv += ["--model", args.model]
    if args.spec:
        argv += ["--spec", args.spec]
    return checker_main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prover`` command."""
    parser = argparse.ArgumentParser(
        prog="prover", description="Sound verification of neural networks."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: bound propagation runs many small, batched matmuls; "
        "measured fastest single-threaded on 2-core machines; 0 keeps torch's default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prove", help="prove a property of a model over a region")
    p.add_argument("model", help="ONNX file")
    _add_region_arguments(p)
    p.add_argument("--robust", type=int, metavar="LABEL", help="output LABEL stays the maximum")
    p.add_argument("--output-lower", help="claim y >= these (numbers or .npy)")
    p.add_argument("--output-upper", help="claim y <= these (numbers or .npy)")
    p.add_argument("--linear", metavar="JSON", help='file {"C": [[...]], "d": [...]}: C y <= d')
    p.add_argument("--property", help="valid-probabilities | finite | lipschitz:B | monotonic:i,j")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domains", help="comma-separated cascade, e.g. interval,zonotope,crown")
    p.add_argument("--no-bab", action="store_true", help="skip branch and bound")
    p.add_argument("--certificate", help="write a certificate to this path")
    p.add_argument("--no-check", action="store_true", help="do not check the certificate")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_prove)

    b = sub.add_parser("bounds", help="bound every output of a model over a region")
    b.add_argument("model")
    _add_region_arguments(b)
    b.add_argument(
        "--domain", default="interval", help="interval | zonotope | deeppoly | crown | alpha-crown"
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bounds)

    i = sub.add_parser("inspect", help="ops, shapes, parameters and support of every node")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser("claim", help='prove a symbolic claim, e.g. "forall x in R: relu(x) >= 0"')
    c.add_argument("text")
    c.add_argument("--timeout", type=float, default=30.0)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_claim)

    k = sub.add_parser("check", help="check a certificate independently")
    k.add_argument("certificate")
    k.add_argument("--model", help="the ONNX file the certificate is about")
    k.add_argument("--spec", help="the VNN-LIB file the certificate is about")
    k.set_defaults(func=cmd_check)

    try:
        from prover.vnncomp import add_vnncomp_arguments, run_vnncomp_command
    except ImportError:
        pass
    else:
        v = sub.add_parser("vnncomp", help="VNN-COMP runner: writes the competition result file")
        add_vnncomp_arguments(v)
        v.set_defaults(func=run_vnncomp_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prover`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command in ("prove", "bounds", "vnncomp"):
        from prover.runtime import tune_allocator

        tune_allocator()
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
    try:
        return int(args.func(args))
    except ProverError as exc:
        if args.debug:
            raise
        print(f"prover: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users, traceback with --debug
        if args.debug:
            raise
        print(f"prover: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
