"""The zonotope (DeepZ) domain with per-neuron floating-point error boxes."""

from domains.zonotope.element import NoiseSymbols, Zonotope

__all__ = ["NoiseSymbols", "Zonotope"]
