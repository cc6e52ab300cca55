"""CPU threads that sleep, not spin, while they wait for each other.

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the PyPI wheels), which by default spin
at every barrier, waiting for the other threads of the team. On a machine whose cores are shared
with other work, a descheduled thread leaves its partners spinning on the cores it needs.
Measured on 2 cores (AMD EPYC, AVX-512 BF16) under a load average of 13-21, one SmolLM2-135M
forward and backward pass over 2 x 480 tokens (bf16 autocast):

| threads | wall s | CPU s |
|---|---|---|
| 2, libgomp's default | 92-116 | 27 |
| 2, `OMP_WAIT_POLICY=PASSIVE` | 27-30 | 8 |
| 1 | 23-24 | 7.5 |

libgomp reads the setting once, when torch is first imported, so the CLI sets it before importing
anything that imports torch; a value of the user's own wins.
"""

from __future__ import annotations

import os


def sleep_while_waiting() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
