"""Image grids written during training: ``reals.png`` once, ``fakes<tag>.png`` at every image snapshot."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan_ada.fileio import atomic_write_chunks
from stylegan_ada.training.data import ImageSet
from stylegan_ada.training.seeding import GRID, generator


def grid_shape(resolution: int) -> tuple[int, int]:
    """(columns, rows): up to 2048x1024 pixels, at least 4x2 and at most 8x4 images."""
    return int(np.clip(2048 // resolution, 4, 8)), int(np.clip(1024 // resolution, 2, 4))


def pick_grid_items(data: ImageSet, gw: int, gh: int, seed: int) -> list[int]:
    """Training items for the reals grid; with labels, each row shows one class (cycling through classes)."""
    g = generator(seed, GRID, 0)
    n = data.images.shape[0]
    order = torch.randperm(n, generator=g).tolist()
    if data.c_dim == 0:
        return [order[i % n] for i in range(gw * gh)]
    by_class: dict[int, list[int]] = {}
    classes = data.labels.argmax(1).cpu().tolist()
    for i in order:
        by_class.setdefault(classes[i], []).append(i)
    keys = sorted(by_class)
    items = []
    for y in range(gh):
        members = by_class[keys[y % len(keys)]]
        items += [members[(x + (y // len(keys)) * gw) % len(members)] for x in range(gw)]
    return items


def save_grid(images: torch.Tensor, path: str | os.PathLike, gw: int, gh: int, drange: tuple[float, float]) -> Path:
    """Tile [gw*gh, C, H, W] images (values in ``drange``) into one PNG, written atomically."""
    lo, hi = drange
    img = images.detach().to("cpu", torch.float32).numpy()
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    _, c, h, w = img.shape
    img = img.reshape(gh, gw, c, h, w).transpose(0, 3, 1, 4, 2).reshape(gh * h, gw * w, c)
    pil = Image.fromarray(img[:, :, 0], "L") if c == 1 else Image.fromarray(img, "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return atomic_write_chunks(path, [buf.getbuffer()])


class FakesGrid:
    """Fixed latents and labels, so every ``fakes*.png`` of a run shows the same samples as training goes on."""

    def __init__(self, data: ImageSet, z_dim: int, seed: int, device: torch.device):
        self.gw, self.gh = grid_shape(data.images.shape[-1])
        self.items = pick_grid_items(data, self.gw, self.gh, seed)
        items = torch.as_tensor(self.items)
        self.z = torch.randn([len(self.items), z_dim], generator=generator(seed, GRID, 1)).to(device)
        self.c = data.labels[items.to(data.labels.device)].to(device)

    def save_reals(self, data: ImageSet, path: str | os.PathLike) -> None:
        images = data.images[torch.as_tensor(self.items).to(data.images.device)]
        save_grid(images, path, self.gw, self.gh, (0, 255))

    @torch.no_grad()
    def save_fakes(self, G_ema: torch.nn.Module, path: str | os.PathLike, batch: int, force_fp32: bool) -> None:
        out = [G_ema(z, c, noise_mode="const", force_fp32=force_fp32).cpu()
               for z, c in zip(self.z.split(batch), self.c.split(batch))]
        save_grid(torch.cat(out), path, self.gw, self.gh, (-1, 1))
