"""Generator -> uint8 gray images, the numeric core of ``augment generate``: seed -> z exactly as the reference's
generate.py draws it, the generator's float output, and the reference's pixel mapping (``x * 127.5 + 128``, clamped,
truncated to uint8) applied to the channel mean. Bugs here change every published number, so it is tested against
the reference's own outputs (tests/augment/test_generate_reference.py, fixture generate_io.npz)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

RESAMPLING = "bicubic-antialias"  # what generate.json records for resized fakes; equals PIL's BICUBIC (prepare)


def to_gray_uint8(img: Any, size: int | None = None) -> Any:
    """Generator output (N, C, H, W) in [-1, 1] -> (N, size, size) uint8 gray: the channel mean, resized to ``size``
    (None: as it is) in float, then mapped to pixels as the reference does."""
    import torch
    import torch.nn.functional as F

    x = img.to(torch.float32).mean(dim=1, keepdim=True)  # in float32 even for an fp16 generator output
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return (x[:, 0] * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def latents(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """One z per seed, exactly ``RandomState(seed).randn(z_dim)`` (float32), independent of batching."""
    return np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]).astype(np.float32)


def generator_output(G: Any, seeds: Sequence[int], *, label: int | None, truncation_psi: float, noise_mode: str,
                     device: Any) -> Any:
    """The generator's float output (N, C, H, W) in about [-1, 1] for one batch of seeds, as the reference's
    generate.py computes it: z from :func:`latents`, a one-hot label (all zeros without one), ``G(z, c, ...)``."""
    import torch

    z = torch.from_numpy(latents(seeds, int(G.z_dim))).to(device)
    c = torch.zeros([len(seeds), int(G.c_dim)], device=device)
    if label is not None:
        c[:, label] = 1
    return G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)


def synthesize(G: Any, seeds: Sequence[int], *, label: int | None, truncation_psi: float, noise_mode: str,
               batch: int, device: str, size: int | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield (seeds, uint8 gray images (B, size, size)) batch by batch (``size`` None: the generator's own).

    On CUDA the next batch is queued before the previous one is copied out, so the GPU never waits for the host.
    With ``noise_mode='random'`` the noise comes from a generator seeded by the batch's first seed, so a run is
    repeatable for a given ``--batch``.
    """
    import torch

    dev = torch.device(device)
    pending: tuple[list[int], Any, Any] | None = None
    for start in range(0, len(seeds), batch):
        chunk = [int(s) for s in seeds[start:start + batch]]
        # context managers end before each yield, so the caller never runs inside them
        with torch.inference_mode(), _seeded(dev, chunk[0]) if noise_mode == "random" else contextlib.nullcontext():
            img = generator_output(G, chunk, label=label, truncation_psi=truncation_psi, noise_mode=noise_mode,
                                   device=dev)
            gray = to_gray_uint8(img, size)
            event = None
            if dev.type == "cuda":
                gray = gray.to("cpu", non_blocking=True)
                event = torch.cuda.Event()
                event.record()
        if pending is not None:
            yield _finish(pending)
        pending = (chunk, gray, event)
    if pending is not None:
        yield _finish(pending)


def _finish(pending: tuple[list[int], Any, Any]) -> tuple[list[int], np.ndarray]:
    chunk, gray, event = pending
    if event is not None:
        event.synchronize()
    return chunk, gray.cpu().numpy()


@contextlib.contextmanager
def _seeded(dev: Any, seed: int) -> Iterator[None]:
    import torch

    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
