"""Torch thread count for tests of tiny tensors."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def one_torch_thread():
    """Tiny tensors run fastest on one thread (and the 2 cores may be shared); restores the count afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
