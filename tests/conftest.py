"""Suite-wide settings: one torch thread.

The suite runs many tiny tensor operations; on a 2-core machine that also runs other work,
torch's thread pool made them up to hundreds of times slower. One thread keeps the suite's
run time predictable; it changes no result.
"""

import torch

from prover.runtime import tune_allocator

torch.set_num_threads(1)
tune_allocator()  # the same allocator settings as the ``prover`` command
