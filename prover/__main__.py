"""``python -m prover`` is the ``prover`` command."""

from prover.cli import main

raise SystemExit(main())
