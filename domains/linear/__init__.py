"""Linear bounds by back-substitution: DeepPoly, CROWN, alpha-CROWN (and beta multipliers).

Modules: ``floats`` (rigorous float64 error bounds), ``relax`` (scalar relaxations),
``forward`` (interval boxes of every value), ``transfer`` (the backward rules, ``TRANSFER``),
``engine`` (intermediate bounds and back-substitution over a DAG), ``alpha`` (slope and
multiplier optimisation), ``element`` (the result type) and ``api`` (entry points and
the ``DOMAINS`` registered in ``domains``).
"""
