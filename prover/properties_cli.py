"""The CLI's ``--property`` option: text -> a whole-model property (parsed, never eval'd).

Accepted forms (case-insensitive names, no spaces needed)::

    valid-probabilities
    finite
    lipschitz:B            B a finite number >= 0; infinity norm
    lipschitz:B:NORM       NORM one of inf, 1, 2
    monotonic:I,J          output J nondecreasing in input I (flattened indices)
    monotonic:I,J:decreasing   (or :increasing)
"""

from __future__ import annotations

import math
import re

from prover.errors import PropertyError, SpecError
from prover.properties import Finite, Lipschitz, Monotonic, ValidProbabilities
from prover.spec.properties import Property

FORMS = "valid-probabilities | finite | lipschitz:B[:inf|1|2] | monotonic:I,J[:decreasing]"

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INDEX = re.compile(r"\d+")


def _error(text: str, why: str) -> SpecError:
    return SpecError(f"bad --property {text!r}: {why}; expected {FORMS}", source="--property")


def parse_property_option(text: str) -> Property:
    """Parse the ``--property`` option.

    Raises:
        SpecError: on any text that is not one of the accepted forms.
    """
    if not isinstance(text, str):
        raise _error(str(text), "not text")
    raw = text.strip()
    name, _, rest = raw.partition(":")
    name = name.strip().lower().replace("_", "-")
    parts = [p.strip() for p in rest.split(":")] if rest else []
    try:
        if name in ("valid-probabilities", "validprobabilities", "probabilities"):
            if parts:
                raise _error(raw, "valid-probabilities takes no argument")
            return ValidProbabilities()
        if name == "finite":
            if parts:
                raise _error(raw, "finite takes no argument")
            return Finite()
        if name == "lipschitz":
            if not parts or len(parts) > 2 or not _NUMBER.fullmatch(parts[0]):
                raise _error(raw, "lipschitz needs a number bound, e.g. lipschitz:0.5")
            bound = float(parts[0])
            if not math.isfinite(bound) or bound < 0:
                raise _error(raw, "the Lipschitz bound must be finite and >= 0")
            return Lipschitz(bound, parts[1].lower() if len(parts) == 2 else "inf")
        if name == "monotonic":
            if not parts or len(parts) > 2:
                raise _error(raw, "monotonic needs input and output indices, e.g. monotonic:0,1")
            indices = [p.strip() for p in parts[0].split(",")]
            if len(indices) != 2 or not all(_INDEX.fullmatch(p) for p in indices):
                raise _error(raw, "monotonic needs two non-negative integers I,J")
            increasing = True
            if len(parts) == 2:
                if parts[1].lower() not in ("increasing", "decreasing"):
                    raise _error(raw, "the direction must be increasing or decreasing")
                increasing = parts[1].lower() == "increasing"
            return Monotonic(int(indices[0]), int(indices[1]), increasing)
    except PropertyError as exc:
        raise _error(raw, str(exc)) from None
    raise _error(raw, f"unknown property {name!r}")
