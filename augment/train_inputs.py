"""What a run trains on: its images (leak-guarded), their hashes, its runs folder and its transfer source."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from augment.errors import UserError
from augment.train_config import TrainArgs
from augment.workspace import Workspace

EXTRA_RUNS = "_extra"
# Below this many train+val images of a class a warning: 20x fewer than the ADA paper's smallest sets (1,000
# images); a GAN trained on so few mostly reproduces them (check the fakes with `augment check-novelty`).
MIN_GAN_IMAGES = 50


def training_images(ws: Workspace, a: TrainArgs) -> tuple[list[Path], list[int], list[str]]:
    """(paths, labels, class names): the class's (or every class's) train+val images, plus --extra-images."""
    from stylegan_ada.training.data import list_image_files

    if a.cls is None and not a.cond and not a.extra_images:
        raise UserError(f"say what to train: --class NAME (one of {', '.join(ws.classes)}), --classes all, --cond, "
                        "or --extra-images DIR")
    paths: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    if a.cond:
        pairs = ws.labelled_images(["train", "val"])
        paths, labels, names = [p for p, _ in pairs], [c for _, c in pairs], ws.classes
        empty = [c for i, c in enumerate(ws.classes) if i not in set(labels)]
        if empty:
            raise UserError(f"class(es) {', '.join(empty)} have no train/val images; a --cond model needs every "
                            "class (re-run `augment prepare`)")
    elif a.cls is not None:
        ws.check_class(a.cls)
        paths, names = ws.images(["train", "val"], a.cls), [a.cls]
        if not paths:
            raise UserError(f"class {a.cls!r} has no train/val images in {ws.root}; re-run `augment prepare` "
                            "or pick another class")
    if a.extra_images:
        folder = Path(a.extra_images).expanduser()
        if not folder.is_dir():
            raise UserError(f"--extra-images {a.extra_images} is not a directory")
        extra = list_image_files(folder)
        if not extra:
            raise UserError(f"--extra-images {a.extra_images} holds no .png/.jpg images")
        paths = paths + extra
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"training image {missing[0]} is missing ({len(missing)} in all); re-run `augment prepare`")
    # VerifiedPaths: the sha256 of the bytes the guard checked goes with them to the loader (Job.image_sha256)
    return ws.guard_training_inputs(paths), labels, names


def too_few_images(a: TrainArgs, num_images: int) -> str | None:
    """A warning when a class (or the --cond set) has fewer than MIN_GAN_IMAGES training images."""
    if num_images >= MIN_GAN_IMAGES or (a.extra_images and a.cls is None and not a.cond):
        return None
    what = f"class {a.cls!r}" if a.cls else "the conditional model"
    return (f"warning: {what} has only {num_images} train+val image(s), fewer than the {MIN_GAN_IMAGES} a GAN needs "
            "to learn more than copies of them; add images (--extra-images) and check the fakes with "
            "`augment check-novelty`")


def resize_note(workspace_resolution: int, res: int) -> str | None:
    """The one-line note when a workspace of a size that is not a power of two (a classifier workspace, e.g. 48 px
    faces) trains a GAN: its images are resized to ``res`` as they load, and generated images back to its size."""
    if not workspace_resolution & (workspace_resolution - 1):
        return None
    return (f"note: this workspace's images are {workspace_resolution} px, not a power of two as StyleGAN2-ADA needs: "
            f"they are resized to {res} px (Lanczos) for training; `augment generate` resizes the fakes back to "
            f"{workspace_resolution} px")


def data_hashes(ws: Workspace, paths: list[Path]) -> dict[str, Any]:
    """sha256 over the training images (as the leak guard read them; else manifest/file hashes) + the split hashes."""
    from augment.io_utils import sha256_file

    known = {str((ws.root / r.image).resolve()): r.image_sha256 for r in ws.rows()}
    checked = dict(zip(paths, getattr(paths, "sha256", [])))
    h = hashlib.sha256()
    for p in paths:
        digest = checked.get(p) or known.get(str(p.resolve())) or sha256_file(p)
        h.update(f"{digest}\n".encode())
    return {"training_images_sha256": h.hexdigest(), "num_images": len(paths),
            "manifest_sha256": ws.config["splits"].get("sha256"),
            "test_sha256": ws.config["splits"].get("test_sha256")}


def runs_root(ws: Workspace, a: TrainArgs) -> Path:
    if a.cls is None and not a.cond:
        return ws.root / "runs" / EXTRA_RUNS
    return ws.runs_dir(a.cls)


def resolve_from(a: TrainArgs) -> Path | None:
    """The transfer source file, or None for --from scratch. Clear error if the FFHQ file is not on disk."""
    if not a.transfer:
        return None
    from stylegan_ada.pretrained import PretrainedError, resolve

    try:
        return resolve(a.from_)
    except PretrainedError as exc:
        raise UserError(f"--from {a.from_}: {exc}; or train without transfer: --from scratch") from None


def check_transfer_source(path: Path, G_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Load the --from network (never executing anything) and check it fits; returns the loaded networks."""
    from stylegan_ada.training.transfer import TransferError, load_source

    try:
        source = load_source(path)
    except TransferError as exc:
        raise UserError(str(exc)) from None
    G = source.get("G_ema") or source.get("G")
    if G is None:
        raise UserError(f"--from {path.name} holds no generator; give a StyleGAN2(-ADA) network file")
    res = G_kwargs["img_resolution"]
    if G.img_resolution != res:
        raise UserError(f"--from {path.name} is a {G.img_resolution} px network but this run trains {res} px; use "
                        f"a {res} px network, --resolution {G.img_resolution} (if the workspace allows), or "
                        "--from scratch")
    return source
