"""Torch views of the IR's read-only numpy constants, cached per array, dtype and device.

Ops keep their weights as read-only numpy arrays; every interpretation that runs in torch
needs them as tensors, often thousands of times (branch and bound). The cache keys on the
array's identity and drops the entry when the array is garbage collected.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

_CACHE: dict[tuple[int, torch.dtype, str, str], tuple[weakref.ref, torch.Tensor]] = {}


def constant(
    array: np.ndarray,
    like: torch.Tensor | None = None,
    *,
    dtype=None,
    device=None,
    transform: str = "",
):
    """Return ``array`` as a torch tensor with the dtype and device of ``like``.

    ``transform="abs"`` returns (and caches) ``|array|`` instead, for error bounds.
    """
    dtype = dtype or (like.dtype if like is not None else torch.float64)
    device = device or (like.device if like is not None else torch.device("cpu"))
    key = (id(array), dtype, str(device), transform)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is array:
        return hit[1]
    values = np.abs(np.asarray(array)) if transform == "abs" else np.asarray(array)
    tensor = torch.tensor(values, dtype=dtype, device=device)
    try:
        ref = weakref.ref(array, lambda _, key=key: _CACHE.pop(key, None))
    except TypeError:
        return tensor
    _CACHE[key] = (ref, tensor)
    return tensor
