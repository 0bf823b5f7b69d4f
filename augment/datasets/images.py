"""Labelled images in class folders (``--image-dir DIR/<class>/*.png|jpg|...``), or listed in a csv manifest
(augment.datasets.csv_manifest): no audio step.

Images (grey or RGB, any size) are converted to grayscale, resized (bicubic, stretched to a square) and saved as RGB
with three equal channels, like the mel images, so the same networks and workspace apply.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.datasets.base import DatasetSpec, class_folder_spec
from augment.datasets.kind import DatasetKind, DatasetOption
from augment.errors import UserError

DEFAULT_TEST = 0.2
IMAGE_MAPPING = {"kind": "grayscale", "channels": "rgb_equal", "resize": "bicubic"}
# what a csv manifest may list as an image (anything else is audio)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why."""


def probe_image(path: Path) -> None:
    """Raise ImageError unless ``path`` is a readable image (checks the header and, for PNG, the checksums)."""
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.verify()
    except UnidentifiedImageError:
        raise ImageError("not an image file") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for damaged files
        raise ImageError(f"unreadable or corrupt image: {exc}") from None


def image_to_gray(path: Path, resolution: int) -> np.ndarray:
    """Any image → uint8 grayscale resolution × resolution."""
    from PIL import Image

    from augment.audio.image_mapping import resize_to_gray

    try:
        with Image.open(path) as img:
            gray = np.asarray(img.convert("L"), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"unreadable or corrupt image: {exc}") from None
    return resize_to_gray(gray, resolution)


def listed_kind(names: Sequence[str], where: str) -> str:
    """"images" when every listed file name ends in an image suffix, "audio" when none does; a mix is refused."""
    images = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
    if not images:
        return "audio"
    if len(images) < len(names):
        audio = next(n for n in names if not n.lower().endswith(IMAGE_SUFFIXES))
        raise UserError(f"{where} lists both images ({images[0]}) and other files ({audio}); a workspace holds one "
                        "kind: list only images (.png/.jpg/.jpeg) or only audio")
    return "images"


def build(opts: dict[str, Any]) -> DatasetSpec:
    return class_folder_spec(opts, key="image_dir", kind="images", name="images", default_test=DEFAULT_TEST)


DATASET = DatasetKind(
    name="images", summary="images in <class>/ subfolders", input="images", build=build,
    test_size=f"{DEFAULT_TEST:g}",
    options=(DatasetOption("--image-dir", "folder with one subfolder of images per class", type="dir"),))
