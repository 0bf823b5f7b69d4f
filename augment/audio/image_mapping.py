"""The exact mel dB ↔ pixel mapping (stored in augment.json ``image.mapping``) and PNG encoding.

Forward: dB in [-top_db, 0] → linear to [0, 255]; mel row 0 (lowest frequency) at the bottom of the image; time runs
left to right; the (n_mels, n_frames) float image is resized to resolution × resolution (bicubic, in float) and only
then rounded to uint8; saved as RGB with three equal channels. The inverse undoes each step.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

MAPPING_KIND = "mel-db-linear-v1"
RESAMPLE = Image.Resampling.BICUBIC
PNG_COMPRESS_LEVEL = 1  # fast; PNG is lossless at any level


def mapping_dict(top_db: float, mel_shape: tuple[int, int]) -> dict[str, Any]:
    """What a reader needs to turn an image back into mel dB (goes into augment.json ``image.mapping``)."""
    return {
        "kind": MAPPING_KIND,
        "db_range": [-float(top_db), 0.0],
        "pixel_range": [0, 255],
        "low_frequencies": "bottom",
        "time": "left_to_right",
        "channels": "rgb_equal",
        "resize": "bicubic",
        "mel_shape": [int(mel_shape[0]), int(mel_shape[1])],
    }


def _resize_float(a: np.ndarray, width: int, height: int) -> np.ndarray:
    if a.shape == (height, width):
        return a.astype(np.float32, copy=False)
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((width, height), RESAMPLE))


def gray_to_rgb_png(gray: np.ndarray) -> bytes:
    """uint8 (H, W) → PNG bytes of an RGB image with three equal channels (deterministic bytes)."""
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def resize_to_gray(a: np.ndarray, resolution: int) -> np.ndarray:
    """Float image in [0, 255] → uint8 resolution × resolution (resized in float, then rounded)."""
    out = _resize_float(a, resolution, resolution)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def db_to_gray(db: np.ndarray, top_db: float, resolution: int) -> np.ndarray:
    """Mel dB (n_mels, n_frames) → uint8 (resolution, resolution), low frequencies at the bottom."""
    pixels = (np.clip(db, -top_db, 0.0) + top_db) * (255.0 / top_db)
    return resize_to_gray(pixels[::-1], resolution)


def image_to_db(img: Image.Image, mapping: dict[str, Any]) -> np.ndarray:
    """Any image (real or generated, any size) → mel dB (n_mels, n_frames) per the stored mapping."""
    if mapping.get("kind") != MAPPING_KIND:
        raise ValueError(f"unsupported image mapping {mapping.get('kind')!r}")
    lo, hi = (float(v) for v in mapping["db_range"])
    n_mels, n_frames = (int(v) for v in mapping["mel_shape"])
    gray = np.asarray(img.convert("RGB"), dtype=np.float32).mean(axis=2)  # generated images may differ per channel
    pixels = _resize_float(gray, n_frames, n_mels)[::-1]
    return np.clip(lo + pixels * ((hi - lo) / 255.0), lo, hi).astype(np.float32)
