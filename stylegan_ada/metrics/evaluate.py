"""FID/KID of a generator against a set of real images.

Real-image features are cached by the sha256 of the image bytes (plus the extractor's cache tag): in
memory for the process, and on disk (written atomically) when ``cache_dir`` is given. Generation is deterministic for a
seed and runs in a forked RNG, so evaluating during training does not disturb the training's random
streams (needed for exact resume).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stylegan_ada.fileio import atomic_write_chunks
from stylegan_ada.metrics.extractors import FeatureExtractor, get_feature_extractor
from stylegan_ada.metrics.fid_kid import compute_fid_kid

__all__ = ["evaluate_generator", "extract_features", "real_features", "generated_features", "images_to_uint8",
           "content_hash"]

_REAL_CACHE: dict[tuple[str, str], np.ndarray] = {}


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 0..255 (rounded, clamped), as the reference metrics do."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def _as_uint8_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"real images must be uint8 [N, 1 or 3, H, W], got {x.dtype} {tuple(x.shape)}")
    return x


def content_hash(images: np.ndarray | torch.Tensor) -> str:
    """sha256 of the shape and bytes of a uint8 image batch."""
    x = _as_uint8_tensor(images).detach().cpu().contiguous().numpy()
    h = hashlib.sha256(repr(x.shape).encode())
    h.update(x.tobytes())
    return h.hexdigest()


def extract_features(extractor: FeatureExtractor, images: np.ndarray | torch.Tensor, batch: int = 64,
                     progress: bool = False, desc: str = "features") -> np.ndarray:
    """Features [N, D] float32 of uint8 images [N, C, H, W], computed ``batch`` images at a time."""
    x = _as_uint8_tensor(images)
    chunks = range(0, x.shape[0], batch)
    out = [extractor(x[i:i + batch]).cpu().numpy() for i in tqdm(chunks, desc=desc, disable=not progress)]
    return np.concatenate(out) if out else np.zeros([0, extractor.feature_dim], np.float32)


def _disk_cache_path(cache_dir: str | os.PathLike, key: tuple[str, str]) -> Path:
    digest, tag = key
    return Path(cache_dir) / f"real-features-{tag}-{digest[:24]}.npy"


def _load_cached(key: tuple[str, str], cache_dir: str | os.PathLike | None) -> np.ndarray | None:
    if key in _REAL_CACHE:
        return _REAL_CACHE[key]
    if cache_dir is None:
        return None
    path = _disk_cache_path(cache_dir, key)
    with contextlib.suppress(OSError, ValueError):  # unreadable or truncated file: recompute
        _REAL_CACHE[key] = np.load(path, allow_pickle=False)
        return _REAL_CACHE[key]
    return None


def _store_cached(key: tuple[str, str], features: np.ndarray, cache_dir: str | os.PathLike | None) -> None:
    _REAL_CACHE[key] = features
    if cache_dir is None:
        return
    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    with contextlib.suppress(OSError):  # a cache that cannot be written is only a lost speed-up
        atomic_write_chunks(_disk_cache_path(cache_dir, key), [buffer.getbuffer()])


def real_features(extractor: FeatureExtractor, real_images: np.ndarray | torch.Tensor, *, batch: int = 64,
                  cache_dir: str | os.PathLike | None = None, progress: bool = False) -> np.ndarray:
    """Features of the real images, from the cache when the same images were seen with the same extractor."""
    key = (content_hash(real_images), extractor.cache_tag)
    cached = _load_cached(key, cache_dir)
    if cached is not None:
        return cached
    features = extract_features(extractor, real_images, batch=batch, progress=progress, desc="real features")
    _store_cached(key, features, cache_dir)
    return features


def _labels(G: torch.nn.Module, c: torch.Tensor | None, num_gen: int, device: torch.device) -> torch.Tensor:
    c_dim = int(getattr(G, "c_dim", 0))
    if c is None:
        if c_dim > 0:
            raise ValueError(f"the generator is conditional (c_dim={c_dim}); pass labels c")
        return torch.zeros([num_gen, 0], device=device)
    c = torch.as_tensor(c, dtype=torch.float32, device=device)
    if c.ndim == 1:
        c = c[None].expand(num_gen, -1)
    if c.shape != (num_gen, c_dim):
        raise ValueError(f"labels must have shape [{c_dim}] or [{num_gen}, {c_dim}], got {tuple(c.shape)}")
    return c


@torch.no_grad()
def generated_features(G: torch.nn.Module, extractor: FeatureExtractor, *, num_gen: int, batch: int,
                       device: torch.device | str, c: torch.Tensor | None = None, seed: int = 0,
                       G_kwargs: dict[str, Any] | None = None, progress: bool = False) -> np.ndarray:
    """Features of ``num_gen`` images from G with latents drawn from ``seed`` (same on any device)."""
    device = torch.device(device)
    labels = _labels(G, c, num_gen, device)
    z_gen = torch.Generator().manual_seed(seed)
    out = []
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.default_generator.manual_seed(seed)  # G's own randomness (noise inputs), on G's device only
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        for start in tqdm(range(0, num_gen, batch), desc="generated features", disable=not progress):
            n = min(batch, num_gen - start)
            z = torch.randn([n, G.z_dim], generator=z_gen).to(device)
            images = G(z, labels[start:start + n], **(G_kwargs or {}))
            out.append(extractor(images_to_uint8(images)).cpu().numpy())
    return np.concatenate(out)


def evaluate_generator(G: torch.nn.Module, real_images: np.ndarray | torch.Tensor, *, num_gen: int, batch: int,
                       device: torch.device | str, extractor: FeatureExtractor | str = "auto",
                       c: torch.Tensor | None = None, seed: int = 0, G_kwargs: dict[str, Any] | None = None,
                       cache_dir: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """FID and KID between ``num_gen`` images of G and the real uint8 images [N, C, H, W].

    Returns ``{'fid', 'kid', 'extractor', 'num_real', 'num_fake', 'seconds'}``.
    """
    if num_gen < 2 or batch < 1:
        raise ValueError(f"need num_gen >= 2 and batch >= 1, got {num_gen} and {batch}")
    start = time.perf_counter()
    if isinstance(extractor, str):
        extractor = get_feature_extractor(extractor, device=device)
    reals = real_features(extractor, real_images, batch=batch, cache_dir=cache_dir, progress=progress)
    fakes = generated_features(G, extractor, num_gen=num_gen, batch=batch, device=device, c=c, seed=seed,
                               G_kwargs=G_kwargs, progress=progress)
    result: dict[str, Any] = compute_fid_kid(reals, fakes, seed=seed)
    result["extractor"] = extractor.name
    result["seconds"] = time.perf_counter() - start
    return result
