"""The independent certificate checker (trusted base: standard library, numpy, onnx).

It imports nothing from ``prover``, ``domains`` or ``importers``; it reads ``proofs/FORMAT.md``.
``python -m proofs.checker CERT [--model ONNX] [--spec VNNLIB]``: 0 valid, 1 invalid, 2 malformed.
"""

from __future__ import annotations

import argparse
import sys

from proofs.checker.check import FORMAT, SEMANTICS, VERSION, CheckReport, check_certificate

__all__ = ["FORMAT", "SEMANTICS", "VERSION", "CheckReport", "check_certificate", "main"]


def main(argv: list[str] | None = None) -> int:
    """Check one certificate; print the report; return 0 valid, 1 invalid, 2 malformed."""
    parser = argparse.ArgumentParser(prog="prover check", description=__doc__.splitlines()[0])
    parser.add_argument("certificate", help="certificate JSON file")
    parser.add_argument("--model", help="ONNX model file (default: path in the certificate)")
    parser.add_argument("--spec", help="VNN-LIB file (default: path in the certificate)")
    args = parser.parse_args(argv)
    report = check_certificate(args.certificate, model=args.model, spec=args.spec)
    verdict = "VALID" if report.valid else ("MALFORMED" if report.malformed else "INVALID")
    lines = [f"certificate {verdict}"] + [f"reason: {report.reason}"] * bool(report.reason)
    lines += [f"  {k}: {line}" for k in ("checked", "trusted") for line in getattr(report, k)]
    sys.stdout.write("\n".join(lines) + "\n")
    return report.exit_code
