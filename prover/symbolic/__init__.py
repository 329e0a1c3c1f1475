"""Symbolic claims: a restricted claim language discharged with SymPy, Z3 and numbers.

>>> from prover.symbolic import claim
>>> claim("forall x in R: relu(x) >= 0").verdict
<Verdict.HOLDS: 'holds'>
"""

from prover.symbolic.discharge import claim
from prover.symbolic.parser import parse_claim
from prover.symbolic.syntax import Claim

__all__ = ["Claim", "claim", "parse_claim"]
