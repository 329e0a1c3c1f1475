"""Importers: outside model formats into the IR.

:func:`load_model` dispatches on what it is given: a path, bytes or an ``onnx.ModelProto``
go to the ONNX importer, a ``torch.nn.Module`` to the PyTorch importer (torch is only
imported then), an IR ``Graph`` is returned as is.
"""

from __future__ import annotations

import os
import sys

from prover.errors import ModelError
from prover.ir.graph import Graph


def load_model(
    source: object,
    *,
    example_input: object = None,
    input_shape: tuple[int, ...] | None = None,
    canonicalize: bool = True,
) -> Graph:
    """Import ``source`` into a validated IR graph.

    Args:
        source: ONNX path (str or Path), ONNX bytes, ``onnx.ModelProto``,
            ``torch.nn.Module`` or an IR ``Graph``.
        example_input: for a torch module, an input with a batch axis of size 1.
        input_shape: for a torch module, the input shape without batch axis.
        canonicalize: run the canonicalising passes.

    Raises:
        ModelError: a source of an unknown kind, or any import error (see the importers).
    """
    if isinstance(source, Graph):
        return source
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        from importers.onnx import import_onnx

        return import_onnx(source, canonicalize=canonicalize)
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(source, onnx.ModelProto):
        from importers.onnx import import_onnx

        return import_onnx(source, canonicalize=canonicalize)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(source, torch.nn.Module):
        from importers.torch import import_torch

        return import_torch(
            source,
            example_input=example_input,
            input_shape=input_shape,
            canonicalize=canonicalize,
        )
    raise ModelError(
        f"cannot load a model from a {type(source).__name__}; expected an ONNX path, bytes, "
        "onnx.ModelProto, torch.nn.Module or IR Graph"
    )


__all__ = ["load_model"]
