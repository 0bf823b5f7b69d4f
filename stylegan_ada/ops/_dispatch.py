"""Choose between the pure-PyTorch reference path and the CUDA kernels of an op.

`impl='auto'` (the default everywhere) may be overridden for a whole process with the environment variable
``STYLEGAN_ADA_OPS=ref|cuda|auto``. The CUDA side lives in `stylegan_ada.ops.cuda_backend` (owned separately); until
it exists, or when it cannot build, every op silently uses the reference path.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import torch

IMPLS = ("auto", "ref", "cuda")
ENV_VAR = "STYLEGAN_ADA_OPS"

_backend_module: ModuleType | None | bool = False  # False = not imported yet


def _cuda_backend() -> ModuleType | None:
    """The `cuda_backend` module, or None when it is absent or cannot be imported."""
    global _backend_module
    if _backend_module is False:
        try:
            _backend_module = importlib.import_module("stylegan_ada.ops.cuda_backend")
        except ImportError:
            _backend_module = None
    return _backend_module  # type: ignore[return-value]


def requested_impl(impl: str) -> str:
    """Validate `impl`; 'auto' is replaced by the environment override when one is set."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        impl = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
        if impl not in IMPLS:
            raise ValueError(f"{ENV_VAR} must be one of {IMPLS}, got {impl!r}")
    return impl


def cuda_function(op: str, x: torch.Tensor, impl: str) -> Any | None:
    """The CUDA autograd function for `op` ('bias_act' or 'upfirdn2d') if it should be used, else None.

    'ref' -> None; 'auto' -> the CUDA function when `x` is on a CUDA device and the extension built;
    'cuda' -> the CUDA function, or RuntimeError saying why it cannot be used.
    """
    impl = requested_impl(impl)
    if impl == "ref":
        return None
    if x.device.type != "cuda":
        if impl == "cuda":
            raise RuntimeError(f"{op}: impl='cuda' needs a tensor on a CUDA device, got {x.device}")
        return None
    backend = _cuda_backend()
    plugin = backend.get(op) if backend is not None else None
    if plugin is None:
        if impl == "cuda":
            reason = backend.last_error() if backend is not None else "stylegan_ada.ops.cuda_backend cannot be imported"
            raise RuntimeError(f"{op}: impl='cuda' requested but the CUDA extension is not available "
                               f"({reason or 'unknown reason'})")
        return None
    return getattr(backend, f"cuda_{op}")
