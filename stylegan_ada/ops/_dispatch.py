"""Which path an op call takes: the pure-PyTorch reference or our CUDA kernels.

`impl='auto'` (the default everywhere) may be overridden for a whole process with the environment variable
``STYLEGAN_ADA_OPS=ref|cuda|auto``. `use_cuda` asks `cuda_backend.load()` whether the extension is available; each op
module then calls its own ``*_cuda`` glue (imported lazily) or its reference function.
"""
from __future__ import annotations

import os

import torch

from stylegan_ada.ops import cuda_backend

IMPLS = ("auto", "ref", "cuda")
ENV_VAR = "STYLEGAN_ADA_OPS"


def requested_impl(impl: str) -> str:
    """Validate `impl`; 'auto' is replaced by the environment override when one is set."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        impl = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
        if impl not in IMPLS:
            raise ValueError(f"{ENV_VAR} must be one of {IMPLS}, got {impl!r}")
    return impl


def use_cuda(op: str, x: torch.Tensor, impl: str) -> bool:
    """Whether the call of `op` on `x` takes the CUDA path.

    'ref' -> False; 'auto' -> True when `x` is on a CUDA device and the extension is available (False while
    torch.compile traces: inductor generates fused kernels from the reference ops);
    'cuda' -> True, or RuntimeError saying why it cannot be used.
    """
    impl = requested_impl(impl)
    if impl == "ref" or (impl == "auto" and torch.compiler.is_compiling()):
        return False  # under torch.compile the reference ops trace into the graph; the extension would break it
    if x.device.type != "cuda":
        if impl == "cuda":
            raise RuntimeError(f"{op}: impl='cuda' needs a tensor on a CUDA device, got {x.device}")
        return False
    if cuda_backend.load() is not None:
        return True
    if impl == "cuda":
        raise RuntimeError(f"{op}: impl='cuda' requested but the CUDA extension is not available "
                           f"({cuda_backend.last_error() or 'unknown reason'})")
    return False
