"""Options: one frozen dataclass passed down explicitly (no global settings)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Options:
    """Settings of a proof run.

    Attributes:
        timeout: wall-clock budget in seconds for the whole ``prove`` call.
        seed: seed of every random choice (falsification, branching ties).
        domains: the bound-propagation cascade, cheapest first.
        falsify: run random sampling and PGD before bounding.
        random_samples: number of uniformly random points tried.
        pgd_steps: gradient steps per PGD restart.
        pgd_restarts: number of PGD restarts.
        bab: run branch and bound after the cascade when it is available.
        device: torch device for bound propagation ("cpu" or "cuda").
        alpha_steps: gradient steps on the ReLU lower slopes (alpha-CROWN).
        certificate: where to write a certificate, or None.
        check: run the independent checker on the certificate of a HOLDS result.
    """

    timeout: float = 60.0
    seed: int = 0
    domains: tuple[str, ...] = ("interval", "crown", "zonotope")
    falsify: bool = True
    random_samples: int = 256
    pgd_steps: int = 30
    pgd_restarts: int = 4
    bab: bool = True
    device: str = "cpu"
    alpha_steps: int = 20
    certificate: str | None = None
    check: bool = True

    def with_(self, **changes: object) -> Options:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
