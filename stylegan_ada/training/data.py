"""Training images held in memory as uint8, and the data order: a fresh permutation per epoch.

The order is a pure function of (seed, sample position), so the loader "position" saved in a training state is just
the number of samples consumed; resuming or splitting a batch over processes sees the same images.
"""
from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from stylegan_ada.training.seeding import DATA_ORDER, generator


class DataError(ValueError):
    """Training images that cannot be used; the message names the file and the fix."""


def load_image(path: str | os.PathLike, resolution: int, channels: int = 3, sha256: str | None = None) -> np.ndarray:
    """One image as uint8 [C, H, W] at ``resolution`` (square inputs only; downscaled with Lanczos if larger).

    With ``sha256`` (what the caller's leak check read), the bytes are decoded only if they still have that digest.
    """
    try:
        source: str | os.PathLike | io.BytesIO = path
        if sha256 is not None:
            with open(path, "rb") as f:
                data = f.read()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise DataError(f"image {path} changed after it was checked against the test split (sha256 "
                                "mismatch); it is not used — start the command again")
            source = io.BytesIO(data)
        with Image.open(source) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            if im.width != im.height:
                raise DataError(f"image {path} is {im.width}x{im.height}; training images must be square")
            if im.width != resolution:
                im = im.resize((resolution, resolution), Image.LANCZOS)
            arr = np.array(im, dtype=np.uint8)
    except (OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); remove or re-create it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_images(paths: Sequence[str | os.PathLike], resolution: int, channels: int = 3, workers: int = 1,
                progress: Callable[[int], None] | None = None, sha256: Sequence[str] | None = None) -> torch.Tensor:
    """uint8 tensor [N, C, resolution, resolution] of ``paths`` in order, decoded by ``workers`` threads.

    ``sha256``: the expected digest of each file (see :func:`load_image`), or None.
    """
    out = torch.empty([len(paths), channels, resolution, resolution], dtype=torch.uint8)

    def one(i: int) -> None:
        out[i] = torch.from_numpy(load_image(paths[i], resolution, channels, sha256[i] if sha256 else None))
        if progress is not None:
            progress(1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, range(len(paths))))
    return out


@dataclass
class ImageSet:
    """The training set: images (uint8, on the training device when it fits), one-hot labels, x-flip mirroring."""
    images: torch.Tensor                 # [N, C, H, W] uint8
    labels: torch.Tensor                 # [N, c_dim] float32 (c_dim 0 when unconditional)
    mirror: bool = False
    class_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Items, counting the mirrored copies (as the reference's --mirror does)."""
        return self.images.shape[0] * (2 if self.mirror else 1)

    @property
    def c_dim(self) -> int:
        return self.labels.shape[1]

    def to(self, device: torch.device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device), self.mirror, list(self.class_names))

    def fetch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images in [-1, 1] float32, labels) of item indices; items >= N are the x-flipped copies."""
        n = self.images.shape[0]
        items = items.to(self.images.device)
        base = items % n
        img = self.images[base].to(torch.float32) / 127.5 - 1
        if self.mirror:
            flip = (items >= n).view(-1, 1, 1, 1)
            img = torch.where(flip, img.flip(3), img)
        return img, self.labels[base]

    def random_labels(self, count: int, device: torch.device) -> torch.Tensor:
        """Labels of random training items (for generated images), drawn from the global torch generator."""
        if self.c_dim == 0:
            return torch.zeros([count, 0], device=device)
        idx = torch.randint(self.labels.shape[0], [count], device=device)
        return self.labels.to(device)[idx]


class SampleOrder:
    """Item index at each position of the endless sample stream: permutation of epoch e = f(seed, e).

    The permutation is drawn on the CPU (the same on every device) and copied to ``device`` once per epoch, so taking
    a minibatch's items never waits for the GPU.
    """

    def __init__(self, num_items: int, seed: int, device: torch.device | str = "cpu"):
        if num_items <= 0:
            raise DataError("no training images")
        self.num_items = num_items
        self.seed = seed
        self.device = torch.device(device)
        self._cache: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            perm = torch.randperm(self.num_items, generator=generator(self.seed, DATA_ORDER, epoch))
            self._cache = {e: p for e, p in self._cache.items() if e == epoch - 1}  # a batch spans <= 2 epochs
            self._cache[epoch] = perm.to(self.device)
        return self._cache[epoch]

    def items(self, start: int, count: int) -> torch.Tensor:
        """Items at stream positions ``start .. start+count-1``."""
        out = []
        pos = start
        while pos < start + count:
            epoch, offset = divmod(pos, self.num_items)
            take = min(self.num_items - offset, start + count - pos)
            out.append(self._permutation(epoch)[offset:offset + take])
            pos += take
        return out[0] if len(out) == 1 else torch.cat(out)


def one_hot(indices: Sequence[int], num_classes: int) -> torch.Tensor:
    labels = torch.zeros([len(indices), num_classes], dtype=torch.float32)
    if num_classes:
        labels[torch.arange(len(indices)), torch.as_tensor(list(indices), dtype=torch.int64)] = 1
    return labels


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly or recursively under ``folder``, sorted (PNG, JPEG, WebP, BMP)."""
    exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file())
