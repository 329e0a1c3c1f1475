"""Process-level tuning for long bound computations (used by the command line).

Bound propagation allocates and frees many large temporary tensors (tens of MB each:
coefficients of every row over every neuron, for a batch of regions). glibc serves
allocations above its mmap threshold with fresh ``mmap`` pages and returns them with
``munmap`` on free, so every such tensor pays page faults and kernel zeroing: measured
on the 2-core benchmark machine, elementwise ops on a 40 MB float64 tensor ran 2-3x
slower, and an ACAS Xu proof spent about a quarter of its time in the kernel. Raising
the mmap and trim thresholds keeps freed blocks in the heap for reuse. torch has no
CPU caching allocator to do this for us, hence these few lines of ctypes.

This changes process-wide malloc behaviour (freed memory is kept until exit), so the
library never calls it by itself; the ``prover`` command does, and API users may.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: allocations up to this size come from the heap (reused) instead of fresh mmap pages
MMAP_THRESHOLD = 1 << 30
#: free heap memory is returned to the kernel only above this size
TRIM_THRESHOLD = (1 << 31) - 1


def tune_allocator() -> bool:
    """Keep large freed blocks in glibc's heap for reuse (Linux/glibc only).

    Returns:
        True when both settings were applied; False elsewhere (no glibc, or refused),
        which changes nothing but speed.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    log.debug("malloc thresholds %s", "raised" if ok else "unchanged")
    return ok
