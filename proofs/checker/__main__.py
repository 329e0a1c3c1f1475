"""``python -m proofs.checker CERT [--model ONNX] [--spec VNNLIB]``."""

from proofs.checker import main

raise SystemExit(main())
